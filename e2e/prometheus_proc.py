"""A real Prometheus (Debian's ``prometheus`` package) for the canary scenarios.

:class:`PrometheusProcess` runs ``prometheus`` on a free 127.0.0.1 port with its
TSDB in a scratch directory, scraping every second. Its one job discovers
targets through ``file_sd_configs``: every ``*.json`` file in a directory, re-read
every second. :class:`PodTargets` keeps one such file in step with a
:class:`~e2e.backing.PodBacker`: each backed pod becomes the target
``<podIP>:<metricsPort>`` labelled ``namespace`` and ``pod``, which is what a
PodMonitor (or the usual Kubernetes service discovery relabelling) attaches in
a real cluster and what the operator's PromQL selects canary pods by.

Everything is bounded: start and stop have deadlines, queries have timeouts,
and the target writer is a daemon thread stopped on exit.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from e2e.backing import PodBacker
from e2e.runtimes import free_ports

__all__ = ["PROMETHEUS", "PROMETHEUS_MISSING", "PodTargets", "PrometheusProcess"]


def _find_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None


#: The prometheus binary, or None.
PROMETHEUS = _find_binary()
#: Why no Prometheus can run here, or None.
PROMETHEUS_MISSING = (
    None
    if PROMETHEUS
    else "no prometheus binary (Debian package 'prometheus'; `make system-deps` installs it)"
)

SCRAPE_INTERVAL = "1s"
JOB = "triton-pods"


def _config(sd_dir: Path) -> str:
    return json.dumps(
        {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "file_sd_configs": [
                        {"files": [str(sd_dir / "*.json")], "refresh_interval": "1s"}
                    ],
                }
            ],
        },
        indent=2,
    )


class PrometheusProcess:
    """One ``prometheus`` on loopback.

    Args:
        work_dir: Config, TSDB, file_sd directory and log live here.
    """

    def __init__(self, work_dir: Path) -> None:
        if PROMETHEUS is None:
            raise RuntimeError(PROMETHEUS_MISSING)
        self.work_dir = work_dir
        self.sd_dir = work_dir / "file_sd"
        self.log_path = work_dir / "prometheus.log"
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, *, timeout: float = 45.0) -> PrometheusProcess:
        """Start and wait until ``/-/ready`` answers 200."""
        assert PROMETHEUS is not None
        self.sd_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "prometheus.yml"
        config.write_text(_config(self.sd_dir))  # JSON is YAML
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=info",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AssertionError(
                    f"prometheus exited with {self._proc.returncode}:\n{self.tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"prometheus not ready within {timeout:g}s:\n{self.tail()}")

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def write_targets(self, name: str, targets: Mapping[str, Mapping[str, str]]) -> None:
        """Replace the file_sd file ``<name>.json``: ``{"host:port": labels, ...}``.

        Written to a temporary file and renamed, so Prometheus never reads half a file.
        """
        groups = [{"targets": [t], "labels": dict(labels)} for t, labels in sorted(targets.items())]
        path = self.sd_dir / f"{name}.json"
        tmp = self.sd_dir / f".{name}.json.tmp"
        tmp.write_text(json.dumps(groups, indent=1))
        os.replace(tmp, path)

    def remove_targets(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.sd_dir / f"{name}.json").unlink()

    def query(self, promql: str, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """An instant query's result vector (raises on an error answer)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=timeout)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"prometheus query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        """Prometheus' view of its active targets (labels, health, last error)."""
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=5.0).json()
        targets: list[dict[str, Any]] = body["data"]["activeTargets"]
        return targets

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class PodTargets:
    """Keeps a file_sd file listing the metrics endpoints of a backer's live pods.

    Args:
        prometheus: Where the file goes.
        backer: Whose processes to list (pod name -> runtime process).
        name: The file's name (one per namespace, so scenarios never clobber each other).
        interval: Seconds between rewrites (only a changed list is written).
    """

    def __init__(
        self,
        prometheus: PrometheusProcess,
        backer: PodBacker,
        *,
        name: str | None = None,
        interval: float = 0.5,
    ) -> None:
        self.prometheus = prometheus
        self.backer = backer
        self.name = name or backer.namespace
        self.interval = interval
        self.errors: list[str] = []
        self.written: dict[str, dict[str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sd-{self.name}", daemon=True)

    def current(self) -> dict[str, dict[str, str]]:
        """``host:port -> {namespace, pod}`` for every backed pod."""
        targets = {}
        for pod, proc in list(self.backer.processes.items()):
            host = proc.ports.host
            if not ipaddress.ip_address(host).is_loopback:
                continue  # the backer never binds elsewhere; never scrape elsewhere either
            targets[f"{host}:{proc.ports.metrics}"] = {
                "namespace": self.backer.namespace,
                "pod": pod,
            }
        return targets

    def sync(self) -> None:
        targets = self.current()
        if targets != self.written:
            self.prometheus.write_targets(self.name, targets)
            self.written = targets

    def _loop(self) -> None:
        while True:
            try:
                self.sync()
            except Exception as exc:  # reported by check(); keep the file current
                self.errors.append(repr(exc))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PodTargets:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.prometheus.remove_targets(self.name)

    def check(self) -> None:
        assert not self.errors, f"file_sd writer errors: {self.errors}"
