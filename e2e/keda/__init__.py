"""Real KEDA for the tests: its CRDs, and its operator and metrics adapter as local processes.

Everything comes from the one KEDA version pinned in ``e2e/keda/tools/go.mod`` (a wrapper module
that also builds the binaries), through ``e2e/keda/build.sh``:

* the CRDs are cheap (``go mod download``, no compile) and always available: :func:`crd_paths`,
  :func:`install_crds`;
* the operator and adapter binaries are a heavy build (KEDA links every cloud SDK), done only when
  ``GANTRY_E2E_KEDA_OPERATOR=1``: :func:`operator_skip_reason`, :func:`binaries`; the processes
  live in :mod:`e2e.keda.operator`.

CLI: ``e2e/keda/build.sh crds`` fetches the CRDs and prints their directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from e2e import gotools
from e2e.cluster import Kubectl
from e2e.cluster.gateway_api import crd_names

__all__ = [
    "BUILD_SCRIPT",
    "OPERATOR_FLAG",
    "Binaries",
    "KedaBuildError",
    "binaries",
    "crd_names",
    "crd_paths",
    "install_crds",
    "operator_skip_reason",
]

BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"
#: Set to 1 to build (once per machine and pin) and run KEDA's operator and adapter.
OPERATOR_FLAG = "GANTRY_E2E_KEDA_OPERATOR"

# The CRDs are a download; the binaries a cold compile of ~15-20 min on 2 shared cores.
_CRDS_TIMEOUT = 600.0
_BIN_TIMEOUT = 3600.0


# One error for every Go tool build (e2e.gotools); the name stays KEDA's public one.
KedaBuildError = gotools.GoBuildError


def crd_paths() -> list[Path]:
    """KEDA's CRD files (``config/crd/bases/*.yaml`` of the pinned module), sorted.

    Raises:
        KedaBuildError: the download failed, or the module holds no CRDs.
    """
    paths = sorted(gotools.build(BUILD_SCRIPT, "crds", timeout=_CRDS_TIMEOUT).glob("*.yaml"))
    if not paths:
        raise KedaBuildError(f"{BUILD_SCRIPT} crds: no CRD files")
    return paths


def install_crds(kubectl: Kubectl) -> list[str]:
    """Apply KEDA's CRDs and wait until they are Established; their names.

    They stay installed: CRDs are cluster-wide, another session on the same cluster may be using
    them, and deleting a CRD deletes every object of its kinds. Applying them changes nothing
    for other tests (new kinds only); without a KEDA operator running, a ScaledObject is inert.
    """
    paths = crd_paths()
    files = [arg for path in paths for arg in ("-f", str(path))]
    # Server-side: the ScaledJob CRD is too big for client-side apply's last-applied annotation.
    kubectl("apply", "--server-side", "--force-conflicts", *files)
    names = crd_names(paths)
    kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in names), "--timeout=60s")
    return names


def operator_skip_reason() -> str | None:
    """Why KEDA's operator is not run here (None: it is): the opt-in flag is not set."""
    if os.environ.get(OPERATOR_FLAG) == "1":
        return None
    return (
        f"{OPERATOR_FLAG}=1 not set: KEDA's operator and adapter are a heavy Go build "
        f"(see e2e/keda/README.md), kept off the default test path"
    )


@dataclass(frozen=True)
class Binaries:
    """KEDA's two binaries, as built by build.sh."""

    operator: Path
    adapter: Path


def binaries() -> Binaries:
    """Build (or reuse) KEDA's operator and adapter; their paths.

    Raises:
        KedaBuildError: the build failed or left a binary out.
    """
    operator, adapter = "keda", "keda-adapter"
    bin_dir = gotools.build(BUILD_SCRIPT, "bin", timeout=_BIN_TIMEOUT, files=(operator, adapter))
    return Binaries(operator=bin_dir / operator, adapter=bin_dir / adapter)
