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
        pytest.param(
            {"resources": {"cpu": "0"}},
            "resources.cpu",
            "cpu must be a quantity above 0",
            id="zero-cpu",
        ),
        pytest.param(
            {"resources": {"memory": "1e3m"}},
            "resources.memory",
            "should match pattern",
            id="quantity-grammar",
        ),
        pytest.param(
            {"resources": {"memory": "2Ei"}},
            "resources.memory",
            "at most 1Ei",
            id="quantity-too-large",
        ),
        pytest.param(
            {"model": {**MODEL, "uri": "pvc://"}},
            "model.uri",
            "should match pattern",
            id="pvc-without-claim",
        ),
        pytest.param(
            {"model": {**MODEL, "uri": "pvc://claim/a/../b"}},
            "model.uri",
            "must not contain '..'",
            id="pvc-backstep",
        ),
        pytest.param(
            {"runtime": {"image": "Triton Server"}},
            "runtime.image",
            "should match pattern",
            id="bad-image",
        ),
        pytest.param(
            {"placement": {"tolerations": [{"key": "a", "operator": "Sometimes"}]}},
            "placement.tolerations",
            "[0].operator: unsupported value 'Sometimes'",
            id="toleration-operator",
        ),
        pytest.param(
            {"placement": {"tolerations": [{"operator": "Equal", "value": "x"}]}},
            "placement.tolerations",
            "[0].operator: operator must be Exists when key is empty",
            id="toleration-empty-key",
        ),
        pytest.param(
            {"placement": {"nodeSelector": {"-bad/key": "v"}}},
            "placement.nodeSelector",
            "key '-bad/key' must be a label key",
            id="node-selector-key",
        ),
        pytest.param(
            {
                "placement": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "zone", "operator": "In"}]}
                                ]
                            }
                        }
                    }
                }
            },
            "placement.affinity",
            ".matchExpressions[0].values: values must be set when operator is In or NotIn",
            id="affinity-in-without-values",
        ),
        pytest.param(
            {"placement": {"affinity": {"podAffinity": {"unknown": []}}}},
            "placement.affinity",
            ".podAffinity.unknown: unknown field",
            id="affinity-unknown-field",
        ),
        pytest.param(
            {"placement": {"priorityClassName": "High_Priority"}},
            "placement.priorityClassName",
            "should match pattern",
            id="priority-class-name",
        ),
        pytest.param(
            {"scaling": {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0}]}}}},
            "scaling.behavior",
            ".scaleUp.policies[0].periodSeconds: Required value",
            id="hpa-policy",
        ),
        pytest.param(
            {"scaling": {"metric": {"type": "cpu", "target": 0.4}}},
            "scaling.metric",
            "at least 1 (percent) for cpu",
            id="cpu-target-rounds-to-zero",
        ),
        pytest.param(
            {"resources": {"gpu": {"product": "NVIDIA-H100-"}}},
            "resources.gpu.product",
            "should match pattern",
            id="product-not-a-label-value",
        ),
        pytest.param(
            {
                "rollout": {
                    **CANARY,
                    "canary": {
                        "trafficRouting": {
                            "type": "gatewayAPI",
                            "parentRefs": [{"name": "gw"}, {"name": "gw", "sectionName": "a"}],
                        }
                    },
                }
            },
            "rollout.canary.trafficRouting",
            "must each name a different sectionName",
            id="parent-refs-same-gateway",
        ),
        pytest.param(
            {
                "rollout": {
                    **CANARY,
                    "canary": {"trafficRouting": {"hostnames": ["Models.Example.com"]}},
                }
            },
            "rollout.canary.trafficRouting.hostnames.0",
            "should match pattern",
            id="hostname-uppercase",
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


def test_mig_media_extension_profile_is_a_valid_resource_name() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {"model": MODEL, "resources": {"gpu": {"mig": {"profile": "1g.10gb+me"}}}}
    )
    assert spec.resources.gpu is not None
    # As the device plugin advertises it: "+" is not allowed in a resource name.
    assert spec.resources.gpu.resource_name == "nvidia.com/mig-1g.10gb.me"


def test_core_types_that_the_api_server_accepts_parse() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": MODEL,
            "placement": {
                "nodeSelector": {"topology.kubernetes.io/zone": "eu-1a"},
                "tolerations": [
                    {"operator": "Exists"},
                    {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
                    {
                        "key": "k",
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 30,
                    },
                ],
                "affinity": {
                    "nodeAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 10,
                                "preference": {
                                    "matchExpressions": [
                                        {"key": "mem", "operator": "Gt", "values": ["100"]}
                                    ]
                                },
                            }
                        ]
                    },
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"app": "x"}},
                                "matchLabelKeys": ["pod-template-hash"],
                            }
                        ]
                    },
                },
            },
            "scaling": {
                "minReplicas": 1,
                "maxReplicas": 3,
                "behavior": {
                    "scaleDown": {
                        "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]
                    }
                },
            },
        }
    )
    assert len(spec.placement.tolerations) == 3


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
