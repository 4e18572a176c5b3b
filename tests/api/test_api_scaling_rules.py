"""The scaling rules' pydantic gate, and the CRD carrying the same rules (CEL) word for word.

The table is ``tests/api/scaling_rules.py``; the API server evaluates the CEL
side of the same rows in ``e2e/test_keda_render.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gantry.api.crd import build_crd
from gantry.api.spec import ModelDeploymentSpec, ScalingSpec
from tests.api.scaling_rules import (
    BUILTIN_NO_CPU,
    CASES,
    KEDA_NEEDS_SERVER,
    SCALE_TO_ZERO,
    RuleCase,
)

MODEL = {"name": "resnet50", "uri": "s3://models/resnet50"}


def scaling_schema() -> dict[str, Any]:
    root = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema: dict[str, Any] = root["properties"]["spec"]["properties"]["scaling"]
    return schema


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pydantic_gate(case: RuleCase) -> None:
    spec = {"model": MODEL, "scaling": case.scaling}
    if case.refused is None:
        ModelDeploymentSpec.model_validate(spec)
        return
    with pytest.raises(ValidationError) as caught:
        ModelDeploymentSpec.model_validate(spec)
    (error,) = caught.value.errors()
    assert error["loc"] == ("scaling",)
    assert case.refused in error["msg"]
    # The API server names the field the rule's fieldPath points at.
    assert case.field.startswith("spec.scaling.")


@pytest.mark.parametrize("message", [SCALE_TO_ZERO, KEDA_NEEDS_SERVER, BUILTIN_NO_CPU])
def test_the_crd_carries_each_rule_with_the_same_message(message: str) -> None:
    rules = scaling_schema()["x-kubernetes-validations"]
    (rule,) = [r for r in rules if r["message"] == message]
    # Each refusal in the table names the field that this rule's fieldPath points at.
    fields = {c.field for c in CASES if c.refused == message}
    assert fields == {f"spec.scaling{rule['fieldPath']}"}
    assert rule["fieldPath"].lstrip(".") in scaling_schema()["properties"]


def test_every_rule_has_rows_on_both_sides_of_it() -> None:
    for message in (SCALE_TO_ZERO, KEDA_NEEDS_SERVER, BUILTIN_NO_CPU):
        refused = [c for c in CASES if c.refused == message]
        assert len(refused) >= 2, message
    accepted = {c.id for c in CASES if c.refused is None}
    # The boundary each rule draws, from the accepting side.
    assert {"zero-keda", "keda-with-settings", "cpu-without-provider", "hpa-cpu"} <= accepted


def test_effective_provider_of_accepted_rows() -> None:
    # builtin for a Triton metric, hpa for cpu, unless the spec names one.
    got = {
        c.id: ScalingSpec.model_validate(c.scaling).effective_provider.value
        for c in CASES
        if c.refused is None
    }
    assert got["one-without-provider"] == "builtin"
    assert got["cpu-without-provider"] == "hpa"
    assert got["zero-keda"] == "keda"
    assert got["keda-settings-without-keda"] == "hpa"
