"""status.scaling copied from the HPA and from KEDA's ScaledObject."""

from __future__ import annotations

from gantry.api.spec import ScalingSpec
from gantry.scaling import from_hpa, from_scaled_object

SCALING = ScalingSpec.model_validate(
    {
        "provider": "hpa",
        "minReplicas": 1,
        "maxReplicas": 4,
        "metric": {"type": "queueTimeMs", "target": 50},
    }
)


def hpa(*conds: tuple[str, str, str], current: str | None = None) -> dict[str, object]:
    status: dict[str, object] = {
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "lastScaleTime": "2025-01-01T00:00:00Z",
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": f"{r} said"} for t, s, r in conds
        ],
    }
    if current:
        status["currentMetrics"] = [
            {
                "type": "Pods",
                "pods": {"metric": {"name": "q"}, "current": {"averageValue": current}},
            }
        ]
    return {"status": status}


def test_no_metrics_from_the_adapter_is_metric_unavailable() -> None:
    obj = hpa(
        ("AbleToScale", "True", "SucceededGetScale"),
        ("ScalingActive", "False", "FailedGetPodsMetric"),
    )
    status, verdict = from_hpa(SCALING, obj)
    assert (verdict.active, verdict.reason) == (False, "MetricUnavailable")
    assert "FailedGetPodsMetric" in verdict.message
    assert [c.type for c in status.conditions] == ["AbleToScale", "ScalingActive"]
    assert (status.current_value, status.target, status.desired_replicas) == (None, "50", 3)


def test_limited_by_max_is_at_max_replicas() -> None:
    obj = hpa(
        ("ScalingActive", "True", "ValidMetricFound"),
        ("ScalingLimited", "True", "TooManyReplicas"),
        current="120",
    )
    status, verdict = from_hpa(SCALING, obj)
    assert (verdict.active, verdict.reason, status.current_value) == (True, "AtMaxReplicas", "120")
    assert status.last_scale_time is not None


def test_not_reported_yet() -> None:
    _, verdict = from_hpa(SCALING, None)
    assert (verdict.active, verdict.reason) == (True, "AwaitingMetrics")


def test_keda_not_ready() -> None:
    scaled = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ScaledObjectCheckFailed",
                    "message": "no server",
                }
            ]
        }
    }
    status, verdict = from_scaled_object(SCALING, scaled, 2)
    assert (verdict.active, verdict.reason) == (False, "AutoscalerNotReady")
    assert (status.provider, status.current_replicas) == ("keda", 2)
