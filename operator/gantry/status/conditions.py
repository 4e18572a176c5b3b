"""Condition logic: observations and rollout state in, one truthful status out (pure).

The contract (the README's "Status contract" says it for users):

* ``Ready`` is True only when the current generation is fully rolled out and its
  model serves: no canary in flight, the stable at the spec's revision, every
  desired replica ready, the model ready on them, nothing Degraded.
* ``Reconciling`` is True while Gantry moves toward the spec (its reason is why
  it is not Ready yet); ``Stalled`` is True when it cannot get there without a
  person. These are what kstatus (Flux, kpt, cli-utils) and ``kubectl wait`` read.
* ``Available`` says whether the service serves at all, also during a canary.

Every condition carries the generation it was computed for; lastTransitionTime
moves only when the status of a condition flips, so ``kubectl wait`` and Argo CD
see real transitions.
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
    """What the rollout logic says about progress (from its decision).

    Attributes:
        progressing: A canary is in flight (stepping, analysing or paused).
        paused: That canary waits (a pause step, the pause gate, inconclusive data).
        degraded_reason: The last canary was rolled back (AnalysisFailed, ...).
    """

    progressing: bool = False
    message: str = ""
    paused: bool = False
    degraded_reason: str = ""
    degraded_message: str = ""


@dataclass(frozen=True)
class Autoscaler:
    """What the autoscaler said about itself this pass (see ``gantry.scaling``).

    Attributes:
        active: It sizes the stable from its metric (ScalingActive=True).
        reason: Autoscaling, AtMaxReplicas, AwaitingMetrics, WaitingForModelLoad
            (True); MetricUnavailable, ScalingDisabled, AutoscalerNotReady (False).
        message: Why, naming pods, values and bounds.
    """

    active: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Sizing:
    """How the spec sizes the stable (from spec.replicas and spec.scaling)."""

    autoscaled: bool = False
    min_replicas: int = 1
    max_replicas: int = 1
    replicas: int | None = None  # spec.replicas, what `kubectl scale md` sets
    provider: str = "hpa"  # who autoscales: builtin, hpa or keda
    # The autoscaler's own account; None when it has not reported (yet).
    autoscaler: Autoscaler | None = None


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
    # How long serving may stay Degraded (no GPU, a model that will not load) before
    # the status calls it Stalled: the spec's rollout.progressDeadlineSeconds.
    progress_deadline_seconds: float = 600.0
    # Pods whose model answers ready, by Deployment (absent: none probed).
    model_ready: Mapping[str, int] = field(default_factory=dict)
    sizing: Sizing = field(default_factory=Sizing)


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
    model_ready = inputs.model_ready.get(rev.deployment, 0)
    if obs is None:
        return rev.model_copy(
            update={"replicas": 0, "ready_replicas": 0, "model_ready_replicas": model_ready}
        )
    return rev.model_copy(
        update={
            "replicas": obs.replicas,
            "ready_replicas": obs.ready,
            "model_ready_replicas": model_ready,
        }
    )


def _servers(inputs: StatusInputs, revisions: Sequence[RevisionStatus | None]) -> str:
    """``ready/desired`` model servers over the revisions that serve (the READY column)."""
    names = {r.deployment for r in revisions if r is not None}
    desired = sum(d.desired for n, d in inputs.deployments.items() if n in names)
    ready = sum(inputs.model_ready.get(n, 0) for n in names)
    return f"{ready}/{desired}"


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
    reason = model.reason or "ModelUnavailable"
    if model.ready > 0 and reason in _STARTING_REASONS:
        # Some pods serve and the rest are not answering yet: a scale-up or surge pod
        # whose server or model is still starting, normal life rather than a fault.
        reason = "PodsStarting"
    return _Cond(
        ConditionType.MODEL_READY,
        F,
        reason,
        f"model ready on {model.ready}/{model.probed} pod(s): {model.message}".rstrip(": "),
    )


# Probe reasons a starting pod gives before its model serves (a load failure is not one).
_STARTING_REASONS = frozenset(
    {"ServerUnreachable", "ServerNotReady", "ModelLoading", "ModelUnavailable"}
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
    # The stable serves, but the spec's generation is not done: a canary in flight,
    # a revision rolling, a scale-up. kubectl wait and GitOps must keep waiting.
    if inputs.rollout.paused:
        return _Cond(ConditionType.READY, F, "CanaryPaused", inputs.rollout.message)
    if inputs.rollout.progressing:
        return _Cond(ConditionType.READY, F, "RolloutInProgress", inputs.rollout.message)
    progressing = conds[ConditionType.PROGRESSING]
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
    if progressing.status is T:
        return _Cond(ConditionType.READY, F, progressing.reason, progressing.message)
    return _Cond(ConditionType.READY, T, "Ready", "serving at the desired capacity")


# Degraded reasons that no waiting fixes: a person must change the spec or the cluster.
_STALLED_AT_ONCE = frozenset(
    {
        "InvalidSpec",
        "ChildRejected",
        "ChildConflict",
        "ChildKindNotInstalled",
        "ProgressDeadlineExceeded",
        # A rolled-back canary: the stable serves, the spec's revision never will
        # until the spec changes (or the resume gate retries it).
        "AnalysisFailed",
        "ManualAbort",
        "RolledBack",
    }
)


def _stalled(
    inputs: StatusInputs,
    conds: Mapping[ConditionType, _Cond],
    previous: ModelDeploymentStatus,
    now: datetime,
) -> _Cond:
    degraded = conds[ConditionType.DEGRADED]
    if degraded.status is not T:
        return _Cond(ConditionType.STALLED, F, "AsExpected", "")
    if degraded.reason in _STALLED_AT_ONCE:
        return _Cond(ConditionType.STALLED, T, degraded.reason, degraded.message)
    # Anything else (no GPU, a model that will not load, pods that cannot start) may
    # clear by itself: it is Stalled once it has lasted the progress deadline for this
    # generation (a spec edit restarts the clock: it may be the fix).
    since = _degraded_since(previous, inputs.generation)
    deadline = inputs.progress_deadline_seconds
    if since is not None and (now - since).total_seconds() >= deadline:
        text = f"degraded for more than {deadline:.0f}s: {degraded.message}".rstrip(": ")
        return _Cond(ConditionType.STALLED, T, degraded.reason, text)
    return _Cond(ConditionType.STALLED, F, "AsExpected", "")


def _degraded_since(previous: ModelDeploymentStatus, generation: int) -> datetime | None:
    before = previous.condition(ConditionType.DEGRADED)
    if before is None or before.status is not T or before.observed_generation != generation:
        return None
    return before.last_transition_time


def _reconciling(conds: Mapping[ConditionType, _Cond]) -> _Cond:
    stalled, ready = conds[ConditionType.STALLED], conds[ConditionType.READY]
    if stalled.status is T:
        return _Cond(ConditionType.RECONCILING, F, "Stalled", f"{stalled.reason}: see Stalled")
    if ready.status is T:
        return _Cond(ConditionType.RECONCILING, F, "Reconciled", "the spec is fully rolled out")
    return _Cond(ConditionType.RECONCILING, T, ready.reason, ready.message)


_SCALERS = {
    "builtin": "Gantry's builtin scaler",
    "hpa": "the HorizontalPodAutoscaler",
    "keda": "KEDA's ScaledObject",
}


def _scaling_active(inputs: StatusInputs) -> _Cond:
    """Who sizes the stable, and whether the autoscaler works from its metric.

    True: the autoscaler sizes the stable from its metric (reason Autoscaling, or
    what limits it: AtMaxReplicas, WaitingForModelLoad, AwaitingMetrics,
    ReplicasIgnored). False: nothing sizes it from a metric right now:
    FixedReplicas, FrozenForCanary, or the autoscaler's failure (MetricUnavailable,
    ScalingDisabled, AutoscalerNotReady), the size then held.
    """
    z = inputs.sizing
    kind = ConditionType.SCALING_ACTIVE
    if not z.autoscaled:
        size = z.replicas if z.replicas is not None else z.min_replicas
        source = "spec.replicas" if z.replicas is not None else "scaling.minReplicas"
        return _Cond(kind, F, "FixedReplicas", f"{size} replica(s) from {source}")
    if inputs.rollout.progressing:
        # The autoscaler is removed while a canary runs: it would react to the load
        # the canary takes and fight the weight the rollout sets.
        text = "the stable is held at its size until the canary ends"
        return _Cond(kind, F, "FrozenForCanary", text)
    scaler = _SCALERS.get(z.provider, z.provider)
    bounds = f"between scaling.minReplicas={z.min_replicas} and maxReplicas={z.max_replicas}"
    if z.autoscaler is not None and not z.autoscaler.active:
        return _Cond(kind, F, z.autoscaler.reason, z.autoscaler.message)
    if z.replicas is not None:
        text = (
            f"spec.replicas={z.replicas} (what kubectl scale sets) is ignored: {scaler} "
            f"sizes this ModelDeployment {bounds}; change those bounds instead (equal bounds "
            "fix the size)"
        )
        return _Cond(kind, T, "ReplicasIgnored", text)
    if z.autoscaler is not None:
        return _Cond(kind, T, z.autoscaler.reason, z.autoscaler.message)
    return _Cond(kind, T, "Autoscaling", f"{scaler} sizes the stable {bounds}")


def _phase(inputs: StatusInputs, conds: Mapping[ConditionType, _Cond]) -> Phase:
    if inputs.failure or conds[ConditionType.STALLED].status is T:
        return Phase.FAILED
    if conds[ConditionType.DEGRADED].status is T:
        return Phase.DEGRADED
    if conds[ConditionType.READY].status is T:
        return Phase.READY
    if inputs.rollout.paused:
        return Phase.PAUSED
    return Phase.PROGRESSING


def _stamp(
    new: Sequence[_Cond], previous: Sequence[Condition], generation: int, now: datetime
) -> list[Condition]:
    before = {c.type: c for c in previous}
    stamped = []
    for c in new:
        old = before.get(c.type)
        moved = old is None or old.status is not c.status
        # Degraded's transition time is the Stalled clock: a new generation (perhaps
        # the fix) restarts it rather than inheriting a stall from the old spec.
        if c.type is ConditionType.DEGRADED and old is not None:
            moved = moved or old.observed_generation != generation
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
    conds[ConditionType.STALLED] = _stalled(inputs, conds, previous, now)
    conds[ConditionType.RECONCILING] = _reconciling(conds)
    conds[ConditionType.SCALING_ACTIVE] = _scaling_active(inputs)
    order = [
        ConditionType.READY,
        ConditionType.RECONCILING,
        ConditionType.STALLED,
        ConditionType.AVAILABLE,
        ConditionType.MODEL_READY,
        ConditionType.SCHEDULED,
        ConditionType.PROGRESSING,
        ConditionType.DEGRADED,
        ConditionType.SCALING_ACTIVE,
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
                for k in (ConditionType.STALLED, ConditionType.DEGRADED, ConditionType.PROGRESSING)
                if conds[k].status is T
            ),
            conds[ConditionType.READY],
        )
        message = f"{worst.reason}: {worst.message}" if worst.message else worst.reason
    in_flight = isinstance(canary, CanaryStatus) and inputs.rollout.progressing
    flying = canary if isinstance(canary, CanaryStatus) and in_flight else None
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
        servers=_servers(inputs, [stable, flying]),
        canary_version=flying.model_version if flying is not None else None,
        canary_weight=flying.weight if flying is not None else None,
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
    changed = [
        (c, old)
        for c in current.conditions
        if (old := before.get(c.type)) is None
        or old.status is not c.status
        or old.reason != c.reason
    ]
    # One cause, one Warning: Stalled speaks only when Degraded has nothing new to say
    # (a degradation that has now lasted past the deadline).
    degraded_spoke = any(c.type == ConditionType.DEGRADED for c, _ in changed)
    for c, old in changed:
        if c.type == ConditionType.STALLED and degraded_spoke:
            continue
        kind = _event_kind(c, old)
        if kind:
            events.append(Transition(kind, c.reason, f"{c.type}={c.status}: {c.message}"))
    return events


# Warnings are for what someone may need to act on; alerting on type=Warning
# must not fire on a new object starting up, a rollout or an autoscaler adding pods.
_WARN_WHEN_FALSE = {ConditionType.SCHEDULED}
_WARN_ON_LOSS = {ConditionType.READY, ConditionType.AVAILABLE, ConditionType.MODEL_READY}
# Ready goes False for these on every edit, canary and scale-up: normal life.
_QUIET_REASONS = {
    "ScalingUp",
    "PodsStarting",
    "RolloutInProgress",
    "CanaryPaused",
    "ReplicasUpdating",
    "RevisionUpdating",
    "DeploymentCreating",
}
_SCALING_WARNINGS = {"ReplicasIgnored", "MetricUnavailable", "AutoscalerNotReady"}
# Said by Stalled (Warning) or Degraded already; Reconciling only mirrors Ready.
_SILENT = {ConditionType.PROGRESSING, ConditionType.RECONCILING}


def _event_kind(c: Condition, old: Condition | None) -> str:
    if c.type == ConditionType.SCALING_ACTIVE:
        # Only what a person may act on: a size request that was ignored, an autoscaler
        # that cannot see its metric. Who sizes is in the status; rescales have their own
        # Normal events.
        return "Warning" if c.reason in _SCALING_WARNINGS else ""
    if c.type in (ConditionType.DEGRADED, ConditionType.STALLED):
        if c.status is T:
            return "Warning"
        return "Normal" if old is not None and old.status is T else ""
    if c.type in _SILENT:
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
