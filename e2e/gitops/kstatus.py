"""What kstatus (sigs.k8s.io/cli-utils, the health library of Flux and kpt) says of an object.

Runs the Go helper built by ``e2e/gitops/build.sh kstatus`` (cached outside the repository);
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

from e2e.gitops import tool

STATUSES = frozenset({"Current", "InProgress", "Failed", "Terminating", "NotFound", "Unknown"})


class KstatusError(RuntimeError):
    """The helper could not be built, or refused its input."""


@functools.cache
def binary() -> Path:
    """The helper's path; builds it the first time (about 30 s on 2 cores with a warm module
    cache, a no-op afterwards)."""
    try:
        return tool.build("kstatus", "kstatus", timeout=1200)
    except tool.ToolBuildError as err:
        raise KstatusError(str(err)) from err


def compute(obj: dict[str, Any]) -> tuple[str, str]:
    """kstatus' ``(status, message)`` for one object, as ``status.Compute`` returns them.

    Raises:
        KstatusError: the helper failed to build or rejected the object.
    """
    result = subprocess.run(
        [str(binary())],
        # Newline-terminated: apimachinery's YAML reader drops a last line of exactly 4096
        # bytes (its buffer size) that has no newline, and answers "no object".
        input=json.dumps(obj) + "\n",
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
