"""behavior as horizontal.go applies it: stabilization windows, rate policies, bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gantry.api.status import MAX_HISTORY, Recommendation, ScaleEvent
from gantry.render.hpa import DEFAULT_BEHAVIOR
from gantry.scaling.behavior import Behavior, compact, normalize

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return T0 - timedelta(seconds=seconds)


UP = [{"type": "Pods", "value": 1, "periodSeconds": 30}]
DOWN = [{"type": "Percent", "value": 50, "periodSeconds": 30}]
FAST: dict[str, Any] = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "policies": UP},
    "scaleDown": {"stabilizationWindowSeconds": 60, "policies": DOWN},
}


@pytest.mark.parametrize(
    ("behavior", "current", "desired", "recs", "events", "want", "limit"),
    [
        # one pod per 30 s up: 1 -> 2, not 3
        (FAST, 1, 3, [], [], 2, "ScaleUpLimit"),
        # a pod added 10 s ago used this period's budget: hold at 2
        (FAST, 2, 3, [], [ScaleEvent(time=ago(10), change=1)], 2, "ScaleUpLimit"),
        # ... 31 s ago it no longer counts
        (FAST, 2, 3, [], [ScaleEvent(time=ago(31), change=1)], 3, ""),
        # the max bound wins over a looser policy
        (DEFAULT_BEHAVIOR, 3, 9, [], [], 4, "TooManyReplicas"),
        # scale-down window: a recommendation of 3 from 30 s ago keeps 3
        (FAST, 3, 1, [Recommendation(time=ago(30), replicas=3)], [], 3, ""),
        # ... from 61 s ago it has left the window: 50% per period -> 1 (int(3 * 0.5))
        (FAST, 3, 1, [Recommendation(time=ago(61), replicas=3)], [], 1, ""),
        # percent down truncates as the HPA does: 4 * 0.5 = 2
        (FAST, 4, 1, [], [], 2, "ScaleDownLimit"),
        # never below minReplicas
        (FAST, 2, 0, [], [], 1, "TooFewReplicas"),
        # selectPolicy Disabled: no scale-up at all
        ({"scaleUp": {"selectPolicy": "Disabled"}}, 2, 4, [], [], 2, "ScaleUpLimit"),
        # API-server defaults for a partial behavior: up 4 pods or 100% per 15 s
        ({}, 1, 9, [], [], 5, "ScaleUpLimit"),
    ],
)
def test_normalize(
    behavior: dict[str, Any],
    current: int,
    desired: int,
    recs: list[Recommendation],
    events: list[ScaleEvent],
    want: int,
    limit: str,
) -> None:
    got = normalize(
        Behavior.parse(behavior),
        current=current,
        desired=desired,
        min_replicas=1,
        max_replicas=4 if behavior is DEFAULT_BEHAVIOR else 8,
        recommendations=recs,
        events=events,
        now=T0,
    )
    assert (got.replicas, got.limit) == (want, limit)
    assert got.recommendations[-1] == Recommendation(time=T0, replicas=desired)


def test_history_outside_every_window_is_dropped() -> None:
    got = normalize(
        Behavior.parse(FAST),
        current=2,
        desired=2,
        min_replicas=1,
        max_replicas=4,
        recommendations=[Recommendation(time=ago(61), replicas=4)],
        events=[],
        now=T0,
    )
    assert [r.replicas for r in got.recommendations] == [2]


def _window_extremes(
    recs: list[Recommendation] | tuple[Recommendation, ...], cutoff: datetime
) -> tuple[int, int] | None:
    inside = [r.replicas for r in recs if r.time > cutoff]
    return (min(inside), max(inside)) if inside else None


def test_compact_keeps_every_windows_lowest_and_highest() -> None:
    rng = random.Random(12)
    for _ in range(200):
        recs = [
            Recommendation(time=T0 + timedelta(seconds=2 * i), replicas=rng.randint(1, 6))
            for i in range(rng.randint(0, 60))
        ]
        kept = compact(recs)
        assert list(kept) == sorted(kept, key=lambda r: r.time)
        assert len(kept) <= 2 * 6
        for i in range(-1, len(recs)):
            cutoff = T0 + timedelta(seconds=2 * i)
            assert _window_extremes(kept, cutoff) == _window_extremes(recs, cutoff)


def test_a_peak_older_than_max_history_scrapes_still_holds_the_window() -> None:
    # A 2 s scrape under a 600 s scale-down window: 300 recommendations per window, more
    # than the status keeps (MAX_HISTORY); the peak 500 s ago must still hold the size.
    behavior = Behavior.parse({"scaleDown": {"stabilizationWindowSeconds": 600}})
    recs: tuple[Recommendation, ...] = (Recommendation(time=T0, replicas=5),)
    now = T0
    for _ in range(250):
        now += timedelta(seconds=2)
        got = normalize(
            behavior,
            current=5,
            desired=1,
            min_replicas=1,
            max_replicas=8,
            recommendations=recs,
            events=[],
            now=now,
        )
        recs = got.recommendations[-MAX_HISTORY:]
        assert got.replicas == 5
    assert len(recs) == 2  # the peak, and the latest low one
