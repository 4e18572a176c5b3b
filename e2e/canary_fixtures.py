"""Fixtures and recorders for the canary scenarios (``e2e/test_canary.py``).

* ``prometheus``: one real Prometheus for the session (skipped, with the reason,
  when the binary is absent), scraping whatever file_sd files the scenarios write.
* ``toy_weights``: the (empty) state dict the ``e2e.toy_models`` factories load.
* :class:`Watch`: ``kubectl get -w`` in the background, every event kept with the
  time it arrived, so a scenario sees every status write and every change of a
  Deployment, not only the ones a poll happens to catch.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from e2e.backing import PodBacker
from e2e.cluster import Kubectl
from e2e.prometheus_proc import PROMETHEUS_MISSING, PrometheusProcess

__all__ = ["FastStopBacker", "Watch", "WatchEvent", "prometheus", "toy_weights"]


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    """A Prometheus on loopback for the session; scenarios add targets with PodTargets."""
    if PROMETHEUS_MISSING is not None:
        pytest.skip(PROMETHEUS_MISSING)
    proc = PrometheusProcess(tmp_path_factory.mktemp("prometheus"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def toy_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty state dict: the toy models have no parameters."""
    import torch

    path = tmp_path_factory.mktemp("toy-models") / "empty.pt"
    torch.save({}, path)
    return path


class FastStopBacker(PodBacker):
    """A PodBacker whose loop can be paused and whose runtimes stop side by side.

    Each runtime drains and stops Triton in a few seconds; one after the other,
    four of them add twenty seconds to a scenario's teardown.
    """

    def pause(self) -> None:
        """Stop following the pods (running processes stay up until ``close``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def close(self) -> None:
        self.pause()
        procs = list(self.processes.values())
        self.processes.clear()
        if procs:
            with ThreadPoolExecutor(max_workers=len(procs)) as pool:
                list(pool.map(lambda p: p.stop(), procs))


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: when it arrived (``time.monotonic()``), its type and the object."""

    at: float
    type: str
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


class Watch:
    """``kubectl get <args> -w --output-watch-events -o json`` in a background thread.

    kubectl prints one JSON document per event (one line each in current versions);
    the stream is split with a JSON decoder, so indented output works as well.
    """

    def __init__(self, kubectl: Kubectl, *args: str, log_path: Path | None = None) -> None:
        argv = [kubectl.binary]
        if kubectl.kubeconfig is not None:
            argv.append(f"--kubeconfig={kubectl.kubeconfig}")
        argv += ["get", *args, "--watch", "--output-watch-events", "-o", "json"]
        self.argv = argv
        self.events: list[WatchEvent] = []
        self.errors: list[str] = []
        self._log_path = log_path
        self._env = {**os.environ, **kubectl.env} if kubectl.env else None
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self._thread = threading.Thread(target=self._read, name="watch", daemon=True)

    def start(self) -> Watch:
        self._stderr = (self._log_path or Path(os.devnull)).open("w")
        self._proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=self._env,
        )
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in self._proc.stdout:
            buffer += line
            while True:
                text = buffer.lstrip()
                if not text:
                    buffer = ""
                    break
                try:
                    doc, end = decoder.raw_decode(text)
                except ValueError:
                    buffer = text  # an object split over lines: wait for the rest
                    if len(buffer) > 16 * 1024 * 1024:
                        self.errors.append(f"unparsable watch output: {buffer[:200]}")
                        buffer = ""
                    break
                buffer = text[end:]
                event = WatchEvent(time.monotonic(), doc.get("type", ""), doc.get("object") or {})
                with self._lock:
                    self.events.append(event)

    def snapshot(self) -> list[WatchEvent]:
        with self._lock:
            return list(self.events)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Watch:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
