"""build_status: every condition, Ready as an AND, the phase, times and counts.

Each table row is one situation (StatusInputs) and what the status must say.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from gantry.api.status import (
    CanaryPhase,
    CanaryStatus,
    ConditionStatus,
    ModelDeploymentStatus,
    Phase,
)
from gantry.status.conditions import Rollout, Sizing, StatusInputs, build_status, transitions
from gantry.status.observe import ModelHealth, SchedulingObservation
from tests.status.builders import (
    CANARY_DEP,
    DEADLINE_MESSAGE,
    EMPTY,
    ENDPOINTS,
    GENERATION,
    GPU_SCHEDULING,
    GPU_SHORTAGE,
    HEALTHY,
    MEMORY_SCHEDULING,
    MEMORY_SHORTAGE,
    MODEL_LOAD_FAILED,
    MODEL_LOADING,
    MODEL_READY,
    NEW,
    NO_RUNNING_PODS,
    OLD,
    ORDER,
    SELECTOR,
    STABLE_DEP,
    T0,
    T1,
    T2,
    build,
    canary_observed,
    canary_rev,
    cond,
    failure_inputs,
    fresh_inputs,
    inputs,
    model,
    observed,
    stable_rev,
    summary,
)

CANARY_ROLLOUT = Rollout(progressing=True, message="canary bbbbbbbbbb at 10% (step 1/5)")
ABORTED = Rollout(
    degraded_reason="AnalysisFailed",
    degraded_message="canary bbbbbbbbbb rolled back: success-rate 0.91 < 0.99 (2 failures)",
)
INVALID = "spec.model.version: String should match pattern '^[A-Za-z0-9._-]+$'"
DEADLINE = observed(
    replicas=3, updated=1, ready=2, deadline_exceeded=True, message=DEADLINE_MESSAGE
)
# Nothing serves: the stable Deployment exists, but no replica of it is ready.
DOWN = observed(ready=0)
# An autoscaler asked for a third replica; two serve, the new pod waits for a GPU.
SCALED_UP = observed(desired=3, replicas=3, ready=2)


def check(status: ModelDeploymentStatus, kind: str, want: tuple[str, str, Any]) -> None:
    got = cond(status, kind)
    assert (got.status.value, got.reason) == want[:2], got
    if want[2] is not None:
        assert got.message == want[2]


# ------------------------------------------------------------------- one condition each

SCHEDULED = [
    pytest.param(
        inputs(scheduling=SchedulingObservation()),
        ("True", "PodsScheduled", "0 pod(s) scheduled"),
        id="no-pods",
    ),
    pytest.param(
        inputs(scheduling=SchedulingObservation(pods=2)),
        ("True", "PodsScheduled", "2 pod(s) scheduled"),
        id="all-scheduled",
    ),
    pytest.param(
        inputs(scheduling=MEMORY_SCHEDULING),
        ("False", "Unschedulable", MEMORY_SHORTAGE),
        id="unschedulable",
    ),
    pytest.param(
        inputs(scheduling=GPU_SCHEDULING),
        ("False", "InsufficientGPU", GPU_SHORTAGE),
        id="insufficient-gpu",
    ),
    pytest.param(
        inputs(scheduling=SchedulingObservation(pods=1, insufficient_gpu=True, message="x")),
        ("False", "InsufficientGPU", "x"),
        id="gpu-flag-wins",
    ),
]

AVAILABLE = [
    pytest.param(
        inputs(), ("True", "MinimumReplicasAvailable", "2/2 replicas ready"), id="all-ready"
    ),
    pytest.param(
        inputs(observed(ready=1)),
        ("True", "MinimumReplicasAvailable", "1/2 replicas ready"),
        id="one-of-two-ready",
    ),
    pytest.param(
        inputs(observed(ready=0)), ("False", "NoReadyReplicas", "no replica is ready"), id="none"
    ),
    pytest.param(
        inputs(observed(ready=0), canary_observed()),
        ("False", "NoReadyReplicas", "no replica is ready"),
        id="canary-ready-does-not-count",
    ),
    pytest.param(
        inputs(canary_observed()),
        ("False", "DeploymentMissing", "no stable Deployment yet"),
        id="stable-deployment-not-observed",
    ),
    pytest.param(
        inputs(stable=None),
        ("False", "DeploymentMissing", "no stable Deployment yet"),
        id="no-stable-revision",
    ),
]

MODEL_READY_ROWS = [
    pytest.param(
        inputs(model=None),
        ("Unknown", "NotProbed", "model health not probed yet"),
        id="not-probed",
    ),
    pytest.param(
        inputs(observed(ready=0), model=NO_RUNNING_PODS),
        ("False", "NoReadyPods", "no running pod to probe"),
        id="no-ready-pods",
    ),
    pytest.param(
        inputs(model=NO_RUNNING_PODS),
        ("Unknown", "NotProbed", "no running pod to probe"),
        id="ready-pods-but-none-probed",
    ),
    pytest.param(
        inputs(observed(ready=0), canary_observed(), model=NO_RUNNING_PODS),
        ("Unknown", "NotProbed", None),
        id="only-canary-pods-ready",
    ),
    pytest.param(
        inputs(), ("True", "ModelReady", "model ready on 2/2 pod(s)"), id="ready-everywhere"
    ),
    pytest.param(
        inputs(model=MODEL_LOADING),
        ("False", "ModelLoading", f"model ready on 0/2 pod(s): {MODEL_LOADING.message}"),
        id="loading",
    ),
    pytest.param(
        # One serves, one does not answer yet: a pod starting, not a fault (quiet).
        inputs(model=model(2, 1, "ServerUnreachable", "10.244.1.18:8000: connection refused")),
        (
            "False",
            "PodsStarting",
            "model ready on 1/2 pod(s): 10.244.1.18:8000: connection refused",
        ),
        id="one-unreachable-is-starting",
    ),
    pytest.param(
        inputs(model=model(2, 0, "ServerUnreachable", "10.244.1.18:8000: connection refused")),
        (
            "False",
            "ServerUnreachable",
            "model ready on 0/2 pod(s): 10.244.1.18:8000: connection refused",
        ),
        id="none-answers-is-unreachable",
    ),
    pytest.param(
        inputs(model=model(2, 1, "ModelLoadFailed", "failed to load")),
        ("False", "ModelLoadFailed", "model ready on 1/2 pod(s): failed to load"),
        id="load-failure-is-never-starting",
    ),
    pytest.param(
        inputs(model=MODEL_LOAD_FAILED),
        ("False", "ModelLoadFailed", f"model ready on 0/2 pod(s): {MODEL_LOAD_FAILED.message}"),
        id="load-failed",
    ),
    pytest.param(
        inputs(model=ModelHealth(probed=2, ready=0)),
        ("False", "ModelUnavailable", "model ready on 0/2 pod(s)"),
        id="no-reason-no-message",
    ),
]

PROGRESSING = [
    pytest.param(
        inputs(), ("False", "RolloutComplete", "every replica is up to date"), id="rolled-out"
    ),
    pytest.param(
        inputs(rollout=CANARY_ROLLOUT),
        ("True", "RolloutInProgress", CANARY_ROLLOUT.message),
        id="canary-in-flight",
    ),
    pytest.param(
        inputs(observed(replicas=3, updated=1, ready=2)),
        ("True", "ReplicasUpdating", "1 updated, 2 ready of 2"),
        id="rolling-update",
    ),
    pytest.param(
        inputs(observed(ready=1)),
        ("True", "ReplicasUpdating", "2 updated, 1 ready of 2"),
        id="scaling-up",
    ),
    pytest.param(
        inputs(observed(current=False)),
        ("True", "ReplicasUpdating", None),
        id="observed-generation-behind",
    ),
    pytest.param(
        inputs(DEADLINE),
        ("False", "ProgressDeadlineExceeded", f"{STABLE_DEP}: {DEADLINE_MESSAGE}"),
        id="deadline-exceeded",
    ),
    pytest.param(
        inputs(
            observed(),
            canary_observed(ready=0, deadline_exceeded=True, message="timed out"),
            rollout=CANARY_ROLLOUT,
        ),
        ("False", "ProgressDeadlineExceeded", f"{CANARY_DEP}: timed out"),
        id="canary-deadline-beats-rollout",
    ),
    pytest.param(
        fresh_inputs(),
        ("True", "DeploymentCreating", f"waiting for Deployment {STABLE_DEP}"),
        id="fresh-no-deployment-yet",
    ),
    pytest.param(
        # A rolling (in-place) update decided in this reconcile: the Deployment observed
        # before the apply still runs the old revision, fully rolled out.
        inputs(observed(revision=OLD), stable=stable_rev(NEW, STABLE_DEP)),
        ("True", "RevisionUpdating", f"{STABLE_DEP}: revision {OLD} -> {NEW}"),
        id="in-place-update-not-applied-yet",
    ),
    pytest.param(
        inputs(observed(revision="")),
        ("False", "RolloutComplete", None),
        id="unlabelled-deployment-not-a-mismatch",
    ),
    pytest.param(
        inputs(stable=None),
        ("False", "RolloutComplete", None),
        id="no-stable-revision",
    ),
]

DEGRADED = [
    pytest.param(inputs(), ("False", "AsExpected", ""), id="healthy"),
    pytest.param(inputs(failure=INVALID), ("True", "InvalidSpec", INVALID), id="invalid-spec"),
    pytest.param(
        inputs(rollout=ABORTED),
        ("True", "AnalysisFailed", ABORTED.degraded_message),
        id="canary-analysis-failed",
    ),
    pytest.param(
        inputs(failure=INVALID, rollout=ABORTED, scheduling=GPU_SCHEDULING),
        ("True", "InvalidSpec", INVALID),
        id="invalid-spec-first",
    ),
    pytest.param(
        inputs(DEADLINE, rollout=ABORTED),
        ("True", "AnalysisFailed", None),
        id="rollout-reason-before-deadline",
    ),
    pytest.param(
        inputs(DEADLINE),
        ("True", "ProgressDeadlineExceeded", f"{STABLE_DEP}: {DEADLINE_MESSAGE}"),
        id="progress-deadline-exceeded",
    ),
    pytest.param(
        inputs(DEADLINE, scheduling=GPU_SCHEDULING, model=MODEL_LOAD_FAILED),
        ("True", "ProgressDeadlineExceeded", None),
        id="deadline-before-gpu-and-model",
    ),
    pytest.param(
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        ("True", "InsufficientGPU", GPU_SHORTAGE),
        id="insufficient-gpu-nothing-serving",
    ),
    pytest.param(
        inputs(DOWN, scheduling=MEMORY_SCHEDULING, model=NO_RUNNING_PODS),
        ("True", "Unschedulable", MEMORY_SHORTAGE),
        id="unschedulable-nothing-serving",
    ),
    pytest.param(
        inputs(canary_observed(), scheduling=GPU_SCHEDULING),
        ("True", "InsufficientGPU", GPU_SHORTAGE),
        id="insufficient-gpu-stable-deployment-missing",
    ),
    pytest.param(
        replace(fresh_inputs(), scheduling=GPU_SCHEDULING),
        ("True", "InsufficientGPU", GPU_SHORTAGE),
        id="insufficient-gpu-fresh",
    ),
    pytest.param(
        # A surge pod waits for a GPU while the two old replicas serve: Scheduled says so.
        inputs(scheduling=GPU_SCHEDULING),
        ("False", "AsExpected", ""),
        id="insufficient-gpu-while-serving-is-not-degraded",
    ),
    pytest.param(
        inputs(scheduling=MEMORY_SCHEDULING),
        ("False", "AsExpected", ""),
        id="unschedulable-while-serving-is-not-degraded",
    ),
    pytest.param(
        inputs(observed(ready=1), model=model(1), scheduling=GPU_SCHEDULING),
        ("False", "AsExpected", ""),
        id="insufficient-gpu-while-one-replica-serves",
    ),
    pytest.param(
        inputs(SCALED_UP, scheduling=GPU_SCHEDULING),
        ("False", "AsExpected", ""),
        id="autoscaler-scale-up-waits-for-gpu",
    ),
    pytest.param(
        inputs(DOWN, canary_observed(), scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        ("True", "InsufficientGPU", GPU_SHORTAGE),
        id="ready-canary-does-not-make-it-servable",
    ),
    pytest.param(
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=MODEL_LOAD_FAILED),
        ("True", "InsufficientGPU", None),
        id="gpu-before-model-nothing-serving",
    ),
    pytest.param(
        inputs(scheduling=GPU_SCHEDULING, model=MODEL_LOAD_FAILED),
        ("True", "ModelLoadFailed", None),
        id="model-load-failed-while-gpu-pod-pending-and-serving",
    ),
    pytest.param(
        inputs(
            observed(ready=0, deadline_exceeded=True, message=DEADLINE_MESSAGE),
            scheduling=GPU_SCHEDULING,
            model=MODEL_LOAD_FAILED,
        ),
        ("True", "ProgressDeadlineExceeded", None),
        id="deadline-before-gpu-nothing-serving",
    ),
    pytest.param(
        # The surge pod never got a GPU: past the deadline, a stuck rollout is Degraded.
        inputs(DEADLINE, scheduling=GPU_SCHEDULING),
        ("True", "ProgressDeadlineExceeded", f"{STABLE_DEP}: {DEADLINE_MESSAGE}"),
        id="gpu-stall-past-deadline-while-serving",
    ),
    pytest.param(
        inputs(model=MODEL_LOAD_FAILED),
        ("True", "ModelLoadFailed", f"model ready on 0/2 pod(s): {MODEL_LOAD_FAILED.message}"),
        id="model-load-failed",
    ),
    pytest.param(
        inputs(DOWN, model=MODEL_LOAD_FAILED),
        ("True", "ModelLoadFailed", None),
        id="model-load-failed-nothing-serving",
    ),
    pytest.param(inputs(model=MODEL_LOADING), ("False", "AsExpected", ""), id="loading-is-fine"),
    pytest.param(
        inputs(observed(ready=0), model=NO_RUNNING_PODS),
        ("False", "AsExpected", ""),
        id="no-ready-pods-is-not-degraded",
    ),
    pytest.param(
        inputs(rollout=CANARY_ROLLOUT), ("False", "AsExpected", ""), id="canary-in-flight"
    ),
    pytest.param(fresh_inputs(), ("False", "AsExpected", ""), id="fresh"),
]

READY = [
    pytest.param(inputs(), ("True", "Ready", "serving at the desired capacity"), id="healthy"),
    pytest.param(
        # The stable serves (Available), but the spec's revision does not yet: not done.
        inputs(observed(), canary_observed(ready=0), rollout=CANARY_ROLLOUT),
        ("False", "RolloutInProgress", None),
        id="canary-in-flight-is-not-ready",
    ),
    pytest.param(
        inputs(observed(desired=2, replicas=3, updated=1, ready=2)),
        ("False", "ReplicasUpdating", None),
        id="rolling-update-at-capacity-is-not-done",
    ),
    pytest.param(
        inputs(observed(ready=0), model=NO_RUNNING_PODS),
        ("False", "NoReadyReplicas", "no replica is ready"),
        id="not-available",
    ),
    pytest.param(
        inputs(model=None),
        ("False", "NotProbed", "model health not probed yet"),
        id="model-unknown",
    ),
    pytest.param(inputs(model=MODEL_LOADING), ("False", "ModelLoading", None), id="model-loading"),
    pytest.param(
        inputs(rollout=ABORTED),
        ("False", "AnalysisFailed", ABORTED.degraded_message),
        id="degraded-while-serving",
    ),
    pytest.param(
        # A surge pod waits for a GPU; every desired replica still serves.
        inputs(scheduling=GPU_SCHEDULING),
        ("True", "Ready", "serving at the desired capacity"),
        id="gpu-pod-pending-while-serving",
    ),
    pytest.param(
        inputs(observed(desired=2, replicas=3, updated=1, ready=2), scheduling=GPU_SCHEDULING),
        ("False", "ReplicasUpdating", None),
        id="surge-pod-pending-rolling-update-is-not-done",
    ),
    pytest.param(
        inputs(SCALED_UP, scheduling=GPU_SCHEDULING),
        ("False", "ScalingUp", "2/3 replicas ready"),
        id="scale-up-pod-pending-for-gpu",
    ),
    pytest.param(
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        ("False", "InsufficientGPU", GPU_SHORTAGE),
        id="gpu-shortage-nothing-serving",
    ),
    pytest.param(
        inputs(observed(ready=1), model=model(1)),
        ("False", "ScalingUp", "1/2 replicas ready"),
        id="scaling-up",
    ),
    pytest.param(
        inputs(observed(ready=1), model=MODEL_LOADING),
        ("False", "ModelLoading", None),
        id="model-blocker-before-scaling-up",
    ),
    pytest.param(
        # Degraded leads: its reason is the root cause, before Available and ModelReady.
        inputs(DOWN, model=MODEL_LOAD_FAILED),
        ("False", "ModelLoadFailed", f"model ready on 0/2 pod(s): {MODEL_LOAD_FAILED.message}"),
        id="first-blocker-named",
    ),
    pytest.param(
        inputs(DOWN, rollout=ABORTED, model=NO_RUNNING_PODS),
        ("False", "AnalysisFailed", ABORTED.degraded_message),
        id="degraded-before-available",
    ),
    pytest.param(
        inputs(DOWN, model=MODEL_LOADING),
        ("False", "NoReadyReplicas", "no replica is ready"),
        id="available-before-model-ready",
    ),
    pytest.param(
        # Unknown blocks as much as False.
        inputs(DOWN, model=None),
        ("False", "NoReadyReplicas", None),
        id="available-before-model-unknown",
    ),
    pytest.param(
        inputs(DEADLINE, model=None),
        ("False", "ProgressDeadlineExceeded", f"{STABLE_DEP}: {DEADLINE_MESSAGE}"),
        id="degraded-before-model-unknown",
    ),
    pytest.param(
        inputs(failure=INVALID), ("False", "InvalidSpec", INVALID), id="invalid-spec-leads"
    ),
    pytest.param(
        fresh_inputs(), ("False", "DeploymentMissing", "no stable Deployment yet"), id="fresh"
    ),
]


@pytest.mark.parametrize(
    ("kind", "given", "want"),
    [pytest.param("Scheduled", *p.values, id=p.id) for p in SCHEDULED]
    + [pytest.param("Available", *p.values, id=p.id) for p in AVAILABLE]
    + [pytest.param("ModelReady", *p.values, id=p.id) for p in MODEL_READY_ROWS]
    + [pytest.param("Progressing", *p.values, id=p.id) for p in PROGRESSING]
    + [pytest.param("Degraded", *p.values, id=p.id) for p in DEGRADED]
    + [pytest.param("Ready", *p.values, id=p.id) for p in READY],
)
def test_condition(kind: str, given: StatusInputs, want: tuple[str, str, Any]) -> None:
    check(build(given), kind, want)


# -------------------------------------------------------------- Ready is exactly the AND

STABLE_STATES = {"2/2": observed(), "1/2": observed(ready=1), "0/2": observed(ready=0)}
MODEL_STATES: dict[str, ModelHealth | None] = {
    "model-ready": MODEL_READY,
    "model-loading": MODEL_LOADING,
    "model-failed": MODEL_LOAD_FAILED,
    "not-probed": None,
}
DEGRADATIONS = {"ok": Rollout(), "aborted": ABORTED}
SCHEDULING = {"placed": SchedulingObservation(pods=2), "no-gpu": GPU_SCHEDULING}


@pytest.mark.parametrize(
    ("stable", "health", "rollout", "scheduling"),
    [
        pytest.param(s, m, r, p, id=f"{s}-{m}-{r}-{p}")
        for s, m, r, p in itertools.product(STABLE_STATES, MODEL_STATES, DEGRADATIONS, SCHEDULING)
    ],
)
def test_ready_is_the_and(stable: str, health: str, rollout: str, scheduling: str) -> None:
    obs = STABLE_STATES[stable]
    status = build(
        inputs(
            obs,
            model=MODEL_STATES[health],
            rollout=DEGRADATIONS[rollout],
            scheduling=SCHEDULING[scheduling],
        )
    )
    conds = summary(status)
    want = (
        conds["Available"][0] == "True"
        and conds["ModelReady"][0] == "True"
        and conds["Degraded"][0] == "False"
        and obs.ready >= obs.desired
    )
    assert (conds["Ready"][0] == "True") is want
    assert (status.phase is Phase.READY) is (want and conds["Progressing"][0] == "False")
    # Ready=False names its first blocker: Degraded (True), Available, ModelReady (not
    # True, Unknown included), then ScalingUp.
    blockers = [
        conds[k][1]
        for k, bad in (
            ("Degraded", {"True"}),
            ("Available", {"False", "Unknown"}),
            ("ModelReady", {"False", "Unknown"}),
        )
        if conds[k][0] in bad
    ]
    if obs.ready < obs.desired:
        blockers.append("ScalingUp")
    assert conds["Ready"][1] == (blockers[0] if blockers else "Ready")


@pytest.mark.parametrize(
    ("stable", "health", "rollout", "scheduling"),
    [
        pytest.param(s, m, r, p, id=f"{s}-{m}-{r}-{p}")
        for s, m, r, p in itertools.product(STABLE_STATES, MODEL_STATES, DEGRADATIONS, SCHEDULING)
    ],
)
def test_degraded_across_situations(
    stable: str, health: str, rollout: str, scheduling: str
) -> None:
    """A pending GPU pod degrades only an unservable model; a failed load always does."""
    status = build(
        inputs(
            STABLE_STATES[stable],
            model=MODEL_STATES[health],
            rollout=DEGRADATIONS[rollout],
            scheduling=SCHEDULING[scheduling],
        )
    )
    if rollout == "aborted":
        want = ("True", "AnalysisFailed")
    elif scheduling == "no-gpu" and stable == "0/2":
        want = ("True", "InsufficientGPU")
    elif health == "model-failed":
        want = ("True", "ModelLoadFailed")
    else:
        want = ("False", "AsExpected")
    assert summary(status)["Degraded"] == want
    # Scheduled tells of the pending pod either way, with the scheduler's own words.
    if scheduling == "no-gpu":
        check(status, "Scheduled", ("False", "InsufficientGPU", GPU_SHORTAGE))


# ------------------------------------------------------------------------------ phase

PHASES = [
    pytest.param(inputs(), Phase.READY, id="ready"),
    pytest.param(inputs(failure=INVALID), Phase.FAILED, id="invalid-spec"),
    pytest.param(
        inputs(DEADLINE, failure=INVALID, rollout=CANARY_ROLLOUT, scheduling=GPU_SCHEDULING),
        Phase.FAILED,
        id="failed-beats-everything",
    ),
    pytest.param(inputs(rollout=ABORTED), Phase.FAILED, id="rolled-back-is-stalled"),
    pytest.param(
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        Phase.DEGRADED,
        id="degraded-beats-progressing",
    ),
    pytest.param(
        inputs(observed(ready=1), scheduling=GPU_SCHEDULING),
        Phase.PROGRESSING,
        id="scaling-up-waiting-for-gpu-while-serving",
    ),
    pytest.param(
        inputs(scheduling=GPU_SCHEDULING), Phase.READY, id="surge-pod-pending-at-capacity"
    ),
    pytest.param(inputs(DEADLINE), Phase.FAILED, id="deadline-is-stalled"),
    pytest.param(inputs(model=MODEL_LOAD_FAILED), Phase.DEGRADED, id="model-load-failed"),
    pytest.param(inputs(rollout=CANARY_ROLLOUT), Phase.PROGRESSING, id="canary-while-ready"),
    pytest.param(
        inputs(observed(ready=0), model=NO_RUNNING_PODS),
        Phase.PROGRESSING,
        id="pods-starting",
    ),
    pytest.param(fresh_inputs(), Phase.PROGRESSING, id="fresh"),
    pytest.param(inputs(model=MODEL_LOADING), Phase.PROGRESSING, id="rolled-out-model-loading"),
    pytest.param(inputs(model=None), Phase.PROGRESSING, id="rolled-out-not-probed"),
]


@pytest.mark.parametrize(("given", "want"), PHASES)
def test_phase(given: StatusInputs, want: Phase) -> None:
    assert build(given).phase is want


MESSAGES = [
    pytest.param(inputs(), "serving at the desired capacity", id="ready"),
    pytest.param(inputs(failure=INVALID), f"InvalidSpec: {INVALID}", id="failed"),
    pytest.param(
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        f"InsufficientGPU: {GPU_SHORTAGE}",
        id="degraded",
    ),
    pytest.param(
        inputs(scheduling=GPU_SCHEDULING),
        "serving at the desired capacity",
        id="gpu-pod-pending-while-serving",
    ),
    pytest.param(
        inputs(SCALED_UP, scheduling=GPU_SCHEDULING),
        "ReplicasUpdating: 3 updated, 2 ready of 3",
        id="scale-up-waiting-for-gpu",
    ),
    pytest.param(
        inputs(rollout=CANARY_ROLLOUT),
        f"RolloutInProgress: {CANARY_ROLLOUT.message}",
        id="progressing",
    ),
    pytest.param(
        inputs(rollout=Rollout(progressing=True)), "RolloutInProgress", id="no-message-reason"
    ),
    pytest.param(
        inputs(model=MODEL_LOADING),
        f"ModelLoading: model ready on 0/2 pod(s): {MODEL_LOADING.message}",
        id="pending-names-ready-blocker",
    ),
    pytest.param(
        fresh_inputs(), f"DeploymentCreating: waiting for Deployment {STABLE_DEP}", id="fresh"
    ),
]


@pytest.mark.parametrize(("given", "want"), MESSAGES)
def test_message(given: StatusInputs, want: str) -> None:
    assert build(given).message == want


# ---------------------------------------------------------- shape and observedGeneration


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(inputs(), id="healthy"),
        pytest.param(fresh_inputs(), id="fresh"),
        pytest.param(inputs(failure=INVALID), id="failed"),
        pytest.param(inputs(rollout=CANARY_ROLLOUT, canary=canary_rev()), id="canary"),
    ],
)
def test_every_condition_once_in_order(given: StatusInputs) -> None:
    assert [c.type for c in build(given).conditions] == ORDER


@pytest.mark.parametrize("generation", [1, 2, 7, 12345])
def test_observed_generation_everywhere(generation: int) -> None:
    # The previous status was written for an older generation and nothing changed since.
    previous = build(inputs(generation=1), now=T0)
    status = build(inputs(generation=generation), previous, now=T1)
    assert status.observed_generation == generation
    assert {c.observed_generation for c in status.conditions} == {generation}


def test_healthy_status_matches_the_reference_table() -> None:
    assert summary(build(inputs())) == HEALTHY


def test_long_messages_are_cut_to_the_api_limit() -> None:
    huge = "0/5000 nodes are available: " + "x" * 40000
    scheduling = replace(GPU_SCHEDULING, message=huge)
    status = build(inputs(DOWN, scheduling=scheduling, model=NO_RUNNING_PODS))
    assert cond(status, "Scheduled").message == huge[:32768]
    assert cond(status, "Degraded").message == huge[:32768]
    assert cond(status, "Ready").message == huge[:32768]
    # While the model serves, only Scheduled carries it.
    assert cond(build(inputs(scheduling=scheduling)), "Scheduled").message == huge[:32768]


def test_inputs_are_not_modified() -> None:
    given = inputs(observed(), canary_observed(), canary=canary_rev(), rollout=CANARY_ROLLOUT)
    before = repr(given)
    build(given)
    assert repr(given) == before


# ------------------------------------------------------------------- lastTransitionTime

TIMES = [
    pytest.param(inputs(), inputs(), set(), id="nothing-changed"),
    pytest.param(
        inputs(observed(ready=1), model=model(1)),
        inputs(observed(ready=1), model=model(1)),
        set(),
        id="nothing-changed-not-ready",
    ),
    pytest.param(
        inputs(observed(ready=1), model=model(1)),
        inputs(),
        {"Ready", "Reconciling", "Progressing"},
        id="scaled-up-ready",
    ),
    pytest.param(
        # Available stays True while its message goes 1/2 -> 2/2.
        inputs(observed(ready=1), model=model(1)),
        inputs(observed(ready=2), model=model(1)),
        {"Ready", "Reconciling", "Progressing"},
        id="message-change-keeps-time",
    ),
    pytest.param(
        # ModelReady False -> False (ModelLoading -> ModelLoadFailed); Ready False -> False
        # with a new reason; only Degraded flips.
        inputs(model=MODEL_LOADING),
        inputs(model=MODEL_LOAD_FAILED),
        {"Degraded"},
        id="reason-change-keeps-time",
    ),
    pytest.param(
        inputs(scheduling=MEMORY_SCHEDULING),
        inputs(scheduling=GPU_SCHEDULING),
        set(),
        id="scheduled-reason-change-keeps-time",
    ),
    pytest.param(
        inputs(DOWN, scheduling=MEMORY_SCHEDULING, model=NO_RUNNING_PODS),
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        set(),
        id="degraded-reason-change-keeps-time",
    ),
    pytest.param(
        inputs(),
        inputs(scheduling=GPU_SCHEDULING),
        {"Scheduled"},
        id="gpu-shortage-while-serving",
    ),
    pytest.param(
        inputs(DOWN, model=NO_RUNNING_PODS),
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        {"Scheduled", "Degraded"},
        id="gpu-shortage-nothing-serving",
    ),
    pytest.param(
        inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS),
        inputs(observed(ready=1), scheduling=GPU_SCHEDULING, model=model(1)),
        {"Available", "ModelReady", "Degraded"},
        id="first-replica-serves-clears-gpu-degraded",
    ),
    pytest.param(
        inputs(),
        inputs(SCALED_UP, scheduling=GPU_SCHEDULING),
        {"Ready", "Reconciling", "Scheduled", "Progressing"},
        id="autoscaler-scale-up-waits-for-gpu",
    ),
    pytest.param(
        inputs(model=None),
        inputs(model=MODEL_LOADING),
        {"ModelReady"},
        id="unknown-to-false-is-a-flip",
    ),
    pytest.param(
        inputs(model=None),
        inputs(),
        {"Ready", "Reconciling", "ModelReady"},
        id="unknown-to-true-is-a-flip",
    ),
    pytest.param(
        inputs(),
        inputs(rollout=CANARY_ROLLOUT),
        {"Ready", "Reconciling", "Progressing"},
        id="canary-starts-ready-false-until-promoted",
    ),
    pytest.param(
        fresh_inputs(),
        inputs(generation=1),
        {"Ready", "Reconciling", "Available", "ModelReady", "Progressing"},
        id="fresh-to-healthy",
    ),
    pytest.param(
        inputs(),
        failure_inputs(build(inputs()), INVALID),
        {"Ready", "Stalled", "Available", "ModelReady", "Degraded"},
        id="invalid-spec-edit",
    ),
]


@pytest.mark.parametrize(("before", "after", "moved"), TIMES)
def test_last_transition_time(before: StatusInputs, after: StatusInputs, moved: set[str]) -> None:
    previous = build(before, now=T0)
    status = build(after, previous, now=T1)
    old = {c.type: c.status for c in previous.conditions}
    assert {c.type for c in status.conditions if c.status is not old[c.type]} == moved
    times = {c.type: c.last_transition_time for c in status.conditions}
    assert times == {k: T1 if k in moved else T0 for k in ORDER}


def test_first_status_stamps_every_condition_now() -> None:
    status = build(inputs(), EMPTY, now=T1)
    assert {c.last_transition_time for c in status.conditions} == {T1}


def test_time_survives_many_reconciles() -> None:
    status = build(inputs(), now=T0)
    for now in (T1, T2):
        status = build(inputs(model=model(2, reason="ModelReady", message="x")), status, now=now)
    assert {c.last_transition_time for c in status.conditions} == {T0}


def test_time_survives_a_status_round_trip() -> None:
    """The previous status comes back from the API server as JSON."""
    previous = build(inputs(), now=T0)
    wire = previous.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire["conditions"][0]["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    reread = ModelDeploymentStatus.model_validate(wire)
    status = build(inputs(), reread, now=T1)
    assert {c.last_transition_time for c in status.conditions} == {T0}
    assert all(isinstance(c.last_transition_time, datetime) for c in status.conditions)


def test_conditions_dropped_from_previous_are_not_kept() -> None:
    previous = ModelDeploymentStatus(
        conditions=[
            *build(inputs(), now=T0).conditions,
            cond(build(inputs(), now=T0), "Ready").model_copy(update={"type": "Legacy"}),
        ]
    )
    assert [c.type for c in build(inputs(), previous, now=T1).conditions] == ORDER


def test_status_is_unchanged_when_nothing_changed() -> None:
    """A second reconcile with the same observations must not rewrite the status."""
    previous = build(inputs(), now=T0)
    assert build(inputs(), previous, now=T1) == previous


# ----------------------------------------------------------------- counts and revisions

COUNTS = [
    pytest.param(inputs(), (2, 2, 2), id="stable-only"),
    pytest.param(
        inputs(
            observed(desired=4, replicas=4, ready=3),
            canary_observed(desired=2, replicas=2, ready=1),
            model=model(3),
        ),
        (6, 4, 3),
        id="stable-and-canary",
    ),
    pytest.param(
        inputs(
            observed(desired=2, replicas=3, updated=1, ready=2),
            observed("resnet-old", revision="9999999999", desired=0, replicas=1, ready=0),
            model=model(2, 1, "ModelLoading"),
        ),
        (4, 2, 1),
        id="leftover-deployment-counted",
    ),
    pytest.param(fresh_inputs(), (0, 0, 0), id="fresh"),
    pytest.param(inputs(model=None), (2, 2, 0), id="model-not-probed"),
]


@pytest.mark.parametrize(("given", "want"), COUNTS)
def test_replica_counts(given: StatusInputs, want: tuple[int, int, int]) -> None:
    status = build(given)
    assert (status.replicas, status.ready_replicas, status.model_ready_replicas) == want


def test_revision_counts_from_observations() -> None:
    stable = stable_rev(model_ready_replicas=9, image="tritonserver:24.08", replicas=99)
    canary = canary_rev(weight=25, step_index=2, ready_replicas=99)
    given = inputs(
        observed(desired=3, replicas=4, ready=3),
        canary_observed(desired=1, replicas=1, ready=0),
        stable=stable,
        canary=canary,
        rollout=CANARY_ROLLOUT,
    )
    status = build(replace(given, model_ready={STABLE_DEP: 2}))
    counts = {"replicas": 4, "ready_replicas": 3, "model_ready_replicas": 2}
    assert status.stable == stable.model_copy(update=counts)
    assert isinstance(status.canary, CanaryStatus)
    counts = {"replicas": 1, "ready_replicas": 0, "model_ready_replicas": 0}
    assert status.canary == canary.model_copy(update=counts)
    assert (status.canary.phase, status.canary.weight, status.canary.step_index) == (
        CanaryPhase.PROGRESSING,
        25,
        2,
    )


@pytest.mark.parametrize(
    ("given", "stable", "canary"),
    [
        pytest.param(
            inputs(canary_observed(), canary=canary_rev()),
            (0, 0),
            (1, 1),
            id="stable-deployment-not-observed",
        ),
        pytest.param(inputs(canary=canary_rev()), (2, 2), (0, 0), id="canary-not-created-yet"),
        pytest.param(inputs(), (2, 2), None, id="no-canary"),
    ],
)
def test_revision_counts_when_missing(
    given: StatusInputs, stable: tuple[int, int], canary: tuple[int, int] | None
) -> None:
    status = build(given)
    assert status.stable is not None
    assert (status.stable.replicas, status.stable.ready_replicas) == stable
    got = status.canary
    assert (None if got is None else (got.replicas, got.ready_replicas)) == canary


def test_no_stable_revision() -> None:
    assert build(inputs(stable=None)).stable is None


def test_pass_through_fields() -> None:
    status = build(inputs())
    assert (status.selector, status.endpoints) == (SELECTOR, ENDPOINTS)


# ------------------------------------------------------------ the invalid-spec path


def test_invalid_spec_after_serving() -> None:
    """What the reconciler builds when an edit cannot be parsed (children untouched)."""
    previous = build(inputs(canary=canary_rev(), rollout=CANARY_ROLLOUT), now=T0)
    status = build(failure_inputs(previous, INVALID), previous, now=T1)
    assert status.phase is Phase.FAILED
    assert status.observed_generation == GENERATION + 1
    check(status, "Degraded", ("True", "InvalidSpec", INVALID))
    assert cond(status, "Ready").status is ConditionStatus.FALSE
    # Nothing rolls out while the spec is unreadable.
    assert cond(status, "Progressing").status is ConditionStatus.FALSE
    assert status.stable == previous.stable.model_copy(  # type: ignore[union-attr]
        update={"replicas": 0, "ready_replicas": 0}
    )
    assert status.message == f"InvalidSpec: {INVALID}"


def test_fixing_the_spec_recovers() -> None:
    previous = build(failure_inputs(build(inputs()), INVALID), now=T0)
    status = build(inputs(generation=GENERATION + 2), previous, now=T1)
    assert status.phase is Phase.READY
    check(status, "Degraded", ("False", "AsExpected", ""))
    assert cond(status, "Degraded").last_transition_time == T1


def test_build_status_is_the_public_entry() -> None:
    assert build_status(inputs(), EMPTY, T0) == build(inputs())


def test_new_revision_stays_progressing_until_observed() -> None:
    """Rolling update: Progressing and not Ready from the decision until the Deployment is done.

    The old pods serve throughout (Available), but the spec's revision is not fully
    rolled out: ``kubectl wait --for=condition=Ready`` must keep waiting.
    """
    want = stable_rev(NEW, STABLE_DEP)
    steps = [
        (observed(revision=OLD), "RevisionUpdating"),
        (observed(revision=NEW, current=False), "ReplicasUpdating"),
        (observed(revision=NEW, replicas=3, updated=1, ready=2), "ReplicasUpdating"),
        (observed(revision=NEW), "RolloutComplete"),
    ]
    status = EMPTY
    for obs, reason in steps:
        status = build(inputs(obs, stable=want), status, now=T1)
        assert cond(status, "Progressing").reason == reason
        assert cond(status, "Available").status is ConditionStatus.TRUE
        done = reason == "RolloutComplete"
        assert cond(status, "Ready").status is (
            ConditionStatus.TRUE if done else ConditionStatus.FALSE
        )
    assert status.phase is Phase.READY
    assert status.stable is not None
    assert status.stable.revision == NEW


# ---------------------------------------------------------------- printer-column fields

COLUMNS = [
    pytest.param(replace(inputs(), model_ready={STABLE_DEP: 2}), ("2/2", None, None), id="ready"),
    pytest.param(
        replace(inputs(model=model(2, 1, "ModelLoading")), model_ready={STABLE_DEP: 1}),
        ("1/2", None, None),
        id="running-pods-without-the-model-do-not-count",
    ),
    pytest.param(
        replace(
            inputs(
                observed(desired=3),
                canary_observed(desired=1, ready=1),
                canary=canary_rev(weight=25, model_version="4"),
                rollout=CANARY_ROLLOUT,
            ),
            model_ready={STABLE_DEP: 3, CANARY_DEP: 1},
        ),
        ("4/4", "4", 25),
        id="canary-in-flight",
    ),
    pytest.param(
        replace(
            inputs(
                observed(desired=3),
                canary_observed(desired=1, ready=0),
                canary=canary_rev(weight=50, model_version="4"),
                rollout=Rollout(progressing=True, paused=True),
            ),
            model_ready={STABLE_DEP: 3},
        ),
        ("3/4", "4", 50),
        id="canary-paused-at-step-0-no-pod-yet",
    ),
    pytest.param(
        replace(
            inputs(
                canary=canary_rev(weight=100, model_version="4", phase=CanaryPhase.PROMOTED),
            ),
            model_ready={STABLE_DEP: 2},
        ),
        ("2/2", None, None),
        id="promoted-shows-no-canary",
    ),
    pytest.param(
        replace(
            inputs(canary=canary_rev(weight=10, phase=CanaryPhase.ABORTED), rollout=ABORTED),
            model_ready={STABLE_DEP: 2},
        ),
        ("2/2", None, None),
        id="rolled-back-shows-no-canary",
    ),
    pytest.param(fresh_inputs(), ("0/0", None, None), id="fresh"),
]


@pytest.mark.parametrize(("given", "want"), COLUMNS)
def test_printer_column_fields(
    given: StatusInputs, want: tuple[str, str | None, int | None]
) -> None:
    status = build(given)
    assert (status.servers, status.canary_version, status.canary_weight) == want


def test_paused_canary_is_phase_paused_and_ready_false() -> None:
    paused = Rollout(progressing=True, paused=True, message="held")
    status = build(inputs(canary=canary_rev(), rollout=paused))
    assert status.phase is Phase.PAUSED
    assert summary(status)["Ready"] == ("False", "CanaryPaused")
    assert summary(status)["Reconciling"] == ("True", "CanaryPaused")
    assert summary(status)["Stalled"] == ("False", "AsExpected")


# --------------------------------------------------------------------------- Stalled


def _degraded_then(seconds: float, *, generation: int = GENERATION, deadline: float = 600) -> Any:
    down = inputs(DOWN, scheduling=GPU_SCHEDULING, model=NO_RUNNING_PODS)
    first = build(down, now=T0)
    later = replace(down, generation=generation, progress_deadline_seconds=deadline)
    return build(later, first, now=T0 + timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("seconds", "deadline", "stalled"),
    [
        (0, 600, False),
        (599, 600, False),
        (600, 600, True),
        (3600, 600, True),
        (59, 60, False),
        (60, 60, True),
    ],
)
def test_degraded_past_the_progress_deadline_is_stalled(
    seconds: float, deadline: float, stalled: bool
) -> None:
    status = _degraded_then(seconds, deadline=deadline)
    got = cond(status, "Stalled")
    assert got.status is (ConditionStatus.TRUE if stalled else ConditionStatus.FALSE)
    assert status.phase is (Phase.FAILED if stalled else Phase.DEGRADED)
    if stalled:
        assert got.reason == "InsufficientGPU"
        assert got.message.startswith(f"degraded for more than {deadline:.0f}s: ")
        assert summary(status)["Reconciling"] == ("False", "Stalled")


def test_a_spec_edit_restarts_the_stall_clock() -> None:
    status = _degraded_then(3600, generation=GENERATION + 1)
    assert cond(status, "Stalled").status is ConditionStatus.FALSE
    assert cond(status, "Degraded").last_transition_time == T0 + timedelta(seconds=3600)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        pytest.param(inputs(failure=INVALID), "InvalidSpec", id="invalid-spec"),
        pytest.param(inputs(rollout=ABORTED), "AnalysisFailed", id="rolled-back"),
        pytest.param(inputs(DEADLINE), "ProgressDeadlineExceeded", id="deadline"),
    ],
)
def test_stalled_at_once(given: StatusInputs, reason: str) -> None:
    status = build(given)
    assert summary(status)["Stalled"] == ("True", reason)
    assert summary(status)["Reconciling"] == ("False", "Stalled")
    assert summary(status)["Ready"][0] == "False"
    assert status.phase is Phase.FAILED


# --------------------------------------------------------------------- ScalingActive

SCALING = [
    pytest.param(Sizing(), CANARY_ROLLOUT, ("False", "FixedReplicas"), id="default"),
    pytest.param(Sizing(replicas=3), Rollout(), ("False", "FixedReplicas"), id="fixed"),
    pytest.param(
        Sizing(autoscaled=True, max_replicas=4), Rollout(), ("True", "Autoscaling"), id="hpa"
    ),
    pytest.param(
        Sizing(autoscaled=True, max_replicas=4, replicas=3),
        Rollout(),
        ("True", "ReplicasIgnored"),
        id="kubectl-scale-on-autoscaled",
    ),
    pytest.param(
        Sizing(autoscaled=True, max_replicas=4),
        CANARY_ROLLOUT,
        ("False", "FrozenForCanary"),
        id="frozen-for-canary",
    ),
]


@pytest.mark.parametrize(("sizing", "rollout", "want"), SCALING)
def test_scaling_active(sizing: Sizing, rollout: Rollout, want: tuple[str, str]) -> None:
    status = build(replace(inputs(rollout=rollout), sizing=sizing))
    assert summary(status)["ScalingActive"] == want


def test_ignored_replicas_say_what_to_do_and_warn_once() -> None:
    autoscaled = Sizing(autoscaled=True, min_replicas=1, max_replicas=4)
    before = build(replace(inputs(), sizing=autoscaled))
    after = build(replace(inputs(), sizing=replace(autoscaled, replicas=3)), before, now=T1)
    message = cond(after, "ScalingActive").message
    assert "spec.replicas=3" in message
    assert "minReplicas=1 and maxReplicas=4" in message
    (event,) = transitions(before, after)
    assert (event.type, event.reason) == ("Warning", "ReplicasIgnored")
    again = build(replace(inputs(), sizing=replace(autoscaled, replicas=3)), after, now=T1)
    assert transitions(after, again) == []
