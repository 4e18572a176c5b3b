"""The demo's long-running processes: started detached, recorded, stopped by ``make demo-down``.

``make demo`` returns while the operator, the pod backer and the runtimes it started keep
running, so nothing holds their ``Popen`` handles any more. Each is therefore recorded the way
the local control plane records its own processes (:mod:`e2e.cluster.procs`): pid plus start
identity (boot id, start time) and executable, so that ``demo-down``, from another process and
maybe much later, signals exactly the processes the demo started and never a recycled pid.

Files, all under one state directory (``.cluster/demo`` for ``make demo``):

* ``state.json``: the namespace, the kubeconfig and the operator's and backer's records, written
  by the demo;
* ``runtimes.json``: one entry per backed pod (its runtime's record, address, model and
  version), rewritten by the backer whenever it starts or stops a runtime; the demo's load
  generator reads its targets from it, and ``demo-down`` stops whatever it still lists after
  the backer is gone (a backer that had to be killed cannot stop its own runtimes);
* ``logs/``: every process's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.cluster import procs

__all__ = ["DemoState", "RuntimeEntry", "StateDir", "spawn", "stop_recorded"]


@dataclass(frozen=True)
class RuntimeEntry:
    """One backed pod's runtime, as the backer records it."""

    pod: str
    proc: procs.Proc
    host: str
    http: int
    model: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "proc": self.proc.to_json(),
            "host": self.host,
            "http": self.http,
            "model": self.model,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuntimeEntry:
        return cls(
            pod=str(data["pod"]),
            proc=procs.Proc.from_json(dict(data["proc"])),
            host=str(data["host"]),
            http=int(data["http"]),
            model=str(data["model"]),
            version=int(data["version"]),
        )


@dataclass(frozen=True)
class DemoState:
    """What ``demo-down`` needs: where the demo ran and the processes it left running."""

    namespace: str
    kubeconfig: str
    kubectl: str
    processes: tuple[procs.Proc, ...]
    """In start order; stopped in reverse."""

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "kubeconfig": self.kubeconfig,
            "kubectl": self.kubectl,
            "processes": [p.to_json() for p in self.processes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DemoState:
        return cls(
            namespace=str(data["namespace"]),
            kubeconfig=str(data["kubeconfig"]),
            kubectl=str(data["kubectl"]),
            processes=tuple(procs.Proc.from_json(dict(p)) for p in data.get("processes", [])),
        )


def _write_atomically(path: Path, data: Any) -> None:
    # A reader (the load generator, demo-down) never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); remove it if no demo runs") from err


@dataclass(frozen=True)
class StateDir:
    """The demo's directory of records and logs."""

    path: Path

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def runtimes(self) -> Path:
        return self.path / "runtimes.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def models(self) -> Path:
        return self.path / "models"

    def save(self, state: DemoState) -> None:
        _write_atomically(self.state, state.to_json())

    def load(self) -> DemoState | None:
        data = _read(self.state)
        return None if data is None else DemoState.from_json(data)

    def save_runtimes(self, entries: Sequence[RuntimeEntry]) -> None:
        _write_atomically(self.runtimes, [e.to_json() for e in entries])

    def load_runtimes(self) -> list[RuntimeEntry]:
        data = _read(self.runtimes)
        return [RuntimeEntry.from_json(e) for e in data or []]

    def forget(self) -> None:
        """Drop the records (the logs stay for a post-mortem)."""
        for path in (self.state, self.runtimes):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def spawn(
    name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str], *, cwd: Path
) -> procs.Proc:
    """Start ``argv`` detached (own session, so a Ctrl-C of ``make demo`` spares it), with
    ``env`` added to this environment and its output appended to ``log_dir/<name>.log`` (a
    demo started again keeps the earlier runs' logs).

    Started by :func:`e2e.cluster.procs.start`, so :func:`e2e.cluster.procs.stop` treats it as
    it treats the control plane's processes.
    """
    return procs.start(name, argv, log_dir, env=env, cwd=cwd, append=True)


def stop_recorded(records: Sequence[procs.Proc], *, grace: float) -> list[str]:
    """Stop each recorded process that is still the one recorded; return their names.

    Raises:
        procs.StopError: one survived SIGKILL (the others are still stopped first).
    """
    stopped: list[str] = []
    errors: list[str] = []
    for proc in records:
        if not procs.alive(proc):
            continue
        try:
            procs.stop(proc, grace=grace)
        except procs.StopError as err:
            errors.append(str(err))
            continue
        stopped.append(proc.name)
    if errors:
        raise procs.StopError("; ".join(errors))
    return stopped


def wait_gone(records: Sequence[procs.Proc], *, timeout: float) -> list[procs.Proc]:
    """Wait (bounded) until none of ``records`` runs; return those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in records if procs.alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)
