"""pydantic validation of the spec: every refusal names the field it is about.

The same rules exist as CEL in the CRD (the API server's gate); these are the
operator's own check, used by ``gantry render`` and for objects that got past
an older CRD.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gantry.api.spec import ModelDeploymentSpec, parse_duration

MODEL = {"name": "resnet50", "uri": "s3://models/resnet50"}


def refusal(**sections: Any) -> tuple[str, str, str]:
    """(dotted location, message, full text) of the single error validating ``sections``."""
    with pytest.raises(ValidationError) as caught:
        ModelDeploymentSpec.model_validate({"model": MODEL, **sections})
    (error,) = caught.value.errors()
    return ".".join(str(p) for p in error["loc"]), error["msg"], str(caught.value)


CANARY = {"strategy": "canary", "canary": {}}


@pytest.mark.parametrize(
    ("sections", "location", "message"),
    [
        pytest.param(
            {"scaling": {"minReplicas": 5, "maxReplicas": 2}},
            "scaling",
            "scaling.minReplicas must be less than or equal to scaling.maxReplicas",
            id="min-above-max",
        ),
        pytest.param(
            {"resources": {"gpu": {"count": 1, "mig": {"profile": "1g.10gb"}}}},
            "resources.gpu",
            "set either gpu.count (whole GPUs) or gpu.mig (MIG slices), not both",
            id="gpu-count-and-mig",
        ),
        pytest.param(
            {"rollout": {**CANARY, "canary": {"steps": [{"setWeight": 50}, {"setWeight": 20}]}}},
            "rollout.canary.steps",
            "canary.steps setWeight values must strictly increase",
            id="weights-decrease",
        ),
        pytest.param(
            {"rollout": {**CANARY, "canary": {"steps": [{"setWeight": 20}, {"setWeight": 20}]}}},
            "rollout.canary.steps",
            "canary.steps setWeight values must strictly increase",
            id="weights-repeat",
        ),
        pytest.param(
            {"rollout": {**CANARY, "canary": {"steps": [{"setWeight": 10, "pause": {}}]}}},
            "rollout.canary.steps.0",
            "each canary step sets exactly one of setWeight, pause, analysis",
            id="step-two-kinds",
        ),
        pytest.param(
            {"rollout": {**CANARY, "canary": {"steps": [{"setWeight": 101}]}}},
            "rollout.canary.steps.0.setWeight",
            "less than or equal to 100",
            id="weight-above-100",
        ),
        pytest.param(
            {"rollout": {**CANARY, "canary": {"analysis": {"interval": "30 seconds"}}}},
            "rollout.canary.analysis.interval",
            "should match pattern",
            id="bad-duration",
        ),
        pytest.param(
            {"rollout": {**CANARY, "canary": {"steps": [{"pause": {"duration": "1d"}}]}}},
            "rollout.canary.steps.0.pause.duration",
            "should match pattern",
            id="bad-pause-duration",
        ),
        pytest.param(
            {"model": {**MODEL, "uri": "ftp://models/resnet50"}},
            "model.uri",
            "should match pattern",
            id="bad-uri-scheme",
        ),
        pytest.param(
            {"rollout": {"strategy": "canary"}},
            "rollout",
            "rollout.canary is required when rollout.strategy is canary",
            id="canary-without-canary",
        ),
        pytest.param(
            {"rollout": {**CANARY, "canary": {"trafficRouting": {"type": "gatewayAPI"}}}},
            "rollout.canary.trafficRouting",
            "trafficRouting.parentRefs is required for gatewayAPI",
            id="gateway-without-parent",
        ),
        pytest.param(
            {"runtime": {"ports": {"http": 8001}}},
            "runtime",
            "runtime.ports http, grpc and metrics must differ",
            id="port-clash",
        ),
        pytest.param(
            {"resources": {"gpu": {"mig": {"profile": "10gb"}}}},
            "resources.gpu.mig.profile",
            "should match pattern",
            id="bad-mig-profile",
        ),
        pytest.param(
            {"resources": {"memory": "lots"}},
            "resources.memory",
            "should match pattern",
            id="bad-quantity",
        ),
        pytest.param(
            {"scaling": {"metric": {"type": "rps"}}},
            "scaling.metric.type",
            "Input should be",
            id="unknown-metric",
        ),
        pytest.param(
            {"resources": {"gpus": 1}},
            "resources.gpus",
            "Extra inputs are not permitted",
            id="unknown-field",
        ),
    ],
)
def test_refusals_name_the_field(sections: dict[str, Any], location: str, message: str) -> None:
    got_location, got_message, text = refusal(**sections)
    assert got_location == location
    assert message in got_message
    assert location in text, "the printed error names the field path"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match="'5 minutes' is not a duration"):
        parse_duration("5 minutes")


def test_wire_names_are_camel_case_and_round_trip() -> None:
    wire = {
        "model": MODEL,
        "resources": {"gpu": {"minMemoryMiB": 40000}},
        "runtime": {"shmSize": "2Gi"},
        "scaling": {"minReplicas": 1, "maxReplicas": 2},
    }
    spec = ModelDeploymentSpec.model_validate(wire)
    assert spec.resources.gpu is not None
    assert spec.resources.gpu.min_memory_mi_b == 40000
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert ModelDeploymentSpec.model_validate(dumped) == spec
    assert "minMemoryMiB" in dumped["resources"]["gpu"]
