"""Every transition of the rollout state machine, one table row each.

Each row builds a situation (most by driving the machine there on a fake clock,
so only reachable states are tested), makes one more decision, and checks the
parts of it that row is about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from rollout_builders import (
    CANARY_DEP,
    MD,
    NEW,
    OLD,
    Walker,
    at,
    at_step,
    bad,
    build_spec,
    observe,
    quiet,
    ready,
    reasons,
    replicas,
    run_decide,
    stable,
    started,
    status,
)

from gantry.api.status import CanaryPhase, CanaryStatus
from gantry.rollout import Decision

PROMOTE = "serving.gantry.dev/promote"
ABORT = "serving.gantry.dev/abort"
PAUSE = "serving.gantry.dev/pause"
RESUME = "serving.gantry.dev/resume"


@dataclass(frozen=True)
class Expect:
    stable: str | None = None  # "revision@deployment"
    phase: CanaryPhase | str | None = "any"  # None: no canary in status
    reason: str | None = None
    step: int | None = None
    weight: int | None = None
    actual: int | None = None
    plan: dict[str, int | None] | None = None
    templates: dict[str, bool] | None = None
    autoscale: str | bool | None = False  # False: not checked
    route: int | None = None
    events: list[str] | None = None
    consumed: tuple[str, ...] | None = None
    measure: bool | None = None
    requeue: float | bool | None = False  # False: not checked
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check(d: Decision, e: Expect) -> None:
    if e.stable is not None:
        assert d.stable is not None
        assert f"{d.stable.revision}@{d.stable.deployment}" == e.stable
    if e.phase != "any":
        assert (d.canary.phase if d.canary else None) == e.phase, d.message
    c: CanaryStatus | None = d.canary
    if e.reason is not None:
        assert c is not None
        assert c.reason == e.reason, d.message
    if e.step is not None:
        assert c is not None
        assert c.step_index == e.step, d.message
    if e.weight is not None:
        assert c is not None
        assert c.weight == e.weight
    if e.actual is not None:
        assert c is not None
        assert c.actual_weight == e.actual
    if e.plan is not None:
        assert replicas(d) == e.plan, d.message
    if e.templates is not None:
        assert {p.name: p.apply_template for p in d.plan.deployments} == e.templates
    if e.autoscale is not False:
        assert d.plan.autoscale_target == e.autoscale
    if e.route is not None:
        assert d.plan.canary_weight == e.route
    if e.events is not None:
        assert reasons(d) == e.events, d.events
    if e.consumed is not None:
        assert d.consumed == e.consumed
    if e.measure is not None:
        assert d.measure is e.measure
    if e.requeue is not False:
        assert d.requeue_after == e.requeue
    if e.message is not None:
        assert e.message in d.message, d.message


def walk(w: Walker, after: float = 0.0, **kw: Any) -> Decision:
    return w.tick(after, **kw)


ROLLING = build_spec(strategy="rolling")
AUTOSCALED = {"minReplicas": 2, "maxReplicas": 8}
GATEWAY = build_spec(routing="gatewayAPI")


def _rolling_with_canary() -> Decision:
    w = started()
    return run_decide(ROLLING, w.st, w.obs(), at(5))


def _gateway_ready() -> Decision:
    w = started(GATEWAY)
    return w.tick(10)


def _gateway_waiting() -> Decision:
    w = started(GATEWAY)
    return w.tick(5, canary_ready=0)


def _gateway_second_weight_waiting() -> Decision:
    w = at_step(3, GATEWAY)
    return w.tick(1, canary_ready=1)


def _autoscaled_start() -> Decision:
    spec = build_spec(replicas=None, scaling=AUTOSCALED)
    obs = observe({MD: ready(6)})
    return run_decide(spec, status(stable_rev=stable()), obs, at(0))


def _deadline(after: float) -> Decision:
    w = started(build_spec(deadline=60))
    return w.tick(after, canary_ready=0)


def _pause_before_expiry() -> Decision:
    w = at_step(1)
    return w.tick(30)


def _pause_after_expiry() -> Decision:
    w = at_step(1)
    return w.tick(60)


def _analysis_step(successes_needed: int) -> Decision:
    w = at_step(2)
    d = w.last
    for _ in range(successes_needed):
        d = w.tick(30)
    assert d is not None
    return d


def _indefinite_pause() -> Decision:
    w = at_step(4)
    return w.tick(20)


def _gate(step: int, annotations: dict[str, str], **kw: Any) -> Decision:
    w = at_step(step)
    return w.tick(1, annotations=annotations, **kw)


def _paused_then(annotations: dict[str, str]) -> Decision:
    w = at_step(1)
    w.tick(1, annotations={PAUSE: "true"})
    return w.tick(1, annotations=annotations)


def _promotion_phase(canary_ready: int | None = None) -> Decision:
    w = at_step(4)
    w.tick(1, annotations={PROMOTE: "true"})
    return w.tick(1, canary_ready=canary_ready)


# A canary that sits at one step for an hour, so analysis verdicts are all that happens.
SITTING = build_spec(steps=[{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"setWeight": 50}])


def _inconclusive(intervals: int) -> Decision:
    w = at_step(1, SITTING)
    d = w.last
    for _ in range(intervals):
        d = w.tick(30, measurer=quiet)
    assert d is not None
    return d


def _failed(intervals: int) -> Decision:
    w = at_step(1, SITTING)
    d = w.last
    for _ in range(intervals):
        d = w.tick(30, measurer=bad)
    assert d is not None
    return d


def _aborted_then(revision: str, annotations: dict[str, str] | None = None) -> Decision:
    w = at_step(1)
    w.tick(1, annotations={ABORT: "true"})
    w.revision = revision
    return w.tick(1, annotations=annotations)


def _steps_edited() -> Decision:
    w = at_step(3)
    w.spec = build_spec(steps=[{"setWeight": 20}, {"pause": {}}])
    return w.tick(1)


def _promoted_steady(spec_kw: dict[str, Any]) -> Decision:
    w = at_step(4, build_spec(**spec_kw))
    w.tick(1, annotations={PROMOTE: "true"})
    w.tick(1)
    assert w.st.canary is not None
    assert w.st.canary.phase is CanaryPhase.PROMOTED
    return w.tick(1)


CASES: list[tuple[str, Callable[[], Decision], Expect]] = [
    # --- strategy rolling -------------------------------------------------------------
    (
        "rolling/first-creation",
        lambda: run_decide(ROLLING, status(), observe({}), at(0)),
        Expect(stable=f"{NEW}@{MD}", phase=None, plan={MD: 4}, events=["Deploying"]),
    ),
    (
        "rolling/steady",
        lambda: run_decide(ROLLING, status(stable_rev=stable(NEW)), observe(), at(0)),
        Expect(stable=f"{NEW}@{MD}", phase=None, plan={MD: 4}, events=[], requeue=None),
    ),
    (
        "rolling/update-in-place",
        lambda: run_decide(ROLLING, status(stable_rev=stable()), observe(), at(0)),
        Expect(
            stable=f"{NEW}@{MD}",
            phase=None,
            plan={MD: 4},
            templates={MD: True},
            events=["RollingUpdate"],
        ),
    ),
    (
        "rolling/drops-a-canary-in-flight",
        _rolling_with_canary,
        Expect(
            stable=f"{NEW}@{MD}",
            phase=None,
            plan={MD: 4},
            events=["CanaryAbandoned", "RollingUpdate"],
        ),
    ),
    (
        "rolling/autoscaled",
        lambda: run_decide(
            build_spec(strategy="rolling", replicas=None, scaling=AUTOSCALED),
            status(stable_rev=stable(NEW)),
            observe(),
            at(0),
        ),
        Expect(plan={MD: None}, autoscale=MD),
    ),
    # --- canary: creation and steady state ----------------------------------------------
    (
        "canary/first-creation-goes-straight-to-stable",
        lambda: run_decide(build_spec(), status(), observe({}), at(0)),
        Expect(stable=f"{NEW}@{MD}", phase=None, plan={MD: 4}, events=["Deploying"], requeue=None),
    ),
    (
        "canary/steady-fixed-replicas",
        lambda: run_decide(build_spec(), status(stable_rev=stable(NEW)), observe(), at(0)),
        Expect(phase=None, plan={MD: 4}, autoscale=None, events=[], requeue=None, measure=False),
    ),
    (
        "canary/steady-autoscaled",
        lambda: run_decide(
            build_spec(replicas=None, scaling=AUTOSCALED),
            status(stable_rev=stable(NEW)),
            observe(),
            at(0),
        ),
        Expect(plan={MD: None}, autoscale=MD, templates={MD: True}),
    ),
    # --- canary start ---------------------------------------------------------------------
    (
        "canary/start",
        lambda: run_decide(build_spec(), status(stable_rev=stable()), observe(), at(0)),
        Expect(
            stable=f"{OLD}@{MD}",
            phase=CanaryPhase.PROGRESSING,
            step=0,
            weight=10,
            actual=20,
            plan={MD: 4, CANARY_DEP: 1},
            templates={MD: False, CANARY_DEP: True},
            autoscale=None,
            route=0,
            events=["CanaryStarted"],
            measure=False,
            requeue=10.0,
        ),
    ),
    (
        "canary/start-freezes-the-autoscaled-stable-at-its-current-size",
        _autoscaled_start,
        Expect(plan={MD: 6, CANARY_DEP: 1}, autoscale=None, weight=10, actual=14),
    ),
    (
        "canary/start-without-an-observed-stable-uses-the-spec-size",
        lambda: run_decide(build_spec(), status(stable_rev=stable()), observe({}), at(0)),
        Expect(plan={MD: 4, CANARY_DEP: 1}),
    ),
    (
        "canary/stable-at-zero-replicas-is-updated-in-place",
        lambda: run_decide(
            build_spec(replicas=0), status(stable_rev=stable()), observe({MD: ready(0)}), at(0)
        ),
        Expect(stable=f"{NEW}@{MD}", phase=None, plan={MD: 0}, events=["CanarySkipped"]),
    ),
    # --- setWeight ------------------------------------------------------------------------
    (
        "setWeight/waits-for-pods",
        lambda: started().tick(5, canary_ready=0),
        Expect(step=0, events=[], plan={MD: 4, CANARY_DEP: 1}, requeue=10.0, measure=False),
    ),
    (
        "setWeight/waits-for-model-ready",
        lambda: (
            lambda w: run_decide(
                w.spec,
                w.st,
                observe({MD: ready(4), CANARY_DEP: ready(1, model_ready=0)}),
                at(5),
            )
        )(started()),
        Expect(step=0, events=[]),
    ),
    (
        "setWeight/advances-when-ready",
        lambda: started().tick(10),
        Expect(step=1, weight=10, events=["CanaryStep"], requeue=30.0),
    ),
    (
        "setWeight/progress-deadline-not-yet",
        lambda: _deadline(60),
        Expect(phase=CanaryPhase.PROGRESSING, step=0, requeue=1.0),
    ),
    (
        "setWeight/progress-deadline-exceeded",
        lambda: _deadline(61),
        Expect(
            stable=f"{OLD}@{MD}",
            phase=CanaryPhase.ABORTED,
            reason="ProgressDeadlineExceeded",
            plan={MD: 4},
            templates={MD: False},
            events=["ProgressDeadlineExceeded"],
            requeue=None,
            message="0/1 canary pods ready",
        ),
    ),
    (
        "setWeight/second-weight-grows-the-canary",
        lambda: at_step(3).tick(0, canary_ready=1),
        Expect(step=3, weight=50, plan={MD: 4, CANARY_DEP: 4}, actual=50),
    ),
    # --- gatewayAPI -------------------------------------------------------------------------
    (
        "gateway/route-weight-waits-for-the-canary",
        _gateway_waiting,
        Expect(step=0, weight=10, route=0, actual=0, plan={MD: 4, CANARY_DEP: 1}),
    ),
    (
        "gateway/route-weight-set-when-ready",
        _gateway_ready,
        Expect(step=1, weight=10, route=10, actual=10, plan={MD: 4, CANARY_DEP: 1}),
    ),
    (
        "gateway/next-weight-keeps-the-old-route-until-ready",
        _gateway_second_weight_waiting,
        Expect(step=3, weight=50, route=10, plan={MD: 4, CANARY_DEP: 2}),
    ),
    # --- pause ----------------------------------------------------------------------------
    (
        "pause/timed-before-expiry",
        _pause_before_expiry,
        Expect(step=1, events=[], requeue=30.0),
    ),
    (
        "pause/timed-at-expiry",
        _pause_after_expiry,
        Expect(step=2, events=["CanaryStep"]),
    ),
    (
        "pause/indefinite-waits",
        _indefinite_pause,
        Expect(phase=CanaryPhase.PAUSED, reason="PauseStep", step=4, events=[]),
    ),
    (
        "pause/indefinite-then-promote-step",
        lambda: _gate(4, {PROMOTE: "step"}),
        Expect(
            phase=CanaryPhase.PROGRESSING,
            step=5,
            weight=100,
            events=["CanaryPromoting"],
            consumed=(PROMOTE,),
        ),
    ),
    (
        "pause/indefinite-then-resume-completes-it",
        lambda: _gate(4, {RESUME: "true"}),
        Expect(phase=CanaryPhase.PROGRESSING, step=5, consumed=(RESUME,)),
    ),
    # --- analysis step --------------------------------------------------------------------
    (
        "analysis/one-of-two-successes",
        lambda: _analysis_step(1),
        Expect(step=2, events=[], requeue=30.0),
    ),
    (
        "analysis/two-of-two-successes-advance",
        lambda: _analysis_step(2),
        Expect(step=3, weight=50, events=["CanaryStep"]),
    ),
    # --- background analysis verdicts -------------------------------------------------------
    (
        "analysis/failure-within-the-limit",
        lambda: _failed(2),
        Expect(phase=CanaryPhase.PROGRESSING, events=["AnalysisIntervalFailed"]),
    ),
    (
        "analysis/failure-beyond-the-limit-rolls-back",
        lambda: _failed(3),
        Expect(
            phase=CanaryPhase.ABORTED,
            reason="AnalysisFailed",
            plan={MD: 4},
            autoscale=None,
            events=["AnalysisFailed"],
            message="success-rate",
        ),
    ),
    (
        "analysis/inconclusive-within-the-limit",
        lambda: _inconclusive(2),
        Expect(phase=CanaryPhase.PROGRESSING, events=[]),
    ),
    (
        "analysis/inconclusive-beyond-the-limit-pauses",
        lambda: _inconclusive(3),
        Expect(
            phase=CanaryPhase.PAUSED,
            reason="InconclusiveAnalysis",
            events=["CanaryPaused"],
            message="too little traffic to judge: 3 requests < 10",
            plan={MD: 4, CANARY_DEP: 1},
        ),
    ),
    # --- gates ----------------------------------------------------------------------------
    (
        "gate/abort",
        lambda: _gate(1, {ABORT: "true"}),
        Expect(
            phase=CanaryPhase.ABORTED,
            reason="ManualAbort",
            plan={MD: 4},
            events=["ManualAbort"],
            consumed=(ABORT,),
        ),
    ),
    (
        "gate/abort-wins-over-promote",
        lambda: _gate(1, {ABORT: "true", PROMOTE: "true"}),
        Expect(phase=CanaryPhase.ABORTED, consumed=(ABORT, PROMOTE)),
    ),
    (
        "gate/abort-false-is-not-set",
        lambda: _gate(1, {ABORT: "false"}),
        Expect(phase=CanaryPhase.PROGRESSING, consumed=(ABORT,)),
    ),
    (
        "gate/promote-full-enters-the-promotion-phase",
        lambda: _gate(1, {PROMOTE: "true"}),
        Expect(
            step=5,
            weight=100,
            plan={MD: 3, CANARY_DEP: 4},  # handover: the ready canary pod replaces one
            events=["CanaryPromoting"],
            consumed=(PROMOTE,),
        ),
    ),
    (
        "gate/promote-step",
        lambda: _gate(1, {PROMOTE: "step"}),
        Expect(step=2, events=["CanaryStep"], consumed=(PROMOTE,)),
    ),
    (
        "gate/pause",
        lambda: _gate(1, {PAUSE: "true"}),
        Expect(phase=CanaryPhase.PAUSED, reason="ManualPause", step=1, consumed=(PAUSE,)),
    ),
    (
        "gate/paused-canary-holds-its-step",
        lambda: _paused_then({}),
        Expect(phase=CanaryPhase.PAUSED, step=1, plan={MD: 4, CANARY_DEP: 1}),
    ),
    (
        "gate/resume",
        lambda: _paused_then({RESUME: "true"}),
        Expect(phase=CanaryPhase.PROGRESSING, step=1, events=["CanaryResumed"]),
    ),
    (
        "gate/pause-while-paused-is-consumed-and-ignored",
        lambda: _paused_then({PAUSE: "true"}),
        Expect(phase=CanaryPhase.PAUSED, events=[], consumed=(PAUSE,)),
    ),
    (
        "gate/promote-a-paused-canary",
        lambda: _paused_then({PROMOTE: "true"}),
        Expect(phase=CanaryPhase.PROGRESSING, step=5),
    ),
    (
        "gate/without-a-canary-consumed-and-ignored",
        lambda: run_decide(
            build_spec(), status(stable_rev=stable(NEW)), observe(annotations={ABORT: "1"}), at(0)
        ),
        Expect(phase=None, plan={MD: 4}, consumed=(ABORT,), events=[]),
    ),
    # --- promotion ------------------------------------------------------------------------
    (
        "promotion/waits-for-the-full-canary",
        lambda: _promotion_phase(canary_ready=2),
        Expect(step=5, phase=CanaryPhase.PROGRESSING, plan={MD: 2, CANARY_DEP: 4}, requeue=10.0),
    ),
    (
        "promotion/promotes-when-full",
        lambda: _promotion_phase(),
        Expect(
            stable=f"{NEW}@{CANARY_DEP}",
            phase=CanaryPhase.PROMOTED,
            plan={CANARY_DEP: 4},
            templates={CANARY_DEP: True},
            autoscale=None,
            events=["CanaryPromoted"],
            requeue=None,
        ),
    ),
    (
        "promotion/steady-fixed-after",
        lambda: _promoted_steady({}),
        Expect(stable=f"{NEW}@{CANARY_DEP}", phase=CanaryPhase.PROMOTED, plan={CANARY_DEP: 4}),
    ),
    (
        "promotion/steady-autoscaled-after",
        lambda: _promoted_steady({"replicas": None, "scaling": AUTOSCALED}),
        Expect(plan={CANARY_DEP: None}, autoscale=CANARY_DEP),
    ),
    # --- after a rollback -----------------------------------------------------------------
    (
        "aborted/same-revision-not-retried",
        lambda: _aborted_then(NEW),
        Expect(
            phase=CanaryPhase.ABORTED,
            stable=f"{OLD}@{MD}",
            plan={MD: 4},
            events=[],
            requeue=None,
            message="Change the spec",
        ),
    ),
    (
        "aborted/autoscaling-returns-to-the-stable",
        lambda: (lambda w: (w.tick(1, annotations={ABORT: "1"}), w.tick(1))[1])(
            at_step(1, build_spec(replicas=None, scaling=AUTOSCALED))
        ),
        Expect(phase=CanaryPhase.ABORTED, plan={MD: None}, autoscale=MD, templates={MD: False}),
    ),
    (
        "aborted/resume-retries-the-revision",
        lambda: _aborted_then(NEW, {RESUME: "true"}),
        Expect(
            phase=CanaryPhase.PROGRESSING,
            step=0,
            plan={MD: 4, CANARY_DEP: 1},
            events=["CanaryStarted"],
            consumed=(RESUME,),
        ),
    ),
    (
        "aborted/spec-back-at-stable-clears-the-record",
        lambda: _aborted_then(OLD),
        Expect(phase=None, stable=f"{OLD}@{MD}", plan={MD: 4}, templates={MD: True}),
    ),
    # --- steps edited mid-rollout -----------------------------------------------------------
    (
        "steps/edited-restarts-from-step-0",
        _steps_edited,
        Expect(
            step=0,
            weight=20,
            phase=CanaryPhase.PROGRESSING,
            plan={MD: 4, CANARY_DEP: 1},
            events=["CanaryStepsChanged"],
        ),
    ),
]


@pytest.mark.parametrize(("make", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_transition(make: Callable[[], Decision], expect: Expect) -> None:
    check(make(), expect)


def test_a_steps_edit_resets_counters_but_keeps_history() -> None:
    w = at_step(3)
    before = w.st.canary
    assert before is not None
    assert before.analysis.successes > 0
    w.spec = build_spec(steps=[{"setWeight": 20}, {"pause": {}}])
    w.tick(1)
    after = w.st.canary
    assert after is not None
    assert (after.analysis.successes, after.analysis.failures) == (0, 0)
    assert after.analysis.history == before.analysis.history
    assert after.last_analysis_at is None


def test_a_full_canary_walks_every_step_in_order() -> None:
    w = started()
    seen = []
    for _ in range(40):
        c = w.st.canary
        assert c is not None
        if c.phase is CanaryPhase.PROMOTED:
            break
        seen.append((c.step_index, c.phase.value))
        gates = {PROMOTE: "step"} if c.reason == "PauseStep" else None
        w.tick(w.last.requeue_after or 1.0 if w.last else 1.0, annotations=gates)
    steps = [s for s, _ in dict.fromkeys(seen)]
    assert steps == [0, 1, 2, 3, 4, 5]
    assert w.st.stable is not None
    assert w.st.stable.revision == NEW
