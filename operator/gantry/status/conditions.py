"""Condition logic: observations and rollout state in, one truthful status out (pure).

Ready is the AND of the conditions it depends on; every condition carries the
generation it was computed for; lastTransitionTime moves only when the status
of a condition flips, so ``kubectl wait`` and Argo CD see real transitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gantry.api.status import (
    CanaryStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    Endpoints,
    ModelDeploymentStatus,
    Phase,
    RevisionStatus,
)
from gantry.status.observe import (
    STUCK_REASONS,
    DeploymentObservation,
    ModelHealth,
    SchedulingObservation,
)

T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
# Reasons pods cannot be created or started (see _start_failure).
START_FAILURE_REASONS = STUCK_REASONS | {"FailedCreate", "FailedDelete", "ReplicaFailure"}


@dataclass(frozen=True)
class Rollout:
    """What the rollout logic says about progress (from its decision)."""

    progressing: bool = False
    message: str = ""
    degraded_reason: str = ""
    degraded_message: str = ""


@dataclass(frozen=True)
class StatusInputs:
    generation: int
    stable: RevisionStatus | None
    canary: CanaryStatus | None
    deployments: Mapping[str, DeploymentObservation]
    scheduling: SchedulingObservation = field(default_factory=SchedulingObservation)
    model: ModelHealth | None = None
    rollout: Rollout = field(default_factory=Rollout)
    failure: str = ""
    failure_reason: str = "InvalidSpec"
    endpoints: Endpoints = field(default_factory=Endpoints)
    selector: str = ""


@dataclass(frozen=True)
class _Cond:
    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str = ""


def _with_counts(rev: RevisionStatus | None, inputs: StatusInputs) -> RevisionStatus | None:
    if rev is None:
        return None
    obs = inputs.deployments.get(rev.deployment)
    if obs is None:
        return rev.model_copy(update={"replicas": 0, "ready_replicas": 0})
    return rev.model_copy(update={"replicas": obs.replicas, "ready_replicas": obs.ready})


def _scheduled(s: SchedulingObservation) -> _Cond:
    if s.insufficient_gpu:
        return _Cond(ConditionType.SCHEDULED, F, "InsufficientGPU", s.message)
    if s.unschedulable:
        return _Cond(ConditionType.SCHEDULED, F, "Unschedulable", s.message)
    return _Cond(ConditionType.SCHEDULED, T, "PodsScheduled", f"{s.pods} pod(s) scheduled")


def _start_failure(inputs: StatusInputs, stable: DeploymentObservation | None) -> _Cond | None:
    """Why pods cannot be created or started, when something says so (else None).

    The ReplicaSet controller's FailedCreate (quota, admission) comes first: no pod
    exists to report anything else. Then a container stuck waiting (bad image, a
    missing Secret, a crash loop), which the kubelet reports per pod.
    """
    if stable is not None and stable.replica_failure_reason:
        text = f"{stable.name}: {stable.replica_failure}".rstrip(": ")
        return _Cond(ConditionType.AVAILABLE, F, stable.replica_failure_reason, text)
    s = inputs.scheduling
    if s.stuck_reason:
        more = f" (and {s.stuck - 1} more pod(s))" if s.stuck > 1 else ""
        return _Cond(ConditionType.AVAILABLE, F, s.stuck_reason, s.stuck_message + more)
    return None


def _available(inputs: StatusInputs, stable: DeploymentObservation | None) -> _Cond:
    if stable is None:
        return _Cond(ConditionType.AVAILABLE, F, "DeploymentMissing", "no stable Deployment yet")
    if stable.ready >= 1:
        return _Cond(
            ConditionType.AVAILABLE,
            T,
            "MinimumReplicasAvailable",
            f"{stable.ready}/{stable.desired} replicas ready",
        )
    if (failure := _start_failure(inputs, stable)) is not None:
        return failure
    return _Cond(ConditionType.AVAILABLE, F, "NoReadyReplicas", "no replica is ready")


def _model_ready(model: ModelHealth | None, ready_pods: int) -> _Cond:
    if model is None:
        return _Cond(ConditionType.MODEL_READY, U, "NotProbed", "model health not probed yet")
    if model.probed == 0:
        reason = "NoReadyPods" if ready_pods == 0 else "NotProbed"
        return _Cond(ConditionType.MODEL_READY, F if ready_pods == 0 else U, reason, model.message)
    if model.ready == model.probed:
        return _Cond(
            ConditionType.MODEL_READY,
            T,
            "ModelReady",
            f"model ready on {model.ready}/{model.probed} pod(s)",
        )
    return _Cond(
        ConditionType.MODEL_READY,
        F,
        model.reason or "ModelUnavailable",
        f"model ready on {model.ready}/{model.probed} pod(s): {model.message}".rstrip(": "),
    )


def _progressing(inputs: StatusInputs, stable: DeploymentObservation | None) -> _Cond:
    deadline = [d for d in inputs.deployments.values() if d.deadline_exceeded]
    if deadline:
        d = deadline[0]
        return _Cond(
            ConditionType.PROGRESSING, F, "ProgressDeadlineExceeded", f"{d.name}: {d.message}"
        )
    if inputs.rollout.progressing:
        return _Cond(ConditionType.PROGRESSING, T, "RolloutInProgress", inputs.rollout.message)
    want = inputs.stable
    if want is not None and not inputs.failure:
        # Observed before this reconcile applied its plan: a stable Deployment that does not
        # exist yet, or still runs another revision, is not a completed rollout.
        if stable is None:
            return _Cond(
                ConditionType.PROGRESSING,
                T,
                "DeploymentCreating",
                f"waiting for Deployment {want.deployment}",
            )
        if stable.revision and stable.revision != want.revision:
            return _Cond(
                ConditionType.PROGRESSING,
                T,
                "RevisionUpdating",
                f"{stable.name}: revision {stable.revision} -> {want.revision}",
            )
    if stable is not None and not stable.rolled_out:
        text = f"{stable.updated} updated, {stable.ready} ready of {stable.desired}"
        if (failure := _start_failure(inputs, stable)) is not None:
            text += f"; {failure.reason}: {failure.message}"
        return _Cond(ConditionType.PROGRESSING, T, "ReplicasUpdating", text)
    return _Cond(ConditionType.PROGRESSING, F, "RolloutComplete", "every replica is up to date")


def _degraded(inputs: StatusInputs, conds: Mapping[ConditionType, _Cond]) -> _Cond:
    if inputs.failure:
        return _Cond(ConditionType.DEGRADED, T, inputs.failure_reason, inputs.failure)
    if inputs.rollout.degraded_reason:
        return _Cond(
            ConditionType.DEGRADED,
            T,
            inputs.rollout.degraded_reason,
            inputs.rollout.degraded_message,
        )
    # A pod waiting for a GPU while others serve (a surge pod, an autoscaler
    # scale-up) is normal life: Scheduled=False says so, but only an unservable
    # model, or one stuck past its progress deadline, is Degraded.
    unservable = conds[ConditionType.AVAILABLE].status is not T
    for kind, reasons, always in (
        (ConditionType.PROGRESSING, {"ProgressDeadlineExceeded"}, True),
        (ConditionType.SCHEDULED, {"InsufficientGPU", "Unschedulable"}, False),
        (ConditionType.AVAILABLE, START_FAILURE_REASONS, False),
        (ConditionType.MODEL_READY, {"ModelLoadFailed"}, True),
    ):
        cond = conds[kind]
        if cond.status is F and cond.reason in reasons and (always or unservable):
            return _Cond(ConditionType.DEGRADED, T, cond.reason, cond.message)
    return _Cond(ConditionType.DEGRADED, F, "AsExpected", "")


def _ready(
    inputs: StatusInputs,
    conds: Mapping[ConditionType, _Cond],
    stable: DeploymentObservation | None,
) -> _Cond:
    # Degraded's reason is the root cause (InsufficientGPU, AnalysisFailed...), so it
    # leads; Available and ModelReady follow.
    blockers = [
        c
        for kind in (ConditionType.DEGRADED, ConditionType.AVAILABLE, ConditionType.MODEL_READY)
        if (c := conds[kind]).status is (T if kind is ConditionType.DEGRADED else F)
        or (kind is not ConditionType.DEGRADED and c.status is U)
    ]
    if blockers:
        first = blockers[0]
        return _Cond(ConditionType.READY, F, first.reason, first.message)
    if stable is not None and stable.ready < stable.desired:
        # Some pods serve, the rest cannot start: say why rather than "scaling up".
        if (failure := _start_failure(inputs, stable)) is not None:
            return _Cond(ConditionType.READY, F, failure.reason, failure.message)
        return _Cond(
            ConditionType.READY,
            F,
            "ScalingUp",
            f"{stable.ready}/{stable.desired} replicas ready",
        )
    return _Cond(ConditionType.READY, T, "Ready", "serving at the desired capacity")


def _phase(inputs: StatusInputs, conds: Mapping[ConditionType, _Cond]) -> Phase:
    if inputs.failure:
        return Phase.FAILED
    if conds[ConditionType.DEGRADED].status is T:
        return Phase.DEGRADED
    if conds[ConditionType.PROGRESSING].status is T:
        return Phase.PROGRESSING
    if conds[ConditionType.READY].status is T:
        return Phase.READY
    return Phase.PENDING


def _stamp(
    new: Sequence[_Cond], previous: Sequence[Condition], generation: int, now: datetime
) -> list[Condition]:
    before = {c.type: c for c in previous}
    stamped = []
    for c in new:
        old = before.get(c.type)
        moved = old is None or old.status is not c.status
        stamped.append(
            Condition(
                type=c.type.value,
                status=c.status,
                reason=c.reason,
                message=c.message[:32768],
                last_transition_time=now if moved or old is None else old.last_transition_time,
                observed_generation=generation,
            )
        )
    return stamped


def build_status(
    inputs: StatusInputs, previous: ModelDeploymentStatus, now: datetime
) -> ModelDeploymentStatus:
    """The whole status for this generation, from what was observed and decided."""
    stable_obs = inputs.deployments.get(inputs.stable.deployment) if inputs.stable else None
    ready_pods = sum(d.ready for d in inputs.deployments.values())
    conds: dict[ConditionType, _Cond] = {}
    conds[ConditionType.SCHEDULED] = _scheduled(inputs.scheduling)
    conds[ConditionType.AVAILABLE] = _available(inputs, stable_obs)
    conds[ConditionType.MODEL_READY] = _model_ready(inputs.model, ready_pods)
    conds[ConditionType.PROGRESSING] = _progressing(inputs, stable_obs)
    conds[ConditionType.DEGRADED] = _degraded(inputs, conds)
    conds[ConditionType.READY] = _ready(inputs, conds, stable_obs)
    order = [
        ConditionType.READY,
        ConditionType.AVAILABLE,
        ConditionType.MODEL_READY,
        ConditionType.SCHEDULED,
        ConditionType.PROGRESSING,
        ConditionType.DEGRADED,
    ]
    model_ready = inputs.model.ready if inputs.model else 0
    stable = _with_counts(inputs.stable, inputs)
    canary = _with_counts(inputs.canary, inputs)
    phase = _phase(inputs, conds)
    message = conds[ConditionType.READY].message
    if phase is not Phase.READY:
        worst = next(
            (
                conds[k]
                for k in (ConditionType.DEGRADED, ConditionType.PROGRESSING)
                if conds[k].status is T
            ),
            conds[ConditionType.READY],
        )
        message = f"{worst.reason}: {worst.message}" if worst.message else worst.reason
    return ModelDeploymentStatus(
        observed_generation=inputs.generation,
        phase=phase,
        conditions=_stamp([conds[k] for k in order], previous.conditions, inputs.generation, now),
        replicas=sum(d.replicas for d in inputs.deployments.values()),
        ready_replicas=ready_pods,
        model_ready_replicas=model_ready,
        selector=inputs.selector,
        stable=stable,
        canary=canary if isinstance(canary, CanaryStatus) else None,
        endpoints=inputs.endpoints,
        message=message,
    )


@dataclass(frozen=True)
class Transition:
    type: str  # Normal or Warning
    reason: str
    message: str


def transitions(
    previous: ModelDeploymentStatus, current: ModelDeploymentStatus
) -> list[Transition]:
    """Events worth emitting: only where a condition actually changed.

    Rollout transitions (steps, promotion, rollback) come from the rollout
    decision's own events, so they are not repeated here.
    """
    events: list[Transition] = []
    before = {c.type: c for c in previous.conditions}
    for c in current.conditions:
        old = before.get(c.type)
        if old is not None and old.status is c.status and old.reason == c.reason:
            continue
        kind = _event_kind(c, old)
        if kind:
            events.append(Transition(kind, c.reason, f"{c.type}={c.status}: {c.message}"))
    return events


# Warnings are for what someone may need to act on; alerting on type=Warning
# must not fire on a new object starting up or an autoscaler adding pods.
_WARN_WHEN_FALSE = {ConditionType.SCHEDULED}
_WARN_ON_LOSS = {ConditionType.READY, ConditionType.AVAILABLE, ConditionType.MODEL_READY}
_QUIET_REASONS = {"ScalingUp"}


def _event_kind(c: Condition, old: Condition | None) -> str:
    if c.type == ConditionType.DEGRADED:
        if c.status is T:
            return "Warning"
        return "Normal" if old is not None and old.status is T else ""
    if c.type == ConditionType.PROGRESSING:
        return ""  # rollout progress has its own events from the rollout decision
    if c.status is F:
        if c.type in _WARN_WHEN_FALSE:
            return "Warning"
        lost = old is not None and old.status is T
        if c.type in _WARN_ON_LOSS and lost and c.reason not in _QUIET_REASONS:
            return "Warning"
        return ""
    if c.status is T and old is not None and old.status is not T:
        return "Normal"
    return ""
