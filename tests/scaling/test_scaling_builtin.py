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


def busy(name: str, value: float, fraction: float | None) -> PodReading:
    return PodReading(name, serving=True, value=PodValue(value=value, busy=fraction))


@pytest.mark.parametrize(
    ("current", "pods", "want", "why"),
    [
        # No queue on 3 pods, each 80% busy: 2.4 pods of work need 3 at <= 90%: held.
        (3, [busy(n, 0, 0.8) for n in "abc"], 3, "held at 3: the model ran 2.40 pods' worth"),
        # ... each 40% busy: 1.2 pods of work fit in 2: one pod goes (the policy's limit).
        (3, [busy(n, 0, 0.4) for n in "abc"], 2, "scale-down to 1 held at 2"),
        # ... each 20% busy: the floor is 1, the policy takes one pod per period.
        (3, [busy(n, 0, 0.2) for n in "abc"], 2, "3 -> 2 replicas (limited: ScaleDownLimit"),
        # The floor never scales up: 2 pods fully busy (3 needed) stay 2 without a queue.
        (2, [busy(n, 0, 1.0) for n in "ab"], 2, "scale-down to 1 held at 2"),
        # A pod that did not report busy adds nothing: the floor is a lower bound.
        (3, [busy("a", 0, 0.85), busy("b", 0, None), busy("c", 0, 0.85)], 2, "ran 1.70"),
        # Nothing reported busy: the HPA's ratio alone.
        (3, [busy(n, 0, None) for n in "abc"], 2, "3 -> 2 replicas"),
    ],
)
def test_capacity_floor_holds_what_the_work_needs(
    current: int, pods: list[PodReading], want: int, why: str
) -> None:
    d = decide_builtin(scaling(), current=current, pods=pods, previous=None, now=T0)
    assert d.replicas == want, d.autoscaler.message
    assert why in d.autoscaler.message
    assert (d.autoscaler.active, d.autoscaler.reason) == (True, "Autoscaling")


def test_capacity_floor_with_pods_loading_is_not_waiting_for_them() -> None:
    pods = [busy("a", 0, 0.9), busy("b", 0, 0.9), loading("c")]
    d = decide_builtin(scaling(), current=3, pods=pods, previous=None, now=T0)
    assert d.replicas == 2  # the loading pod is not needed: the serving two do the work
    assert d.autoscaler.reason == "Autoscaling"


def test_queue_time_on_a_saturation_edge_does_not_flap() -> None:
    """The load of the scaling bench: 3 pods never queue, 2 always do.

    Without the floor the HPA's ratio asks for 1 whenever the 3 pods' queue is
    empty, the queue explodes on 2, and the size flaps once per window.
    """
    previous, sizes, current = None, [], 3
    for i in range(120):  # 10 minutes of 5 s scrapes
        queue, load = (0.0, 0.8) if current >= 3 else (2000.0, 1.0)
        pods = [busy(f"p{n}", queue, load) for n in range(current)]
        d = decide_builtin(
            scaling(),
            current=current,
            pods=pods,
            previous=previous,
            now=T0 + timedelta(seconds=5 * i),
        )
        previous, current = d.status, d.replicas
        sizes.append(current)
    assert set(sizes) == {3}
