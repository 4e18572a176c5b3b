"""images/operator/Dockerfile, as far as it can be checked without a Docker engine.

What is checked: the install line names the package without extras; everything that
install pulls in (the installed distribution's requirements without extras, transitively)
has no torch and no Triton; the image runs as a numeric non-root user matching the chart's
runAsUser; the entrypoint is the ``gantry`` console script the package declares.
What is not: building the image (no Docker here).
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "images" / "operator" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_image_installs_the_package_without_extras() -> None:
    runs = [args for word, args in instructions() if word == "RUN"]
    wheel = [r for r in runs if "pip wheel" in r]
    assert wheel
    assert re.search(r"pip wheel .* \.$", wheel[0]), wheel
    install = [r for r in runs if "pip install" in r]
    assert install
    assert re.search(r"--no-index --find-links=/wheels gantry(\s|$)", install[0])
    assert "[runtime]" not in DOCKERFILE.read_text().replace("`runtime`", "")


def _closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Distributions ``name`` needs (with ``extras``), transitively, as installed here."""
    seen: set[str] = set()
    stack = [(name, extras)]
    while stack:
        dist_name, dist_extras = stack.pop()
        key = dist_name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(dist_name) or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in dist_extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                stack.append((req.name, frozenset(req.extras)))
    return seen


def test_the_operator_without_extras_pulls_no_torch_and_no_triton() -> None:
    needed = _closure("gantry")
    assert "kopf" in needed
    assert "pydantic" in needed
    # tritonclient would bring numpy and gevent; httpx a second HTTP stack beside aiohttp.
    for heavy in ("torch", "nvidia-pytriton", "tritonclient", "numpy", "gevent", "httpx"):
        assert heavy not in needed, sorted(needed)
    with_runtime = _closure("gantry", frozenset({"runtime"}))
    assert "torch" in with_runtime  # the check can see torch when it is asked for
    assert "tritonclient" in with_runtime


def test_the_image_user_is_numeric_non_root_and_matches_the_chart() -> None:
    users = [args for word, args in instructions() if word == "USER"]
    assert users, "no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    values = yaml.safe_load((ROOT / "charts" / "gantry" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)


def test_the_entrypoint_is_the_declared_console_script() -> None:
    entry = [args for word, args in instructions() if word == "ENTRYPOINT"]
    assert entry == ['["gantry"]']
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["gantry"] == "gantry.cli:main"
    bases = [args for word, args in instructions() if word == "FROM"]
    assert all("-slim" in b for b in bases), bases
