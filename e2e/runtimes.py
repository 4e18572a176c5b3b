"""Run the Gantry serving runtime as a real OS process, for e2e, tests and the demo.

A :class:`RuntimeProcess` starts ``python -m gantry.runtime`` on free loopback
ports, waits for it with a deadline, stops it with SIGTERM and keeps its log in
a file. Everything is bounded: every wait has a deadline, every poll a timeout,
and a process that outlives its stop deadline is killed (and its caller fails).

The e2e suite and ``make demo`` use it to back simulated (KWOK) pods with real
Triton servers; :func:`write_mlp` gives it a model without any download.

torch and pytriton are optional extras; :data:`RUNTIME_MISSING` says why they
cannot be used here (``None`` when they can). This module imports no test code,
so the demo can use it; the pytest skip marker lives in ``tests.support.runtime_proc``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

__all__ = [
    "REPO_ROOT",
    "RUNTIME_MISSING",
    "RuntimePorts",
    "RuntimeProcess",
    "RuntimeProcessError",
    "free_ports",
    "write_mlp",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN_ENV = "GANTRY_TRITON_ACCESS_TOKEN"
_POLL_S = 0.2


def _missing_runtime() -> str | None:
    missing = [m for m in ("torch", "pytriton", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(missing)
        return f"serving runtime extra not installed ({names}): pip install -e '.[runtime]'"
    return None


#: Why the runtime cannot run here, or ``None``.
RUNTIME_MISSING = _missing_runtime()


class RuntimeProcessError(AssertionError):
    """The runtime process did not behave as expected; the message has its log tail.

    An ``AssertionError`` so that a test using the runtime fails (rather than errors) on it.
    """


@dataclass(frozen=True)
class RuntimePorts:
    """The three loopback ports of one runtime."""

    http: int
    grpc: int
    metrics: int
    #: Bind address: loopback, or a KWOK pod's loopback IP when backing a pod.
    host: str = "127.0.0.1"

    @property
    def http_endpoint(self) -> str:
        """``host:port`` for tritonclient's HTTP clients."""
        return f"{self.host}:{self.http}"

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` for tritonclient's gRPC clients."""
        return f"{self.host}:{self.grpc}"

    @property
    def http_url(self) -> str:
        """Base URL of the KServe v2 HTTP API."""
        return f"http://{self.host}:{self.http}"


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def write_mlp(
    path: Path, *, in_features: int = 4, hidden: int = 16, out_features: int = 3, seed: int = 0
) -> Path:
    """Script a small MLP with TorchScript and save it to ``path``.

    Deterministic for a given ``seed``. Imports torch, so call it only where
    :data:`RUNTIME_MISSING` is ``None``.
    """
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(in_features, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, out_features),
    ).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # torch >= 2.10 deprecates TorchScript in favour of torch.export; TorchScript
        # is still the format Triton's PyTorch backend and ModelDeployment serve.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
        torch.jit.script(model).save(str(path))
    return path


class RuntimeProcess:
    """One ``python -m gantry.runtime`` process on free loopback ports.

    Args:
        args: runtime arguments (model, inputs, batching...); host and ports are
            added by this class.
        log_path: file receiving the process's stdout and stderr.
        model_name: the model name, for readiness checks.
        model_version: the model version, for readiness checks.
        access_token: passed as ``GANTRY_TRITON_ACCESS_TOKEN``, so probes given
            the same token can read Triton's repository index.
        env: extra environment variables.
        ports: loopback ports to use; free ones are picked when omitted.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        model_name: str = "model",
        model_version: int = 1,
        access_token: str | None = "gantry-test-token",
        env: Mapping[str, str] | None = None,
        ports: RuntimePorts | None = None,
    ) -> None:
        if ports is None:
            http, grpc, metrics = free_ports(3)
            ports = RuntimePorts(http=http, grpc=grpc, metrics=metrics)
        self.ports = ports
        self.model_name = model_name
        self.model_version = model_version
        self.access_token = access_token
        self.log_path = log_path
        self._args = list(args)
        self._env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id (the process must have been started)."""
        return self._require().pid

    @property
    def headers(self) -> dict[str, str]:
        """Headers that open Triton's restricted endpoints (repository index...)."""
        return {"triton-access-token": self.access_token} if self.access_token else {}

    def _require(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeProcessError("runtime process not started")
        return self._proc

    def command(self) -> list[str]:
        """The full command line."""
        return [
            sys.executable,
            "-m",
            "gantry.runtime",
            *self._args,
            "--model-name",
            self.model_name,
            "--model-version",
            str(self.model_version),
            "--host",
            self.ports.host,
            "--http-port",
            str(self.ports.http),
            "--grpc-port",
            str(self.ports.grpc),
            "--metrics-port",
            str(self.ports.metrics),
        ]

    def start(self) -> RuntimeProcess:
        """Start the process (returns at once; see :meth:`wait_ready`)."""
        env = {**os.environ, **self._env}
        # Model modules given as package.module:attr may live in this repository.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env.pop(TOKEN_ENV, None)
        if self.access_token:
            env[TOKEN_ENV] = self.access_token
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
        )
        return self

    def logs(self) -> str:
        """Everything the process wrote so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _fail(self, what: str) -> RuntimeProcessError:
        tail = "\n".join(self.logs().splitlines()[-60:])
        return RuntimeProcessError(f"{what}\n--- runtime log tail ({self.log_path}) ---\n{tail}")

    def _get_ok(self, client: httpx.Client, path: str) -> bool:
        try:
            return client.get(f"{self.ports.http_url}{path}").status_code == httpx.codes.OK
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 90.0, *, model: bool = True) -> RuntimeProcess:
        """Wait until the server (and, with ``model``, the model version) is ready.

        With ``model=False`` it waits only for ``/v2/health/ready``, which is what
        a runtime serving a load failure reaches.

        Raises:
            RuntimeProcessError: the process exited or the deadline passed.
        """
        proc = self._require()
        path = (
            f"/v2/models/{self.model_name}/versions/{self.model_version}/ready"
            if model
            else "/v2/health/ready"
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise self._fail(f"runtime exited with {proc.returncode} before ready")
                if self._get_ok(client, path):
                    return self
                time.sleep(_POLL_S)
        raise self._fail(f"runtime not ready ({path}) within {timeout:g}s")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal to the runtime process only (not to Triton, its child)."""
        self._require().send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; kill it and fail if it does not in time."""
        proc = self._require()
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise self._fail(f"runtime still running {timeout:g}s after the stop signal") from None
        finally:
            if self._log is not None:
                self._log.close()

    def stop(self, timeout: float = 45.0) -> int:
        """SIGTERM, then wait up to ``timeout``; returns the exit status."""
        proc = self._require()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def __enter__(self) -> RuntimeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.stop()

    def __repr__(self) -> str:
        state: Any = None if self._proc is None else self._proc.poll()
        return f"RuntimeProcess(model={self.model_name!r}, ports={self.ports}, exit={state})"
