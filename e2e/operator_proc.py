"""The operator as users run it: ``gantry run`` in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

from e2e.runtimes import free_ports


class OperatorProcess:
    """``python -m gantry.cli run`` against one kubeconfig, log in a file.

    Args:
        log_path: Where stdout and stderr go.
        kubeconfig: The cluster (None: the inherited ``KUBECONFIG``).
        env: Extra environment (e.g. ``GANTRY_RESYNC_SECONDS``).
    """

    #: How errors name the process.
    what = "operator"

    def __init__(
        self,
        log_path: Path,
        *,
        kubeconfig: Path | None = None,
        env: Mapping[str, str] | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        self.log_path = log_path
        self.namespaces = list(namespaces)
        self.metrics_port, self.liveness_port = free_ports(2)
        self._env = {**os.environ, **(env or {})}
        if kubeconfig is not None:
            self._env["KUBECONFIG"] = str(kubeconfig)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        """The operator's command line (a subclass may run an instrumented entry point)."""
        return [
            sys.executable,
            "-m",
            "gantry.cli",
            "run",
            f"--metrics-port={self.metrics_port}",
            f"--liveness-port={self.liveness_port}",
            *(f"--namespace={ns}" for ns in self.namespaces),
        ]

    def start(self, *, timeout: float = 60.0) -> None:
        """Start and wait until :meth:`ready` (an exit first raises, with the log's tail)."""
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=self._env
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AssertionError(
                    f"{self.what} exited with {self._proc.returncode}:\n{self.tail()}"
                )
            if self.ready():
                return
            time.sleep(0.3)
        raise AssertionError(f"{self.what} not live within {timeout}s:\n{self.tail()}")

    def ready(self) -> bool:
        """Whether kopf's liveness endpoint answers (a subclass probes its own endpoint)."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1).is_success
        except httpx.HTTPError:
            return False

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Stop (SIGTERM: graceful; SIGKILL: a crash) and return the exit status."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                raise AssertionError(f"operator ignored signal {sig} for {timeout}s") from None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._proc = None
        return proc.returncode

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
