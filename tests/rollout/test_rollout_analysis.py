"""Background analysis inside the rollout: the measure/decide protocol, limits, timing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from rollout_builders import (
    CANARY_DEP,
    MD,
    OLD,
    Walker,
    at,
    at_step,
    bad,
    build_spec,
    good,
    measurement,
    observe,
    quiet,
    ready,
    reasons,
    run_decide,
)

from gantry.analysis.measurement import Reading
from gantry.api.status import CanaryPhase, Verdict

# The canary sits at a one-hour pause after 10%, so verdicts are all that happens.
SITTING: list[dict[str, Any]] = [
    {"setWeight": 10},
    {"pause": {"duration": "1h"}},
    {"setWeight": 50},
]


def sitting(**analysis: object) -> Walker:
    return at_step(1, build_spec(steps=SITTING, analysis=dict(analysis)))


def test_a_due_interval_asks_for_a_measurement_and_uses_the_one_given() -> None:
    w = sitting()
    now = at(w.clock + 30)
    obs = w.obs()
    first = run_decide(w.spec, w.st, obs, now)
    assert first.measure
    second = run_decide(w.spec, w.st, dataclasses.replace(obs, measurement=good(now)), now)
    assert not second.measure
    assert second.canary is not None
    assert (
        second.canary.analysis.successes
        == (w.st.canary.analysis.successes if w.st.canary else 0) + 1
    )
    assert second.canary.last_analysis_at == now
    assert second.requeue_after == 30.0


def test_a_measurement_of_another_revision_is_ignored() -> None:
    w = sitting()
    now = at(w.clock + 30)
    stale = dataclasses.replace(w.obs(), measurement=bad(now, revision=OLD))
    d = run_decide(w.spec, w.st, stale, now)
    assert d.measure
    assert d.canary == run_decide(w.spec, w.st, w.obs(), now).canary


def test_a_measurement_not_asked_for_is_ignored() -> None:
    w = sitting()
    now = at(w.clock + 10)  # the interval ends at +30
    d = run_decide(w.spec, w.st, dataclasses.replace(w.obs(), measurement=bad(now)), now)
    assert not d.measure
    assert d.canary is not None
    assert d.canary.analysis.failures == 0


def test_the_first_measurement_only_starts_the_interval() -> None:
    w = at_step(0, build_spec(steps=SITTING))
    assert w.st.canary is not None
    assert w.st.canary.last_analysis_at is None  # the canary was not serving yet
    d = w.tick(10, measurer=bad)  # pods ready now: the baseline, never judged
    assert d.canary is not None
    assert d.canary.last_analysis_at == at(10)
    assert d.canary.analysis.failures == 0
    assert d.canary.analysis.history == []


def test_a_warming_measurement_is_not_counted() -> None:
    w = sitting()
    d = w.tick(30, measurer=lambda now: measurement(now, warming=True, failed=500))
    assert d.canary is not None
    assert d.canary.analysis.failures == 0
    assert d.canary.analysis.history == []
    assert d.canary.last_analysis_at == at(w.clock)


@pytest.mark.parametrize(
    ("measurer", "verdict", "events"),
    [
        (good, Verdict.SUCCESSFUL, []),
        (bad, Verdict.FAILED, ["AnalysisIntervalFailed"]),
        (quiet, Verdict.INCONCLUSIVE, []),
        (lambda now: measurement(now, no_data=True), Verdict.INCONCLUSIVE, []),
        (
            lambda now: measurement(now, error="connection refused"),
            Verdict.ERROR,
            ["AnalysisError"],
        ),
    ],
    ids=["successful", "failed", "too-little-traffic", "no-data", "provider-error"],
)
def test_each_verdict_is_recorded(measurer, verdict: Verdict, events: list[str]) -> None:  # type: ignore[no-untyped-def]
    w = sitting()
    before = w.st.canary.analysis if w.st.canary else None
    d = w.tick(30, measurer=measurer)
    assert d.canary is not None
    a = d.canary.analysis
    assert a.last is not None
    assert a.last.verdict is verdict
    assert a.history[-1] == a.last
    assert reasons(d) == events
    assert before is not None
    bumped = {
        Verdict.SUCCESSFUL: (1, 0, 0),
        Verdict.FAILED: (0, 1, 0),
        Verdict.INCONCLUSIVE: (0, 0, 1),
        Verdict.ERROR: (0, 0, 1),
    }[verdict]
    assert (a.successes, a.failures, a.inconclusive) == (
        before.successes + bumped[0],
        before.failures + bumped[1],
        bumped[2],  # the streak was 0: every earlier interval passed
    )


def test_a_provider_error_says_so_and_counts_as_inconclusive() -> None:
    w = sitting(inconclusiveLimit=0)
    d = w.tick(30, measurer=lambda now: measurement(now, error="prometheus unreachable"))
    assert d.canary is not None
    assert d.canary.phase is CanaryPhase.PAUSED
    assert "analysis provider error: prometheus unreachable" in d.message


def test_a_success_resets_the_inconclusive_streak() -> None:
    w = sitting()
    w.tick(30, measurer=quiet)
    w.tick(30, measurer=quiet)
    d = w.tick(30, measurer=good)
    assert d.canary is not None
    assert d.canary.analysis.inconclusive == 0
    d = w.tick(30, measurer=quiet)
    assert d.canary is not None
    assert d.canary.phase is CanaryPhase.PROGRESSING


@pytest.mark.parametrize("limit", [0, 1, 2, 5])
def test_failure_limit_boundary(limit: int) -> None:
    w = sitting(failureLimit=limit)
    for n in range(1, limit + 1):
        d = w.tick(30, measurer=bad)
        assert d.canary is not None
        assert d.canary.phase is CanaryPhase.PROGRESSING, f"rolled back after {n} failures"
    d = w.tick(30, measurer=bad)
    assert d.canary is not None
    assert d.canary.phase is CanaryPhase.ABORTED
    assert d.canary.reason == "AnalysisFailed"
    assert d.canary.analysis.failures == limit + 1


def test_failures_are_cumulative_not_consecutive() -> None:
    w = sitting(failureLimit=1)
    w.tick(30, measurer=bad)
    w.tick(30, measurer=good)
    d = w.tick(30, measurer=bad)
    assert d.canary is not None
    assert d.canary.phase is CanaryPhase.ABORTED


@pytest.mark.parametrize("limit", [0, 1, 3])
def test_inconclusive_limit_boundary(limit: int) -> None:
    w = sitting(inconclusiveLimit=limit)
    for _ in range(limit):
        d = w.tick(30, measurer=quiet)
        assert d.canary is not None
        assert d.canary.phase is CanaryPhase.PROGRESSING
    d = w.tick(30, measurer=quiet)
    assert d.canary is not None
    assert (d.canary.phase, d.canary.reason) == (CanaryPhase.PAUSED, "InconclusiveAnalysis")
    assert "too little traffic to judge: 3 requests < 10" in d.canary.message


def test_a_paused_canary_is_still_analysed_and_rolled_back() -> None:
    w = sitting(failureLimit=0)
    w.tick(1, annotations={"serving.gantry.dev/pause": "1"})
    d = w.tick(30, measurer=bad)
    assert d.canary is not None
    assert d.canary.phase is CanaryPhase.ABORTED


def test_a_paused_canary_does_not_progress_its_analysis_step() -> None:
    w = at_step(2)  # analysis x2
    w.tick(1, annotations={"serving.gantry.dev/pause": "1"})
    w.tick(30)
    w.tick(30)
    assert w.st.canary is not None
    assert (w.st.canary.step_index, w.st.canary.analysis.step_successes) == (2, 0)


def test_inconclusive_never_passes_an_analysis_step() -> None:
    w = at_step(2, build_spec(analysis={"inconclusiveLimit": 100}))
    for _ in range(10):
        w.tick(30, measurer=quiet)
    assert w.st.canary is not None
    assert w.st.canary.step_index == 2


def test_the_rollback_names_every_failing_metric() -> None:
    w = sitting(failureLimit=0, latency={"maxMs": 100})

    def slow_and_failing(now):  # type: ignore[no-untyped-def]
        m = bad(now)
        return dataclasses.replace(m, latency_mean_ms=Reading(250.0, query="lat"))

    d = w.tick(30, measurer=slow_and_failing)
    assert d.canary is not None
    assert d.canary.phase is CanaryPhase.ABORTED
    assert "success-rate, latency-mean" in d.message
    assert "250ms is not <= 100ms" in d.message


def test_history_keeps_the_last_ten_runs() -> None:
    w = sitting()
    for _ in range(14):
        w.tick(30)
    assert w.st.canary is not None
    history = w.st.canary.analysis.history
    assert len(history) == 10
    assert history[-1].time == at(w.clock)


def test_analysis_stops_while_the_canary_has_no_pods_and_restarts_with_a_baseline() -> None:
    w = sitting()
    lost = w.tick(30, canary_ready=0, measurer=bad)
    assert lost.canary is not None
    assert lost.canary.last_analysis_at is None
    assert lost.canary.analysis.failures == 0
    back = w.tick(5, measurer=bad)  # the baseline again
    assert back.canary is not None
    assert back.canary.analysis.failures == 0
    assert back.canary.last_analysis_at == at(w.clock)


@pytest.mark.parametrize("limit", [0, 1, 2, 3])
@pytest.mark.parametrize("offset", [0.5, 15.0, 29.5])
def test_rollback_within_the_promised_time_of_the_first_bad_data(limit: int, offset: float) -> None:
    """interval * (failureLimit + 1) + one interval, with the shell waking at each requeue."""
    interval = 30.0
    w = sitting(failureLimit=limit)
    bad_from = w.clock + interval * 3 + offset

    def traffic(now):  # type: ignore[no-untyped-def]
        # The interval ending now is bad once any of it saw bad data.
        return bad(now) if (now - at(0)).total_seconds() > bad_from else good(now)

    for _ in range(100):
        assert w.last is not None
        w.tick(w.last.requeue_after or 1.0, measurer=traffic)
        assert w.st.canary is not None
        if w.st.canary.phase is CanaryPhase.ABORTED:
            break
    assert w.st.canary is not None
    assert w.st.canary.phase is CanaryPhase.ABORTED
    assert w.clock - bad_from <= interval * (limit + 1) + interval


def test_gateway_analysis_follows_the_routed_weight() -> None:
    spec = build_spec(routing="gatewayAPI", steps=SITTING)
    w = at_step(0, spec)
    assert w.st.canary is not None
    assert w.st.canary.actual_weight == 0
    # Routed weight 0: no traffic reaches the canary, nothing to measure yet.
    d = run_decide(spec, w.st, observe({MD: ready(4), CANARY_DEP: ready(1, available=0)}), at(5))
    assert not d.measure
