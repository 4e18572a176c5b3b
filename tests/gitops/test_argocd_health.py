"""Gantry's Argo CD health check and resource actions, run by Argo CD's own Lua engine.

``argocd/serving.gantry.dev/ModelDeployment`` is laid out as Argo CD's
``resource_customizations/<group>/<Kind>/``; its ``health_test.yaml`` and
``actions/action_test.yaml`` are in Argo CD's own test format. Every case here runs through
``argocd-lua`` (argo-cd v3.2.12 ``util/lua`` built by ``e2e/gitops/build.sh``), which calls
the engine as the application controller (health) and the API server (discovery, actions) do.

The first test builds the CLI (5-13 minutes on 2 cores cold, cached under
``~/.cache/gantry/gitops``); without Go the module is skipped with that reason.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.gitops import argocd

DIR = argocd.CUSTOMIZATION
TESTDATA = DIR / "testdata"
HEALTH_TESTS: list[dict[str, Any]] = yaml.safe_load((DIR / "health_test.yaml").read_text())["tests"]
ACTION_TESTS: dict[str, Any] = yaml.safe_load((DIR / "actions" / "action_test.yaml").read_text())
ACTIONS = ("abort", "pause", "promote", "promote-step", "resume")
GATES = {
    "promote": ("serving.gantry.dev/promote", "true"),
    "promote-step": ("serving.gantry.dev/promote", "step"),
    "abort": ("serving.gantry.dev/abort", "true"),
    "pause": ("serving.gantry.dev/pause", "true"),
    "resume": ("serving.gantry.dev/resume", "true"),
}

pytestmark = [
    pytest.mark.skipif(
        not argocd.go_available(),
        reason="Go is not installed: argocd-lua (Argo CD's Lua engine) is built from source "
        "by e2e/gitops/build.sh",
    ),
    # The first test to ask for the CLI may build it cold (5-13 minutes on 2 cores, by load
    # on the machine); every later test takes milliseconds.
    pytest.mark.timeout(3600),
]


def load(path: Path) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(path.read_text())
    return obj


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(argocd.binary()), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module", autouse=True)
def built() -> Path:
    """Build (or find cached) the CLI once, before any test measures anything."""
    return argocd.binary()


# ---- health ------------------------------------------------------------------------------


@pytest.mark.parametrize("open_libs", [False, True], ids=["argocd-cm", "built-in"])
@pytest.mark.parametrize(
    "case", HEALTH_TESTS, ids=[Path(t["inputPath"]).stem for t in HEALTH_TESTS]
)
def test_health(case: dict[str, Any], open_libs: bool) -> None:
    """Each state's health, with and without Lua's standard libraries (argocd-cm scripts
    run without them unless useOpenLibs is set; built-in ones run with them)."""
    obj = load(DIR / case["inputPath"])
    want = case["healthStatus"]
    assert argocd.health(obj, open_libs=open_libs) == (want["status"], want["message"])


def test_every_testdata_file_has_a_health_expectation() -> None:
    """A state recorded into testdata/ without a row in health_test.yaml is never checked."""
    listed = {Path(t["inputPath"]).name for t in HEALTH_TESTS}
    present = {p.name for p in TESTDATA.glob("*.yaml")}
    assert present - listed == set(), "add these to health_test.yaml"
    assert listed - present == set(), "health_test.yaml names files that do not exist"


def test_every_health_status_is_exercised() -> None:
    statuses = {t["healthStatus"]["status"] for t in HEALTH_TESTS}
    assert statuses == {"Healthy", "Progressing", "Suspended", "Degraded"}


def test_stalled_wins_over_ready_and_paused() -> None:
    """Stalled is the one signal that a person must act, whatever else the status says."""
    obj = load(TESTDATA / "canary-paused.yaml")
    for c in obj["status"]["conditions"]:
        if c["type"] == "Stalled":
            c.update(status="True", reason="ProgressDeadlineExceeded", message="stuck")
    assert argocd.health(obj) == ("Degraded", "ProgressDeadlineExceeded: stuck")


def test_missing_fields_do_not_break_the_script() -> None:
    obj = load(TESTDATA / "ready.yaml")
    obj["status"]["conditions"] = [{"type": "Ready", "status": "True", "observedGeneration": 1}]
    assert argocd.health(obj) == ("Healthy", "Ready")
    obj["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert argocd.health(obj) == ("Progressing", "Waiting for the operator to observe generation 1")
    del obj["metadata"]["generation"]
    assert argocd.health(obj)[0] == "Progressing"
    obj["status"] = {"phase": "Paused"}
    assert argocd.health(obj)[0] == "Progressing"


def test_another_kind_gets_no_health_from_this_script() -> None:
    obj = load(TESTDATA / "ready.yaml")
    obj["kind"] = "InferenceService"
    with pytest.raises(
        argocd.ArgoCDError, match=r"no health check for serving\.gantry\.dev/InferenceService"
    ):
        argocd.health(obj)


# ---- discovery ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ACTION_TESTS["discoveryTests"],
    ids=[Path(t["inputPath"]).stem for t in ACTION_TESTS["discoveryTests"]],
)
def test_discovery(case: dict[str, Any]) -> None:
    """Exactly the expected actions, names, display names and disabled flags."""
    obj = load(DIR / "actions" / case["inputPath"])
    got = argocd.run("discovery", obj=obj)
    want = sorted(case["result"], key=lambda a: a["name"])
    # Argo CD omits disabled=false from its JSON.
    assert [{"disabled": False, **a} for a in got] == [{"disabled": False, **a} for a in want]


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.yaml")), ids=lambda p: p.stem)
def test_discovery_offers_every_action_for_every_state(path: Path) -> None:
    assert sorted(argocd.discovery(load(path))) == list(ACTIONS)


# ---- actions -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["canary-analysis.yaml", "canary-paused.yaml"])
@pytest.mark.parametrize("name", ACTIONS)
def test_action_sets_only_its_gate(name: str, source: str) -> None:
    """The object comes back with one annotation added, and the merge patch Argo CD's API
    server sends holds nothing else (no number or empty-map artefacts of the Lua round trip)."""
    obj = load(TESTDATA / source)
    key, value = GATES[name]
    result = argocd.action(name, obj)
    assert result["mergePatch"] == {"metadata": {"annotations": {key: value}}}
    want = copy.deepcopy(obj)
    want["metadata"].setdefault("annotations", {})[key] = value
    assert result["resource"] == want


@pytest.mark.parametrize(
    "case",
    ACTION_TESTS["actionTests"],
    ids=[f"{t['action']}-{Path(t['inputPath']).stem}" for t in ACTION_TESTS["actionTests"]],
)
def test_action_matches_expected_output(case: dict[str, Any]) -> None:
    obj = load(DIR / "actions" / case["inputPath"])
    want = load(DIR / "actions" / case["expectedOutputPath"])
    assert argocd.action(case["action"], obj)["resource"] == want


def test_unknown_action_is_an_error() -> None:
    with pytest.raises(argocd.ArgoCDError, match='"restart": built-in script does not exist'):
        argocd.action("restart", load(TESTDATA / "ready.yaml"))


# ---- Argo CD's own test loop, and that it can fail ---------------------------------------


@pytest.mark.parametrize("open_libs", [False, True], ids=["argocd-cm", "built-in"])
def test_argo_cd_test_format_passes(open_libs: bool) -> None:
    """health_test.yaml and action_test.yaml as Argo CD's util/lua tests run them."""
    args = ["test", "--dir", str(DIR), *(["--open-libs"] if open_libs else [])]
    result = cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = len(HEALTH_TESTS) + sum(len(v) for v in ACTION_TESTS.values())
    assert result.stdout.count('"ok":true') == cases


