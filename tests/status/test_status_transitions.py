"""Events on condition transitions: only what changed, Warning for what needs acting on.

Degraded going True warns, going back to False is Normal; Progressing never makes an
event (the rollout decision has its own); Scheduled=False warns on every new reason;
Ready, Available and ModelReady warn when they are lost (True to False), except Ready's
quiet ScalingUp; a recovery to True from anything else is Normal; a condition's first
appearance says nothing unless it is Scheduled=False or Degraded=True.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gantry.api.status import ModelDeploymentStatus
from gantry.status.conditions import Rollout, StatusInputs, Transition, transitions
from tests.status.builders import (
    EMPTY,
    GPU_SCHEDULING,
    GPU_SHORTAGE,
    MEMORY_SHORTAGE,
    MODEL_LOAD_FAILED,
    MODEL_LOADING,
    NO_RUNNING_PODS,
    ORDER,
    STABLE_DEP,
    T0,
    T1,
    build,
    cond,
    condition,
    fresh_inputs,
    healthy_status,
    inputs,
    model,
    observed,
    with_conditions,
)

W, N = "Warning", "Normal"


def warn(reason: str, message: str) -> Transition:
    return Transition(W, reason, message)


def normal(reason: str, message: str) -> Transition:
    return Transition(N, reason, message)


# -------------------------------------------------------------- from hand-built statuses

HAND = [
    pytest.param(healthy_status(), healthy_status(), [], id="nothing-changed"),
    pytest.param(
        healthy_status(Available=("True", "MinimumReplicasAvailable", "1/2 replicas ready")),
        healthy_status(Available=("True", "MinimumReplicasAvailable", "2/2 replicas ready")),
        [],
        id="message-only-change",
    ),
    pytest.param(
        healthy_status(),
        healthy_status(Ready=("False", "ModelLoading", "model ready on 0/2 pod(s)")),
        [warn("ModelLoading", "Ready=False: model ready on 0/2 pod(s)")],
        id="ready-goes-false",
    ),
    pytest.param(
        # An autoscaler adding replicas is not news.
        healthy_status(),
        healthy_status(Ready=("False", "ScalingUp", "1/2 replicas ready")),
        [],
        id="ready-goes-false-scaling-up-is-quiet",
    ),
    pytest.param(
        healthy_status(Ready=("False", "ScalingUp", "2/3 replicas ready")),
        healthy_status(Ready=("False", "NoReadyReplicas", "no replica is ready")),
        [],
        id="ready-false-reason-changes-is-quiet",
    ),
    pytest.param(
        healthy_status(),
        healthy_status(Available=("False", "NoReadyReplicas", "no replica is ready")),
        [warn("NoReadyReplicas", "Available=False: no replica is ready")],
        id="available-goes-false",
    ),
    pytest.param(
        healthy_status(),
        healthy_status(ModelReady=("False", "ModelLoading", "model ready on 0/2 pod(s)")),
        [warn("ModelLoading", "ModelReady=False: model ready on 0/2 pod(s)")],
        id="model-ready-goes-false",
    ),
    pytest.param(
        healthy_status(),
        healthy_status(Scheduled=("False", "InsufficientGPU", GPU_SHORTAGE)),
        [warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}")],
        id="scheduled-goes-false",
    ),
    pytest.param(
        healthy_status(Scheduled=("False", "Unschedulable", MEMORY_SHORTAGE)),
        healthy_status(Scheduled=("False", "InsufficientGPU", GPU_SHORTAGE)),
        [warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}")],
        id="scheduled-false-reason-changes",
    ),
    pytest.param(
        healthy_status(Scheduled=("False", "InsufficientGPU", "0/4 nodes are available")),
        healthy_status(Scheduled=("False", "InsufficientGPU", GPU_SHORTAGE)),
        [],
        id="scheduled-false-message-only-change",
    ),
    pytest.param(
        healthy_status(),
        healthy_status(Degraded=("True", "AnalysisFailed", "rolled back")),
        [warn("AnalysisFailed", "Degraded=True: rolled back")],
        id="degraded-goes-true",
    ),
    pytest.param(
        healthy_status(Degraded=("True", "Unschedulable", "a")),
        healthy_status(Degraded=("True", "InsufficientGPU", "b")),
        [warn("InsufficientGPU", "Degraded=True: b")],
        id="degraded-reason-changes",
    ),
    pytest.param(
        healthy_status(Degraded=("True", "InsufficientGPU", "a")),
        healthy_status(Degraded=("True", "InsufficientGPU", "b")),
        [],
        id="degraded-message-only-change",
    ),
    pytest.param(
        healthy_status(Degraded=("Unknown", "Unknown", "")),
        healthy_status(Degraded=("True", "AnalysisFailed", "rolled back")),
        [warn("AnalysisFailed", "Degraded=True: rolled back")],
        id="degraded-unknown-to-true",
    ),
    pytest.param(
        healthy_status(Degraded=("Unknown", "Unknown", "")),
        healthy_status(),
        [],
        id="degraded-unknown-to-false-is-quiet",
    ),
    pytest.param(
        # Not a loss: it was not True before (Degraded says what went wrong).
        healthy_status(ModelReady=("False", "ModelLoading", "loading")),
        healthy_status(ModelReady=("False", "ModelLoadFailed", "failed")),
        [],
        id="false-reason-changes-is-quiet",
    ),
    pytest.param(
        healthy_status(Available=("Unknown", "Unknown", "")),
        healthy_status(Available=("False", "NoReadyReplicas", "none")),
        [],
        id="unknown-to-false-is-quiet",
    ),
    pytest.param(
        healthy_status(Ready=("False", "ScalingUp", "1/2 replicas ready")),
        healthy_status(),
        [normal("Ready", "Ready=True: ")],
        id="ready-recovers",
    ),
    pytest.param(
        healthy_status(Degraded=("True", "InsufficientGPU", GPU_SHORTAGE)),
        healthy_status(),
        [normal("AsExpected", "Degraded=False: ")],
        id="degraded-recovers",
    ),
    pytest.param(
        healthy_status(Scheduled=("False", "InsufficientGPU", GPU_SHORTAGE)),
        healthy_status(Scheduled=("True", "PodsScheduled", "3 pod(s) scheduled")),
        [normal("PodsScheduled", "Scheduled=True: 3 pod(s) scheduled")],
        id="scheduled-recovers",
    ),
    pytest.param(
        healthy_status(),
        healthy_status(Progressing=("True", "RolloutInProgress", "canary at 10%")),
        [],
        id="progressing-starts-is-quiet",
    ),
    pytest.param(
        healthy_status(Progressing=("True", "RolloutInProgress", "canary at 10%")),
        healthy_status(Progressing=("False", "RolloutComplete", "every replica is up to date")),
        [],
        id="progressing-completes-is-quiet",
    ),
    pytest.param(
        healthy_status(Progressing=("True", "RolloutInProgress", "canary at 10%")),
        healthy_status(Progressing=("True", "ReplicasUpdating", "1 updated")),
        [],
        id="progressing-reason-changes-is-quiet",
    ),
    pytest.param(
        # Only a loss to False warns; Unknown is not news either way.
        healthy_status(),
        healthy_status(ModelReady=("Unknown", "NotProbed", "not probed")),
        [],
        id="model-ready-goes-unknown",
    ),
    pytest.param(
        healthy_status(ModelReady=("Unknown", "NotProbed", "not probed")),
        healthy_status(),
        [normal("ModelReady", "ModelReady=True: ")],
        id="model-ready-unknown-to-true",
    ),
    pytest.param(
        healthy_status(Available=("False", "NoReadyReplicas", "none")),
        healthy_status(),
        [normal("MinimumReplicasAvailable", "Available=True: ")],
        id="available-recovers",
    ),
    pytest.param(
        healthy_status(Available=("True", "Legacy", "")),
        healthy_status(),
        [],
        id="true-reason-changes-is-quiet",
    ),
    pytest.param(
        healthy_status(
            Ready=("False", "ModelLoading", "x"), ModelReady=("False", "ModelLoading", "x")
        ),
        healthy_status(),
        [normal("Ready", "Ready=True: "), normal("ModelReady", "ModelReady=True: ")],
        id="two-recoveries-in-condition-order",
    ),
    pytest.param(
        EMPTY,
        healthy_status(),
        [],
        id="initial-all-good-is-silent",
    ),
    pytest.param(
        EMPTY,
        healthy_status(
            Ready=("False", "InsufficientGPU", GPU_SHORTAGE),
            Scheduled=("False", "InsufficientGPU", GPU_SHORTAGE),
            Progressing=("True", "ReplicasUpdating", "0 updated"),
            Degraded=("True", "InsufficientGPU", GPU_SHORTAGE),
        ),
        [
            warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}"),
            warn("InsufficientGPU", f"Degraded=True: {GPU_SHORTAGE}"),
        ],
        id="initial-scheduled-and-degraded-only",
    ),
    pytest.param(
        EMPTY,
        healthy_status(
            Ready=("False", "NoReadyReplicas", "no replica is ready"),
            Available=("False", "NoReadyReplicas", "no replica is ready"),
            ModelReady=("Unknown", "NotProbed", "not probed"),
            Progressing=("True", "ReplicasUpdating", "0 updated"),
        ),
        [],
        id="initial-false-or-unknown-is-silent",
    ),
    pytest.param(
        with_conditions(*(condition(k, *v) for k, v in [("Ready", ("True", "Ready"))])),
        healthy_status(Available=("False", "NoReadyReplicas", "none")),
        [],
        id="condition-new-to-previous-treated-as-initial",
    ),
    pytest.param(
        with_conditions(*(condition(k, *v) for k, v in [("Ready", ("True", "Ready"))])),
        healthy_status(
            Scheduled=("False", "InsufficientGPU", GPU_SHORTAGE),
            Degraded=("True", "InsufficientGPU", GPU_SHORTAGE),
        ),
        [
            warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}"),
            warn("InsufficientGPU", f"Degraded=True: {GPU_SHORTAGE}"),
        ],
        id="condition-new-to-previous-warns-as-initial",
    ),
]


@pytest.mark.parametrize(("previous", "current", "want"), HAND)
def test_transitions(
    previous: ModelDeploymentStatus, current: ModelDeploymentStatus, want: list[Transition]
) -> None:
    assert transitions(previous, current) == want


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            ("True", "ReplicasUpdating"), ("False", "ProgressDeadlineExceeded"), id="stall"
        ),
        pytest.param(("False", "RolloutComplete"), ("True", "RolloutInProgress"), id="start"),
        pytest.param(("True", "RolloutInProgress"), ("False", "RolloutComplete"), id="complete"),
        pytest.param(("Unknown", "Unknown"), ("True", "DeploymentCreating"), id="unknown-to-true"),
        pytest.param(None, ("False", "ProgressDeadlineExceeded"), id="initial-stalled"),
    ],
)
def test_progressing_is_never_an_event(
    before: tuple[str, str] | None, after: tuple[str, str]
) -> None:
    """Rollout progress has its own events; a stalled rollout warns through Degraded."""
    previous = EMPTY if before is None else healthy_status(Progressing=(*before, "m"))
    assert transitions(previous, healthy_status(Progressing=(*after, "m"))) == []


def test_initial_unknown_is_silent() -> None:
    assert transitions(EMPTY, healthy_status(ModelReady=("Unknown", "NotProbed", ""))) == []


def test_generation_change_alone_is_silent() -> None:
    previous = build(inputs(generation=1), now=T0)
    current = build(inputs(generation=2), previous, now=T1)
    assert transitions(previous, current) == []


# ----------------------------------------------------------- from real build_status runs

GPU_STALL = inputs(observed(replicas=3, updated=1, ready=2), scheduling=GPU_SCHEDULING)
# An autoscaler asked for a third replica and the new pod waits for a GPU.
SCALE_UP_STALL = inputs(observed(desired=3, replicas=3, ready=2), scheduling=GPU_SCHEDULING)
DOWN = inputs(observed(ready=0), model=NO_RUNNING_PODS)
DOWN_NO_GPU = replace(DOWN, scheduling=GPU_SCHEDULING)
ABORTED = Rollout(degraded_reason="AnalysisFailed", degraded_message="rolled back")
FLOWS = [
    pytest.param(inputs(), inputs(), [], id="steady"),
    pytest.param(
        fresh_inputs(),
        fresh_inputs(),
        [],
        id="fresh-twice",
    ),
    pytest.param(
        fresh_inputs(),
        inputs(generation=1),
        [
            normal("Ready", "Ready=True: serving at the desired capacity"),
            normal("MinimumReplicasAvailable", "Available=True: 2/2 replicas ready"),
            normal("ModelReady", "ModelReady=True: model ready on 2/2 pod(s)"),
        ],
        id="fresh-becomes-ready",
    ),
    pytest.param(
        # The surge pod's wait is told by Scheduled alone: the old replicas still serve.
        inputs(),
        GPU_STALL,
        [warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}")],
        id="surge-pod-finds-no-gpu",
    ),
    pytest.param(
        # The rolling update completes: Ready (quietly False while it ran) comes back.
        GPU_STALL,
        inputs(),
        [
            normal("Ready", "Ready=True: serving at the desired capacity"),
            normal("PodsScheduled", "Scheduled=True: 2 pod(s) scheduled"),
        ],
        id="gpu-frees-up",
    ),
    pytest.param(
        inputs(),
        SCALE_UP_STALL,
        [warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}")],
        id="scale-up-pod-finds-no-gpu",
    ),
    pytest.param(
        SCALE_UP_STALL,
        inputs(observed(desired=3, replicas=3, ready=3), model=model(3)),
        [
            normal("Ready", "Ready=True: serving at the desired capacity"),
            normal("PodsScheduled", "Scheduled=True: 3 pod(s) scheduled"),
        ],
        id="scale-up-completes",
    ),
    pytest.param(
        DOWN,
        DOWN_NO_GPU,
        [
            warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}"),
            warn("InsufficientGPU", f"Degraded=True: {GPU_SHORTAGE}"),
        ],
        id="gpu-shortage-nothing-serving",
    ),
    pytest.param(
        SCALE_UP_STALL,
        inputs(
            observed(desired=3, replicas=3, ready=0),
            model=NO_RUNNING_PODS,
            scheduling=GPU_SCHEDULING,
        ),
        [
            warn("NoReadyReplicas", "Available=False: no replica is ready"),
            warn("NoReadyPods", "ModelReady=False: no running pod to probe"),
            warn("InsufficientGPU", f"Degraded=True: {GPU_SHORTAGE}"),
        ],
        id="last-replica-lost-while-gpu-pod-pending",
    ),
    pytest.param(
        DOWN_NO_GPU,
        inputs(observed(ready=1), model=model(1), scheduling=GPU_SCHEDULING),
        [
            normal("MinimumReplicasAvailable", "Available=True: 1/2 replicas ready"),
            normal("ModelReady", "ModelReady=True: model ready on 1/1 pod(s)"),
            normal("AsExpected", "Degraded=False: "),
        ],
        id="first-replica-serves-while-gpu-pod-pending",
    ),
    pytest.param(
        inputs(model=MODEL_LOADING),
        inputs(model=MODEL_LOAD_FAILED),
        [
            warn(
                "ModelLoadFailed",
                f"Degraded=True: model ready on 0/2 pod(s): {MODEL_LOAD_FAILED.message}",
            ),
        ],
        id="model-load-fails",
    ),
    pytest.param(
        inputs(),
        inputs(model=MODEL_LOAD_FAILED),
        [
            warn(
                "ModelLoadFailed",
                f"Ready=False: model ready on 0/2 pod(s): {MODEL_LOAD_FAILED.message}",
            ),
            warn(
                "ModelLoadFailed",
                f"ModelReady=False: model ready on 0/2 pod(s): {MODEL_LOAD_FAILED.message}",
            ),
            warn(
                "ModelLoadFailed",
                f"Degraded=True: model ready on 0/2 pod(s): {MODEL_LOAD_FAILED.message}",
            ),
        ],
        id="model-load-fails-after-serving",
    ),
    pytest.param(
        inputs(),
        inputs(rollout=ABORTED),
        [
            warn("AnalysisFailed", "Ready=False: rolled back"),
            warn("AnalysisFailed", "Degraded=True: rolled back"),
        ],
        id="canary-rolled-back",
    ),
    pytest.param(
        inputs(),
        inputs(observed(ready=0), model=NO_RUNNING_PODS),
        [
            warn("NoReadyReplicas", "Ready=False: no replica is ready"),
            warn("NoReadyReplicas", "Available=False: no replica is ready"),
            warn("NoReadyPods", "ModelReady=False: no running pod to probe"),
        ],
        id="every-pod-lost",
    ),
    pytest.param(
        # Below the desired count while still serving reads as ScalingUp, which is quiet.
        inputs(),
        inputs(observed(ready=1), model=model(1)),
        [],
        id="one-of-two-replicas-lost-is-quiet",
    ),
]


@pytest.mark.parametrize(("before", "after", "want"), FLOWS)
def test_transitions_of_built_statuses(
    before: StatusInputs, after: StatusInputs, want: list[Transition]
) -> None:
    previous = build(before, now=T0)
    assert transitions(previous, build(after, previous, now=T1)) == want


def test_fresh_object_first_events() -> None:
    """The very first reconcile of a new object is silent: nothing exists yet, by design."""
    assert transitions(EMPTY, build(fresh_inputs())) == []


def test_fresh_object_without_a_gpu_warns() -> None:
    """A new object whose first pod finds no GPU cannot serve at all: that is news."""
    events = transitions(EMPTY, build(replace(fresh_inputs(), scheduling=GPU_SCHEDULING)))
    assert events == [
        warn("InsufficientGPU", f"Scheduled=False: {GPU_SHORTAGE}"),
        warn("InsufficientGPU", f"Degraded=True: {GPU_SHORTAGE}"),
    ]


def test_event_order_follows_condition_order() -> None:
    previous = healthy_status(**{k: ("Unknown", "Unknown", "") for k in ORDER})
    events = transitions(previous, healthy_status())
    # Progressing and Reconciling never make an event; Degraded and Stalled False only
    # after a True.
    assert [e.message.split("=")[0] for e in events] == [
        "Ready",
        "Available",
        "ModelReady",
        "Scheduled",
    ]
    assert {e.type for e in events} == {N}


def test_warning_order_follows_condition_order() -> None:
    current = healthy_status(
        Ready=("False", "NoReadyReplicas", "x"),
        Available=("False", "NoReadyReplicas", "x"),
        ModelReady=("False", "NoReadyPods", "x"),
        Scheduled=("False", "InsufficientGPU", "x"),
        Progressing=("True", "ReplicasUpdating", "x"),
        Degraded=("True", "InsufficientGPU", "x"),
    )
    events = transitions(healthy_status(), current)
    silent = {"Progressing", "Reconciling", "Stalled", "ScalingActive"}
    assert [e.message.split("=")[0] for e in events] == [k for k in ORDER if k not in silent]
    assert {e.type for e in events} == {W}


def test_stable_deployment_name_in_deadline_events() -> None:
    dead = observed(replicas=3, updated=1, ready=2, deadline_exceeded=True, message="timed out")
    previous = build(inputs(), now=T0)
    events = transitions(previous, build(inputs(dead), previous, now=T1))
    assert warn("ProgressDeadlineExceeded", f"Degraded=True: {STABLE_DEP}: timed out") in events


def test_a_scale_up_pod_starting_makes_no_warning() -> None:
    """The issue's measured case: a plain scale-up emitted two Warnings (ModelReady, Ready)."""
    previous = build(inputs(), now=T0)
    starting = model(3, 2, "ServerUnreachable", "10.244.1.19:8000: connection refused")
    scaled = build(inputs(observed(desired=3, ready=3), model=starting), previous, now=T1)
    assert cond(scaled, "ModelReady").reason == "PodsStarting"
    assert cond(scaled, "Ready").reason == "PodsStarting"
    assert [e for e in transitions(previous, scaled) if e.type == W] == []
