"""KEDA's trigger numbers: plain decimals its float64 parser reads (found against KEDA itself).

KEDA v2.21.0's operator refused Gantry's first ScaledObject with ``unable to set param
"threshold" value "2500m"``: quantities are for Kubernetes fields, not trigger metadata.
"""

from __future__ import annotations

import pytest

from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.render.keda import plain_number, render_scaled_object

OWNER = Owner(name="resnet", namespace="ml", uid="u-1", generation=1)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (50, "50"),
        (50.0, "50"),
        (2.5, "2.5"),
        (0.25, "0.25"),
        (1e-05, "0.00001"),
        (1_000_000, "1000000"),
        (0, "0"),
        (0.1, "0.1"),
    ],
)
def test_plain_number(value: float, text: str) -> None:
    assert plain_number(value) == text
    assert float(text) == value  # what KEDA's float64 parser reads back


def test_trigger_threshold_and_activation_are_plain_decimals() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "resnet50", "uri": "s3://models/resnet50"},
            "scaling": {
                "provider": "keda",
                "minReplicas": 0,
                "maxReplicas": 4,
                "metric": {"type": "inflight", "target": 2.5},
                "keda": {"serverAddress": "http://prometheus:9090", "activationThreshold": 0.5},
            },
        }
    )
    (trigger,) = render_scaled_object(OWNER, spec, "resnet-abc")["spec"]["triggers"]
    assert trigger["metadata"]["threshold"] == "2.5"
    assert trigger["metadata"]["activationThreshold"] == "0.5"
