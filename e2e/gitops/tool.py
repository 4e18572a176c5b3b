"""Building a cached Go helper through its build script, once per process."""

from __future__ import annotations

from pathlib import Path

from e2e import gotools

# The name kstatus and argocd catch; one error for every Go tool build.
ToolBuildError = gotools.GoBuildError

BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"


def build(tool: str, name: str, *, timeout: float) -> Path:
    """Build ``tool`` with build.sh (a hash check when its cache is current); ``bin/<name>``."""
    return gotools.build(BUILD_SCRIPT, tool, timeout=timeout, files=(name,)) / name
