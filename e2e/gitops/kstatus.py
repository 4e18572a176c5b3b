"""What kstatus (sigs.k8s.io/cli-utils, the health library of Flux and kpt) says of an object.

Runs the Go helper built by ``e2e/gitops/build-kstatus.sh`` (cached outside the repository);
the first call in a process builds it or finds it built, later calls reuse that path::

    from e2e.gitops import kstatus
    status, message = kstatus.compute(md)   # e.g. ("InProgress", "Ready: waiting for ...")
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

BUILD_SCRIPT = Path(__file__).resolve().parent / "build-kstatus.sh"

STATUSES = frozenset({"Current", "InProgress", "Failed", "Terminating", "NotFound", "Unknown"})


class KstatusError(RuntimeError):
    """The helper could not be built, or refused its input."""


@functools.cache
def binary() -> Path:
    """The helper's path; builds it the first time (about 30 s on 2 cores with a warm module
    cache, a no-op afterwards)."""
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=1200,  # a cold module download and build; bounded all the same
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        raise KstatusError(f"{BUILD_SCRIPT} failed: {err}") from err
    path = Path(result.stdout.strip().splitlines()[-1]) / "kstatus"
    if not path.is_file():
        raise KstatusError(f"{BUILD_SCRIPT} reported {path.parent}, which has no kstatus")
    return path


def compute(obj: dict[str, Any]) -> tuple[str, str]:
    """kstatus' ``(status, message)`` for one object, as ``status.Compute`` returns them.

    Raises:
        KstatusError: the helper failed to build or rejected the object.
    """
    result = subprocess.run(
        [str(binary())],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise KstatusError(f"kstatus exited {result.returncode}: {result.stderr.strip()}")
    answer = json.loads(result.stdout)
    status, message = str(answer["status"]), str(answer["message"])
    if status not in STATUSES:
        raise KstatusError(f"kstatus answered an unknown status {status!r}")
    return status, message
