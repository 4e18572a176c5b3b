"""The Gateway API CRDs (standard channel), from the pinned ``sigs.k8s.io/gateway-api`` module.

The module ships its CRDs under ``config/crd/standard/``. ``go mod download``
puts the module in the Go module cache, which CI keeps between runs, so the
proxy is asked once per machine. No wrapper module under ``tools/``: those
go.mod files key the control-plane build cache, and a new one would rebuild it.

CLI: ``python -m e2e.cluster.gateway_api`` prints the CRD paths, one a line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

MODULE = "sigs.k8s.io/gateway-api"
VERSION = "v1.4.1"
CRD_DIR = "config/crd/standard"


class GatewayApiError(RuntimeError):
    """The module could not be downloaded, or it holds no CRDs where expected."""


def module_dir(version: str = VERSION, *, timeout: float = 600.0) -> Path:
    """Download ``sigs.k8s.io/gateway-api@version`` (a no-op when cached); return its directory.

    Raises:
        GatewayApiError: no ``go`` on PATH, or the download failed (the message says why).
    """
    go = shutil.which("go")
    if go is None:
        raise GatewayApiError("the Gateway API CRDs come from the Go module proxy: install Go")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    # Outside any module, so no go.mod of the caller's directory takes part.
    with tempfile.TemporaryDirectory(prefix="gateway-api-") as cwd:
        try:
            result = subprocess.run(
                [go, "mod", "download", "-json", f"{MODULE}@{version}"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise GatewayApiError(f"go mod download {MODULE}@{version}: {err}") from err
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    # -json reports a module's error in the document (exit status 1), or only on stderr.
    if result.returncode != 0 or info.get("Error") or not info.get("Dir"):
        why = info.get("Error") or result.stderr.strip() or f"exit status {result.returncode}"
        raise GatewayApiError(f"go mod download {MODULE}@{version}: {why}")
    return Path(info["Dir"])


def crd_paths(version: str = VERSION) -> list[Path]:
    """The standard-channel CRD files of ``version``, sorted.

    Raises:
        GatewayApiError: the download failed, or the module has no such CRDs.
    """
    paths = sorted((module_dir(version) / CRD_DIR).glob("*.yaml"))
    if not paths:
        raise GatewayApiError(f"{MODULE}@{version} has no CRDs under {CRD_DIR}")
    return paths


def crd_names(paths: list[Path]) -> list[str]:
    """``metadata.name`` of every CustomResourceDefinition in ``paths`` (for ``kubectl wait``)."""
    names: list[str] = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                names.append(str(doc["metadata"]["name"]))
    return names


def main() -> int:
    try:
        paths = crd_paths()
    except GatewayApiError as err:
        print(err, file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
