"""Gates on a canary that paused, or waits at weight 100, with no traffic to judge it.

The canary is the demo's (``e2e/demo_plan.py``, FULL: two stable pods, setWeight 34,
analysis x2, setWeight 50, analysis x2, 5 s intervals, inconclusiveLimit 3), copied
here because a pure test does not import the e2e tier. Without traffic every interval
is Inconclusive, so the canary pauses (reason InconclusiveAnalysis) wherever it is.

Each case walks the canary into a situation, sets one gate for one tick, then keeps
ticking at the decision's own requeue, still without traffic, and checks where the
canary ends: a promote gate must end in a promotion (the canary's revision stable,
the old Deployment gone), with the gate consumed on its tick only and one
CanaryPromoted event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from rollout_builders import (
    CANARY_DEP,
    MD,
    NEW,
    OLD,
    Walker,
    build_spec,
    measurement,
    reasons,
    replicas,
    stable,
    status,
)

from gantry.analysis.measurement import Measurement
from gantry.api.spec import ModelDeploymentSpec
from gantry.api.status import CanaryPhase
from gantry.rollout import Decision

PROMOTE = "serving.gantry.dev/promote"
PAUSE = "serving.gantry.dev/pause"
RESUME = "serving.gantry.dev/resume"
INCONCLUSIVE = "InconclusiveAnalysis"
LIMIT = 3  # the demo's inconclusiveLimit
INTERVAL = 5.0  # the demo's analysis interval, seconds
DEMO_STEPS: list[dict[str, Any]] = [
    {"setWeight": 34},
    {"analysis": {"intervals": 2}},
    {"setWeight": 50},
    {"analysis": {"intervals": 2}},
]
PROMOTION = len(DEMO_STEPS)  # the promotion phase's step index
# Seconds a new canary pod takes to serve: longer than an analysis interval, as on the
# demo's machine, so the promotion phase is analysed while it waits for its pods.
STARTUP = 2 * INTERVAL


def demo_spec() -> ModelDeploymentSpec:
    return build_spec(
        steps=DEMO_STEPS,
        replicas=2,
        analysis={
            "interval": f"{INTERVAL:g}s",
            "failureLimit": 1,
            "inconclusiveLimit": LIMIT,
            "minRequestCount": 3,
            # The demo also bounds latency; the builders' measurements carry none.
            "provider": {"type": "scrape"},
        },
    )


def idle(now: datetime) -> Measurement:
    """An interval in which nobody sent the canary a request."""
    return measurement(now, ok=0)


def canary_at(step: int) -> Walker:
    """The demo canary, with traffic, walked to ``step`` (two stable pods observed)."""
    w = Walker(demo_spec(), status(stable_rev=stable()), steady=2)
    w.tick()
    w.until(lambda s: s.canary is not None and s.canary.step_index >= step)
    c = w.st.canary
    assert c is not None
    assert (c.step_index, c.phase) == (step, CanaryPhase.PROGRESSING)
    return w


def walk_idle(w: Walker, *, canary_ready: int | None = None, limit: int = 30) -> list[Decision]:
    """Tick at each requeue without traffic until the canary pauses or leaves flight."""
    seen: list[Decision] = []
    for _ in range(limit):
        assert w.last is not None
        seen.append(w.tick(w.last.requeue_after or 1.0, measurer=idle, canary_ready=canary_ready))
        c = w.st.canary
        assert c is not None
        if c.phase is not CanaryPhase.PROGRESSING:
            return seen
    return seen


def paused_inconclusive(step: int, canary_ready: int | None = None) -> Walker:
    """The demo canary paused for lack of traffic at ``step``."""
    w = canary_at(step)
    walk_idle(w, canary_ready=canary_ready)
    c = w.st.canary
    assert c is not None
    assert (c.step_index, c.phase, c.reason) == (step, CanaryPhase.PAUSED, INCONCLUSIVE)
    return w


def paused_by_hand(step: int) -> Walker:
    """Paused with the pause gate, then left without traffic past the inconclusive limit
    (a paused canary is still analysed; its streak keeps growing)."""
    w = canary_at(step)
    w.tick(1, annotations={PAUSE: "true"}, measurer=idle)
    for _ in range(LIMIT + 2):
        w.tick(INTERVAL, measurer=idle)
    c = w.st.canary
    assert c is not None
    assert (c.phase, c.reason) == (CanaryPhase.PAUSED, "ManualPause")
    assert c.analysis.inconclusive > LIMIT
    return w


def promoting_short_of_pods() -> Walker:
    """In the promotion phase (weight 100), one of its two pods still starting."""
    w = canary_at(PROMOTION)
    w.tick(1, canary_ready=1, measurer=idle)
    c = w.st.canary
    assert c is not None
    assert (c.step_index, c.weight, c.phase) == (PROMOTION, 100, CanaryPhase.PROGRESSING)
    return w


@dataclass(frozen=True)
class Run:
    gate_tick: Decision
    after: list[Decision]
    walker: Walker

    @property
    def all(self) -> list[Decision]:
        return [self.gate_tick, *self.after]


def gate_then_idle(
    w: Walker,
    gate: dict[str, str],
    *,
    gate_ready: int | None = None,
    pods_after: float = STARTUP,
    limit: int = 30,
) -> Run:
    """One tick with ``gate`` set, then idle ticks at each requeue until out of flight,
    re-paused, or ``limit`` ticks. The canary pods the gate asks for start ``pods_after``
    seconds after it (one canary pod serves until then), as a model server takes time."""
    first = w.tick(1, annotations=gate, measurer=idle, canary_ready=gate_ready)
    gated = w.clock
    after: list[Decision] = []
    for _ in range(limit):
        c = w.st.canary
        assert c is not None
        if c.phase is not CanaryPhase.PROGRESSING:
            break
        wait = w.last.requeue_after if w.last and w.last.requeue_after else 1.0
        starting = w.clock + wait - gated < pods_after
        after.append(w.tick(wait, measurer=idle, canary_ready=1 if starting else None))
    return Run(first, after, w)


def assert_promoted(run: Run, gate: str) -> None:
    w = run.walker
    c = w.st.canary
    assert c is not None
    assert (c.phase, c.reason) == (CanaryPhase.PROMOTED, "Promoted"), c.message
    assert w.st.stable is not None
    assert (w.st.stable.revision, w.st.stable.deployment) == (NEW, CANARY_DEP)
    assert replicas(run.all[-1]) == {CANARY_DEP: 2}, "the old Deployment is retired"
    assert run.gate_tick.consumed == (gate,)
    assert all(d.consumed == () for d in run.after), "the gate is consumed once"
    promoted = [r for d in run.all for r in reasons(d) if r == "CanaryPromoted"]
    assert promoted == ["CanaryPromoted"]


# ---- the report: promote a canary paused for lack of traffic ---------------------------

PAUSED_AT = [
    pytest.param(1, None, STARTUP, id="analysis-step-1"),
    pytest.param(2, 1, STARTUP, id="setWeight-50-one-pod-short"),
    pytest.param(3, None, 0.0, id="last-step-analysis-pods-already-full"),
    pytest.param(3, None, STARTUP, id="last-step-analysis-a-pod-restarting"),
    pytest.param(PROMOTION, 1, STARTUP, id="promotion-phase-weight-100"),
]


@pytest.mark.parametrize(("step", "short", "pods_after"), PAUSED_AT)
def test_promote_promotes_a_canary_paused_for_lack_of_traffic(
    step: int, short: int | None, pods_after: float
) -> None:
    w = paused_inconclusive(step, canary_ready=short)
    run = gate_then_idle(w, {PROMOTE: "true"}, pods_after=pods_after)
    assert_promoted(run, PROMOTE)


def test_promote_in_the_promotion_phase_promotes_at_once_when_the_pods_are_ready() -> None:
    w = paused_inconclusive(PROMOTION, canary_ready=1)
    paused = w.last
    assert paused is not None
    assert replicas(paused) == {MD: 1, CANARY_DEP: 2}  # the handover is half done
    run = gate_then_idle(w, {PROMOTE: "true"})
    assert reasons(run.gate_tick) == ["CanaryPromoted"]
    assert run.after == []
    assert_promoted(run, PROMOTE)


def test_promote_in_the_promotion_phase_waits_for_pods_not_for_evidence() -> None:
    w = paused_inconclusive(PROMOTION, canary_ready=1)
    run = gate_then_idle(w, {PROMOTE: "true"}, gate_ready=1)
    c = run.gate_tick.canary
    assert c is not None
    assert (c.phase, c.step_index, c.weight) == (CanaryPhase.PROGRESSING, PROMOTION, 100)
    assert reasons(run.gate_tick) == ["CanaryPromoting"]
    assert_promoted(run, PROMOTE)


def test_promote_step_on_the_last_step_then_promotes() -> None:
    w = paused_inconclusive(3)
    run = gate_then_idle(w, {PROMOTE: "step"})
    assert reasons(run.gate_tick) == ["CanaryPromoting"]
    assert_promoted(run, PROMOTE)


def test_a_second_promote_finishes_what_the_first_started() -> None:
    """The report's sequence: the promotion phase paused again, and a promote there."""
    w = paused_inconclusive(PROMOTION, canary_ready=1)
    w.tick(1, annotations={PROMOTE: "true"}, canary_ready=1, measurer=idle)
    walk_idle(w, canary_ready=1)  # pods still short, no traffic: paused once more
    c = w.st.canary
    assert c is not None
    assert (c.step_index, c.phase, c.reason) == (PROMOTION, CanaryPhase.PAUSED, INCONCLUSIVE)
    assert_promoted(gate_then_idle(w, {PROMOTE: "true"}), PROMOTE)


