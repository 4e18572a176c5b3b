"""Building a cached Go helper through its build script, once per process."""

from __future__ import annotations

import subprocess
from pathlib import Path


class ToolBuildError(RuntimeError):
    """The build script failed, or reported a folder without the binary."""


BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"


def build(tool: str, name: str, *, timeout: float) -> Path:
    """Build ``tool`` with build.sh (a hash check when its cache is current); ``bin/<name>``.

    The script prints the bin folder as its last line on stdout; progress goes to stderr.
    """
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), tool],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=timeout,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        raise ToolBuildError(f"{BUILD_SCRIPT} {tool} failed: {err}") from err
    path = Path(result.stdout.strip().splitlines()[-1]) / name
    if not path.is_file():
        raise ToolBuildError(f"{BUILD_SCRIPT} {tool} reported {path.parent}, which has no {name}")
    return path