@pytest.fixture
def copy_of_customization(tmp_path: Path) -> Path:
    """A writable copy, under the same <group>/<Kind> path (the override key comes from it)."""
    target = tmp_path / "serving.gantry.dev" / "ModelDeployment"
    shutil.copytree(DIR, target)
    return target


def test_a_wrong_health_expectation_fails(copy_of_customization: Path) -> None:
    path = copy_of_customization / "health_test.yaml"
    tests = yaml.safe_load(path.read_text())
    ready = next(t for t in tests["tests"] if t["inputPath"] == "testdata/ready.yaml")
    ready["healthStatus"]["status"] = "Progressing"
    path.write_text(yaml.safe_dump(tests))
    result = cli("test", "--dir", str(copy_of_customization))
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if '"ok":false' in line]
    assert len(failed) == 1
    assert "health/testdata/ready.yaml" in failed[0]
    assert "Healthy" in failed[0]


def test_a_wrong_action_expectation_fails(copy_of_customization: Path) -> None:
    expected = copy_of_customization / "actions" / "testdata" / "canary-analysis-after-promote.yaml"
    obj = load(expected)
    obj["metadata"]["annotations"]["serving.gantry.dev/promote"] = "step"
    expected.write_text(yaml.safe_dump(obj))
    result = cli("test", "--dir", str(copy_of_customization))
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if '"ok":false' in line]
    assert len(failed) == 1
    assert "actions/promote/../testdata/canary-analysis.yaml" in failed[0]


