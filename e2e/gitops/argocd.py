"""What Argo CD says of a ModelDeployment: its health and its resource actions.

Runs ``argocd-lua``, Argo CD v3.2.12's own Lua engine (``util/lua``) wrapped in a small CLI
built by ``e2e/gitops/build.sh argocd`` (cached outside the repository), over Gantry's resource
customization in ``argocd/serving.gantry.dev/ModelDeployment``. The first call in a process
builds the CLI or finds it built; later calls reuse that path::

    from e2e.gitops import argocd
    status, message = argocd.health(md)       # e.g. ("Suspended", "CanaryPaused: ...")
    argocd.discovery(md)                      # name -> disabled: {"abort": False, ...}
    argocd.action("promote", md)              # the object after the action, as Argo CD patches

Health goes through gitops-engine's ``health.GetResourceHealth`` as the application controller
calls it; discovery and actions through ``lua.VM`` as the API server runs them.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from e2e.gitops import tool

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CUSTOMIZATION = REPO / "argocd" / "serving.gantry.dev" / "ModelDeployment"

# gitops-engine's HealthStatusCode values; Argo CD turns any other answer into Unknown.
STATUSES = frozenset({"Healthy", "Progressing", "Suspended", "Degraded", "Missing", "Unknown"})


class ArgoCDError(RuntimeError):
    """The CLI could not be built, or Argo CD's engine failed on the object or a script."""


def go_available() -> bool:
    """Whether a Go toolchain is on PATH (the CLI is built from source)."""
    return shutil.which("go") is not None


@functools.cache
def binary() -> Path:
    """The CLI's path; builds it the first time (5-13 minutes on 2 cores cold, a hash
    check afterwards)."""
    try:
        return tool.build("argocd", "argocd-lua", timeout=3600)
    except tool.ToolBuildError as err:
        raise ArgoCDError(str(err)) from err


def run(*args: str, obj: dict[str, Any] | None = None, directory: Path = CUSTOMIZATION) -> Any:
    """Runs ``argocd-lua ARGS --dir DIRECTORY [-f -]`` and returns its JSON answer.

    Raises:
        ArgoCDError: the CLI exited non-zero (a Lua error, an unknown action, a bad object).
    """
    command = [str(binary()), *args, "--dir", str(directory)]
    if obj is not None:
        command += ["-f", "-"]
    result = subprocess.run(
        command,
        input=json.dumps(obj) if obj is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise ArgoCDError(
            f"argocd-lua {args[0]} exited {result.returncode}: {result.stderr.strip()}"
        )
    return json.loads(result.stdout)


def health(
    obj: dict[str, Any], *, open_libs: bool = False, directory: Path = CUSTOMIZATION
) -> tuple[str, str]:
    """Argo CD's ``(status, message)`` for one ModelDeployment.

    ``open_libs`` runs health.lua with Lua's standard libraries, as Argo CD does for built-in
    customizations; the default is what an argocd-cm customization gets.

    Raises:
        ArgoCDError: the CLI failed to build, or the script failed (Argo CD would show
            Unknown with the error).
    """
    args = ["health", "--open-libs"] if open_libs else ["health"]
    answer = run(*args, obj=obj, directory=directory)
    status, message = str(answer["status"]), str(answer.get("message", ""))
    if status not in STATUSES:
        raise ArgoCDError(f"argocd-lua answered an unknown health status {status!r}")
    return status, message


def discovery(obj: dict[str, Any], *, directory: Path = CUSTOMIZATION) -> dict[str, bool]:
    """The actions Argo CD offers for the object: ``{name: disabled}``."""
    answer = run("discovery", obj=obj, directory=directory)
    return {str(a["name"]): bool(a.get("disabled", False)) for a in answer}


def action(name: str, obj: dict[str, Any], *, directory: Path = CUSTOMIZATION) -> dict[str, Any]:
    """Runs one action; returns ``{"resource": the object after it, "mergePatch": the JSON
    merge patch Argo CD's API server would send}``.

    Raises:
        ArgoCDError: the action is unknown or failed, or returned anything but one patch of
            the object.
    """
    answer = run("action", name, obj=obj, directory=directory)
    if len(answer) != 1 or answer[0]["operation"] != "patch":
        raise ArgoCDError(f"action {name} did not return exactly one patch: {answer}")
    return {"resource": answer[0]["resource"], "mergePatch": answer[0].get("mergePatch") or {}}