# ---- neighbouring cases --------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 2, 3])
def test_promote_promotes_a_canary_paused_by_hand(step: int) -> None:
    """A manual pause lets the inconclusive streak grow past the limit: the promotion
    it asks for must not be paused again by that streak."""
    assert_promoted(gate_then_idle(paused_by_hand(step), {PROMOTE: "true"}), PROMOTE)


def test_promote_while_waiting_for_pods_at_weight_100() -> None:
    run = gate_then_idle(promoting_short_of_pods(), {PROMOTE: "true"}, gate_ready=1)
    c = run.gate_tick.canary
    assert c is not None
    assert (c.phase, c.step_index) == (CanaryPhase.PROGRESSING, PROMOTION)
    assert reasons(run.gate_tick) == ["CanaryPromoting"]
    assert_promoted(run, PROMOTE)


def test_pause_then_promote_in_the_promotion_phase() -> None:
    w = promoting_short_of_pods()
    w.tick(1, annotations={PAUSE: "true"}, canary_ready=1, measurer=idle)
    c = w.st.canary
    assert c is not None
    assert (c.step_index, c.phase, c.reason) == (PROMOTION, CanaryPhase.PAUSED, "ManualPause")
    assert_promoted(gate_then_idle(w, {PROMOTE: "true"}), PROMOTE)


