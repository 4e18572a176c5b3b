"""The scaling bench's figures from a timeline (its pure part; the run itself needs a cluster)."""

from __future__ import annotations

import pytest

from bench.scaling_bench import (
    HPA_NOT_RUN,
    Options,
    Result,
    Sample,
    changes,
    needed_replicas,
    report,
    step_figures,
)


@pytest.mark.parametrize(
    ("rate", "service_s", "utilization", "needed"),
    [
        (8, 0.3, 0.8, 3),  # 2.4 busy / 0.8 is exactly 3, not 4 (float rounding)
        (8.1, 0.3, 0.8, 4),
        (1, 0.3, 0.8, 1),
        (0.1, 0.3, 0.8, 1),
        (20, 0.3, 1.0, 6),
    ],
)
def test_needed_replicas(rate: float, service_s: float, utilization: float, needed: int) -> None:
    assert needed_replicas(rate, service_s, utilization) == needed


@pytest.mark.parametrize(("rate", "utilization"), [(0, 0.8), (-1, 0.8), (8, 0), (8, 1.5)])
def test_needed_replicas_refuses_nonsense(rate: float, utilization: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        needed_replicas(rate, 0.3, utilization)


def timeline(*points: tuple[float, int, int]) -> list[Sample]:
    return [Sample(t, desired, serving) for t, desired, serving in points]


def test_step_figures_time_overshoot_and_calm() -> None:
    samples = timeline(
        (-1, 1, 1),  # before the step: ignored
        (0, 1, 1),
        (5, 3, 1),
        (10, 4, 2),  # one more than needed asked for
        (30, 4, 3),  # capacity serving
        (40, 3, 3),
        (100, 3, 3),
        (160, 3, 3),
    )
    got = step_figures(samples, needed=3, steady_from=30)
    assert got.time_to_capacity_s == 30
    assert (got.overshoot, got.max_desired) == (1, 4)
    assert got.steady_changes == 1  # 4 -> 3 at 40 s
    assert got.steady_seconds == 130
    assert got.changes_per_10min == pytest.approx(600 / 130)


def test_step_figures_when_capacity_never_comes() -> None:
    got = step_figures(timeline((0, 1, 1), (10, 2, 1), (20, 2, 1)), needed=3, steady_from=20)
    assert got.time_to_capacity_s is None
    assert got.overshoot == 0
    assert got.changes_per_10min is None  # one sample: no window to scale


def test_changes_counts_each_change_of_size() -> None:
    assert changes(timeline((0, 1, 0), (1, 1, 0), (2, 2, 0), (3, 1, 0), (4, 1, 0))) == 2
    assert changes([]) == 0


def test_report_says_why_no_hpa_comparison_and_the_ratio() -> None:
    samples = timeline((0, 1, 1), (20, 3, 3), (80, 3, 3))
    result = Result(
        options=Options(),
        cold_start_s=10.0,
        step=step_figures(samples, needed=3, steady_from=20),
        scale_down_s=45.0,
    )
    text = report(result)
    assert "2.00x" in text  # 20 s to capacity over a 10 s cold start
    assert "0 in 60s = 0.0 per 10 min" in text
    assert HPA_NOT_RUN in text
