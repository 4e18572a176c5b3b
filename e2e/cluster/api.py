"""Talking to the cluster: a tiny HTTPS client for start-up probes and a ``kubectl`` wrapper.

Start-up polls the API server many times a second; a direct HTTPS call costs a few milliseconds
where spawning kubectl costs a few hundred, which matters for the warm-start budget. Tests use
:class:`Kubectl` so the same code runs against any cluster, including one with only a kubeconfig.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ApiError(RuntimeError):
    """An HTTP error answer from the API server (status and body kept for the caller)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class ApiClient:
    """Client-certificate HTTPS access to one server (API server or a component's /healthz)."""

    base_url: str
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file is not None:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        return ctx

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        """Send one request; return the decoded JSON answer (or text when it is not JSON)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._context(), timeout=timeout) as resp:
                raw = resp.read().decode()
        except urllib.error.HTTPError as err:
            raise ApiError(err.code, err.read().decode(errors="replace")) from err
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def healthy(self, path: str) -> bool:
        """True when ``path`` answers 200 "ok"; any error (refused, TLS, 500) means not yet."""
        try:
            return bool(self.request("GET", path, timeout=2.0) == "ok")
        except (OSError, ApiError, ssl.SSLError):
            return False


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its command line and stderr."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr.strip()}"
        )
        self.result = result


@dataclass(frozen=True)
class Kubectl:
    """Runs a kubectl binary against one kubeconfig (or kubectl's own default when None)."""

    binary: str
    kubeconfig: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl args...``; raise :class:`KubectlError` on failure when ``check``."""
        argv = [self.binary]
        if self.kubeconfig is not None:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        argv += args
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env} if self.env else None,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(args, result)
        return result

    __call__ = run

    def json(self, *args: str, timeout: float = 60.0) -> Any:
        """Run a read command with ``-o json`` and decode the answer."""
        return json.loads(self.run(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, *manifests: Mapping[str, Any], namespace: str | None = None) -> None:
        """Server-side apply the given objects."""
        ns = ["-n", namespace] if namespace else []
        docs = yaml.safe_dump_all([dict(m) for m in manifests], sort_keys=False)
        self.run("apply", "--server-side", "--field-manager=gantry-e2e", *ns, "-f", "-", input=docs)
