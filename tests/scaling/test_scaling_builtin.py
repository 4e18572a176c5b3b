"""The builtin scaler's decision: one row per situation the status must explain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gantry.api.spec import ScalingSpec
from gantry.api.status import ScalingStatus
from gantry.scaling import PodReading, decide_builtin
from gantry.scaling.builtin import carried, frozen
from gantry.scaling.readings import PodValue

T0 = datetime(2025, 1, 1, tzinfo=UTC)
UP = [{"type": "Pods", "value": 2, "periodSeconds": 10}]
DOWN = [{"type": "Pods", "value": 1, "periodSeconds": 10}]
FAST = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "policies": UP},
    "scaleDown": {"stabilizationWindowSeconds": 30, "policies": DOWN},
}


def scaling(**over: Any) -> ScalingSpec:
    raw = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "metric": {"type": "queueTimeMs", "target": 50},
        "behavior": FAST,
    }
    return ScalingSpec.model_validate({**raw, **over})


def serving(name: str, value: float) -> PodReading:
    return PodReading(name, serving=True, value=PodValue(value=value))


def silent(name: str, why: str = "connection refused") -> PodReading:
    return PodReading(name, serving=True, value=PodValue(problem=why))


def loading(name: str) -> PodReading:
    return PodReading(name, serving=False)


@pytest.mark.parametrize(
    ("current", "pods", "want", "active", "reason"),
    [
        ([1], [serving("a", 150)], 3, True, "Autoscaling"),
        ([1], [serving("a", 52)], 1, True, "Autoscaling"),  # within tolerance
        ([3], [serving("a", 500), serving("b", 500), serving("c", 500)], 3, True, "AtMaxReplicas"),
        # the pods the last scale-up added still load: no second scale-up
        ([3], [serving("a", 500), loading("b"), loading("c")], 3, True, "WaitingForModelLoad"),
        # a pod without metrics: named, scale-down held
        ([2], [serving("a", 1), silent("b")], 2, False, "MetricUnavailable"),
        # ... a scale-up still happens, the missing pod counted as idle
        ([2], [serving("a", 400), silent("b")], 3, False, "MetricUnavailable"),
        ([2], [silent("a"), silent("b")], 2, False, "MetricUnavailable"),
        (
            [1],
            [PodReading("a", serving=True, value=PodValue(warming=True))],
            1,
            True,
            "AwaitingMetrics",
        ),
        ([5], [serving("a", 50)], 3, True, "AtMaxReplicas"),  # above max: brought to max
        ([0], [], 0, False, "ScalingDisabled"),
    ],
)
def test_decision(
    current: list[int], pods: list[PodReading], want: int, active: bool, reason: str
) -> None:
    d = decide_builtin(scaling(), current=current[0], pods=pods, previous=None, now=T0)
    assert (d.replicas, d.autoscaler.active, d.autoscaler.reason) == (want, active, reason)
    assert (d.status.reason, d.status.desired_replicas) == (reason, want)
    assert bool(d.rescaled) == (want != current[0])
    if reason == "MetricUnavailable":
        assert "b: connection refused" in d.autoscaler.message
        assert "b" in d.status.pods_without_metrics


def test_status_reads_like_the_hpa() -> None:
    d = decide_builtin(scaling(), current=1, pods=[serving("a", 73.25)], previous=None, now=T0)
    assert (d.status.current_value, d.status.target) == ("73250m", "50")
    assert d.status.last_scale_time == T0
    assert [e.change for e in d.status.scale_events] == [1]
    assert d.autoscaler.message.startswith("queueTimeMs 73.25ms per pod (target 50ms)")


def test_scale_down_waits_for_the_window_across_restarts() -> None:
    """The history lives in status.scaling: a decision from a fresh process honours it."""
    high = decide_builtin(
        scaling(), current=3, pods=[serving(n, 50) for n in "abc"], previous=None, now=T0
    )
    assert high.replicas == 3
    status = ScalingStatus.model_validate(high.status.model_dump(mode="json", by_alias=True))
    idle = [serving(n, 0) for n in "abc"]
    soon = decide_builtin(
        scaling(), current=3, pods=idle, previous=status, now=T0 + timedelta(seconds=20)
    )
    assert soon.replicas == 3
    later = decide_builtin(
        scaling(), current=3, pods=idle, previous=soon.status, now=T0 + timedelta(seconds=31)
    )
    assert later.replicas == 2  # one pod per 10 s
    last = decide_builtin(
        scaling(), current=2, pods=idle[:2], previous=later.status, now=T0 + timedelta(seconds=35)
    )
    assert last.replicas == 2  # the 10 s period is not over


def test_steady_load_does_not_flap() -> None:
    """Values wandering within the tolerance never change the size."""
    previous, changes = None, 0
    for i, v in enumerate([48, 53, 51, 46, 54, 50, 47, 52] * 5):
        d = decide_builtin(
            scaling(),
            current=2,
            pods=[serving("a", v), serving("b", v)],
            previous=previous,
            now=T0 + timedelta(seconds=5 * i),
        )
        changes += d.replicas != 2
        previous = d.status
    assert changes == 0


def test_between_reads_and_during_a_canary() -> None:
    d = decide_builtin(
        scaling(), current=2, pods=[serving("a", 1), silent("b")], previous=None, now=T0
    )
    again = carried(d.status)
    assert again is not None
    assert (again.active, again.reason) == (False, "MetricUnavailable")
    held = frozen(d.status)
    assert held is not None
    assert held.reason == "FrozenForCanary"
    assert held.recommendations == d.status.recommendations
    assert carried(ScalingStatus(provider="hpa")) is None
