"""Building a cached Go helper through its build script, once per process."""

from __future__ import annotations

import subprocess
from pathlib import Path


class ToolBuildError(RuntimeError):
    """The build script failed, or reported a folder without the binary."""


def build(script: Path, name: str, *, timeout: float) -> Path:
    """Run ``script`` (a hash check when its cache is current) and return ``bin/<name>``.

    The script prints the bin folder as its last line on stdout; progress goes to stderr.
    """
    try:
        result = subprocess.run(
            ["bash", str(script)], stdout=subprocess.PIPE, text=True, check=True, timeout=timeout
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        raise ToolBuildError(f"{script} failed: {err}") from err
    path = Path(result.stdout.strip().splitlines()[-1]) / name
    if not path.is_file():
        raise ToolBuildError(f"{script} reported {path.parent}, which has no {name}")
    return path
