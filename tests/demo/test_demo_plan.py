"""What the demo applies: the example at each version with the plan's canary, and the backer's
version-to-model flags; the manifests are checked against the operator's own spec model."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from e2e.demo import EXAMPLE
from e2e.demo_backer import parse_serve
from e2e.demo_plan import FAULTY, FULL, QUICK, Plan, manifest
from gantry.api.spec import ModelDeploymentSpec


@pytest.fixture
def example() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return loaded


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
@pytest.mark.parametrize("version", [1, 2, FAULTY])
def test_manifest_is_a_valid_spec_with_the_plan(
    example: dict[str, Any], plan: Plan, version: int
) -> None:
    before = copy.deepcopy(example)
    md = manifest(example, namespace="demo-ns", version=version, plan=plan)
    assert example == before, "the example must not be changed in place"
    assert md["metadata"] == {**example["metadata"], "namespace": "demo-ns"}
    spec = ModelDeploymentSpec.model_validate(md["spec"])
    assert spec.model.version == str(version)
    assert spec.model.name == example["spec"]["model"]["name"]
    assert md["spec"]["replicas"] == plan.replicas
    canary = md["spec"]["rollout"]["canary"]
    assert canary["steps"] == [dict(s) for s in plan.steps]
    assert canary["analysis"]["provider"] == {"type": "scrape"}
    assert canary["analysis"]["interval"] == f"{plan.interval_s:g}s"
    # Everything else is the example's own.
    for key in ("runtime",):
        assert md["spec"][key] == example["spec"][key]


def test_only_the_model_version_differs_between_acts(example: dict[str, Any]) -> None:
    a = manifest(example, namespace="n", version=2, plan=FULL)
    b = manifest(example, namespace="n", version=FAULTY, plan=FULL)
    b["spec"]["model"]["version"] = "2"
    assert a == b


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
def test_the_load_outlasts_both_canaries(plan: Plan) -> None:
    assert plan.load_seconds > 2 * plan.canary_timeout_s
    # Enough canary requests per interval for a verdict: never "too little traffic".
    canary_share = 1 / (plan.replicas + 1)
    per_interval = plan.load_rate * canary_share * plan.interval_s
    assert per_interval >= 2 * plan.analysis()["minRequestCount"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {}),
        (["3=fails_on_traffic"], {3: "fails_on_traffic"}),
        (["3=slow", "4=healthy"], {3: "slow", 4: "healthy"}),
    ],
)
def test_parse_serve(flags: list[str], expected: dict[int, str]) -> None:
    assert parse_serve(flags) == expected


@pytest.mark.parametrize("flag", ["3", "x=healthy", "3=", "3=not-a-name", "=healthy"])
def test_parse_serve_refuses_what_is_not_version_equals_factory(flag: str) -> None:
    with pytest.raises(ValueError, match="--serve wants VERSION=FACTORY"):
        parse_serve([flag])