def test_resume_without_traffic_pauses_again_at_an_analysis_step() -> None:
    """Resume asks for more evidence, and none comes: the streak starts over, the
    analysis step never passes on Inconclusive intervals, and after inconclusiveLimit
    + 1 intervals the canary pauses again, where it was. Send traffic or promote."""
    w = paused_inconclusive(1)
    run = gate_then_idle(w, {RESUME: "true"})
    assert reasons(run.gate_tick) == ["CanaryResumed"]
    assert run.gate_tick.consumed == (RESUME,)
    c = w.st.canary
    assert c is not None
    assert (c.step_index, c.phase, c.reason) == (1, CanaryPhase.PAUSED, INCONCLUSIVE)
    assert c.analysis.step_successes == 0
    assert sum(reasons(d).count("CanaryPaused") for d in run.after) == 1
    judged = [d for d in run.after if d.canary is not None and d.canary.last_analysis_at]
    assert len({d.canary.last_analysis_at for d in judged if d.canary}) == LIMIT + 1
    assert w.st.stable is not None
    assert w.st.stable.revision == OLD


def test_resume_without_traffic_in_the_promotion_phase_promotes_once_the_pods_are_ready() -> None:
    """The promotion phase waits for pods, not evidence: resumed with a fresh streak,
    the canary is promoted as soon as its pods are ready (here on the next interval)."""
    w = paused_inconclusive(PROMOTION, canary_ready=1)
    run = gate_then_idle(w, {RESUME: "true"})
    assert reasons(run.gate_tick) == ["CanaryResumed"]
    assert_promoted(run, RESUME)
