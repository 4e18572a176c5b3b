"""Running a committed Go build script and finding what it built.

The GitOps helpers (``e2e/gitops/build.sh``) and KEDA (``e2e/keda/build.sh``) come from committed
scripts that key a cache by their wrapper ``go.mod``/``go.sum`` and themselves, build under a lock
and publish atomically; on a warm cache a run is a hash check. Both follow one contract, kept here
once: ``bash build.sh <what>`` prints progress on stderr (left to the terminal, so a long cold
build shows it is alive) and the directory it built as the last line of stdout.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["GoBuildError", "build"]


class GoBuildError(RuntimeError):
    """A build script failed, printed no directory, or reported one without what it should hold."""


def build(script: Path, what: str, *, timeout: float, files: Sequence[str] = ()) -> Path:
    """Run ``bash <script> <what>``; the directory it reports, checked to hold ``files``.

    Raises:
        GoBuildError: the script failed or ran past ``timeout``, printed no directory, or the
            directory lacks one of ``files``.
    """
    try:
        result = subprocess.run(
            ["bash", str(script), what],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=timeout,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        raise GoBuildError(f"{script} {what} failed: {err}") from err
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise GoBuildError(f"{script} {what} printed no directory")
    built = Path(lines[-1])
    for name in files:
        if not (built / name).is_file():
            raise GoBuildError(f"{script} {what} reported {built}, which has no {name}")
    return built