def test_a_wrong_discovery_expectation_fails(copy_of_customization: Path) -> None:
    path = copy_of_customization / "actions" / "action_test.yaml"
    tests = yaml.safe_load(path.read_text())
    # Argo CD's own loop only checks that each returned action is expected; ours also
    # catches an action that is expected but missing or different.
    tests["discoveryTests"][0]["result"][0]["disabled"] = False
    path.write_text(yaml.safe_dump(tests))
    result = cli("test", "--dir", str(copy_of_customization))
    assert result.returncode != 0
    assert result.stdout.count('"ok":false') == 1


def test_a_lua_error_is_reported_not_hidden(copy_of_customization: Path) -> None:
    """Argo CD shows a failing script as Unknown; here it must fail loudly."""
    (copy_of_customization / "health.lua").write_text("return obj.status.nope.nope\n")
    with pytest.raises(argocd.ArgoCDError, match="failed to get resource health"):
        argocd.health(load(TESTDATA / "ready.yaml"), directory=copy_of_customization)


def test_standard_libraries_are_not_needed(copy_of_customization: Path) -> None:
    """The engine really runs argocd-cm scripts without the string library: a script that
    uses it fails there and works with --open-libs."""
    (copy_of_customization / "health.lua").write_text(
        'return {status = "Healthy", message = string.upper("x")}\n'
    )
    obj = load(TESTDATA / "ready.yaml")
    assert argocd.health(obj, open_libs=True, directory=copy_of_customization) == ("Healthy", "X")
    with pytest.raises(argocd.ArgoCDError):
        argocd.health(obj, directory=copy_of_customization)


# ---- installing it -----------------------------------------------------------------------


def test_argocd_cm_snippet_installs_health_and_every_action() -> None:
    result = cli("argocd-cm", "--dir", str(DIR))
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)["data"]
    health_key = "resource.customizations.health.serving.gantry.dev_ModelDeployment"
    actions_key = "resource.customizations.actions.serving.gantry.dev_ModelDeployment"
    assert set(data) == {health_key, actions_key}
    assert data[health_key] == (DIR / "health.lua").read_text()
    actions = yaml.safe_load(data[actions_key])
    assert actions["discovery.lua"] == (DIR / "actions" / "discovery.lua").read_text()
    assert sorted(d["name"] for d in actions["definitions"]) == list(ACTIONS)
