"""The ModelDeployment status: what the operator observed and decided.

Written whole from one typed model through the status subresource. Everything a
restarted operator needs to resume a rollout lives here (never only in memory).
"""

from __future__ import annotations

# A runtime import, not a TYPE_CHECKING one: pydantic resolves the annotations when the
# models are first used, and a hidden datetime leaves them "not fully defined".
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gantry.api.spec import ApiModel


class Phase(StrEnum):
    """One word for ``kubectl get``; each has one meaning (see the README's status contract)."""

    PROGRESSING = "Progressing"  # moving toward the spec (creating, rolling, scaling)
    READY = "Ready"  # the spec's generation is fully rolled out and its model serves
    PAUSED = "Paused"  # a canary waits for time, analysis data or a person
    DEGRADED = "Degraded"  # serving is impaired; Gantry is still trying
    FAILED = "Failed"  # Stalled: it cannot reach the spec without a person


class ConditionType(StrEnum):
    READY = "Ready"
    AVAILABLE = "Available"
    MODEL_READY = "ModelReady"
    SCHEDULED = "Scheduled"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    # kstatus' (Flux, kpt, cli-utils) abnormal-true conditions: present only while True
    # would also do, but an explicit False tells a reader the operator looked.
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # Who sizes the stable: the spec (False) or the autoscaler (True), and why a
    # `kubectl scale` did nothing.
    SCALING_ACTIVE = "ScalingActive"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A metav1.Condition."""

    type: str = Field(
        description="Ready, Reconciling, Stalled, Available, ModelReady, Scheduled, "
        "Progressing, Degraded or ScalingActive (the README's status contract)."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
        description="Why, in one CamelCase word (e.g. InsufficientGPU, RolloutInProgress).",
    )
    message: str = Field(default="", max_length=32768, description="Why, for humans.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int = Field(ge=0, description="The generation this was computed for.")


class RevisionStatus(ApiModel):
    """One revision's Deployment and how it serves."""

    revision: str = Field(description="Hash of the pod-template inputs of the spec.")
    deployment: str = Field(description="Name of the Deployment running this revision.")
    model_version: str = Field(default="", description="Model version this revision serves.")
    image: str = Field(default="", description="Serving image of this revision.")
    replicas: int = Field(default=0, description="Pods of the Deployment.")
    ready_replicas: int = Field(default=0, description="Pods whose containers are ready.")
    model_ready_replicas: int = Field(
        default=0, description="Pods whose model answers ready on its KServe v2 endpoint."
    )


class Verdict(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class MetricResult(ApiModel):
    """One metric of one analysis interval: enough to explain the decision."""

    name: str = Field(description="The check: success-rate, latency-mean, a custom name...")
    query: str = Field(default="", description="The query or scrape that produced value.")
    value: float | None = Field(default=None, description="Measured value; null when no data.")
    threshold: str = Field(default="", description="E.g. '>= 0.99' or '<= 200ms'.")
    verdict: Verdict = Field(description="Successful, Failed, Inconclusive or Error.")
    message: str = Field(default="", description="Why, for humans.")


class AnalysisRun(ApiModel):
    """The verdict of one interval."""

    time: datetime = Field(description="When the interval ended.")
    verdict: Verdict = Field(description="Successful, Failed, Inconclusive or Error.")
    request_count: float | None = Field(
        default=None, description="Requests the canary served in the interval."
    )
    metrics: list[MetricResult] = Field(default_factory=list, description="Each check's result.")


class AnalysisStatus(ApiModel):
    successes: int = Field(default=0, description="Successful intervals of this canary.")
    failures: int = Field(default=0, description="Failed intervals (failureLimit rolls back).")
    inconclusive: int = Field(default=0, description="Consecutive inconclusive intervals.")
    step_successes: int = Field(default=0, description="Successes within the current step.")
    last: AnalysisRun | None = Field(default=None, description="The latest interval.")
    history: list[AnalysisRun] = Field(
        default_factory=list, max_length=10, description="The latest intervals, oldest first."
    )


class CanaryPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"


class CanaryStatus(RevisionStatus):
    """A canary in flight (or the last one, when aborted)."""

    phase: CanaryPhase = Field(
        default=CanaryPhase.PROGRESSING, description="Progressing, Paused, Promoted or Aborted."
    )
    reason: str = Field(
        default="",
        description="Why the phase is what it is: PauseStep, ManualPause, InconclusiveAnalysis "
        "(Paused); AnalysisFailed, ProgressDeadlineExceeded, ManualAbort (Aborted).",
        max_length=128,
    )
    step_index: int = Field(
        default=0, ge=0, description="Index of the current step (len(steps): promoting)."
    )
    steps_hash: str = Field(
        default="", description="Hash of the steps; a change restarts the canary at step 0."
    )
    weight: int = Field(default=0, ge=0, le=100, description="Desired traffic percent.")
    actual_weight: int = Field(
        default=0, ge=0, le=100, description="Traffic percent the replica ratio gives."
    )
    stable_replicas: int = Field(default=0, description="Stable size frozen at canary start.")
    started_at: datetime | None = Field(default=None, description="When the canary started.")
    step_started_at: datetime | None = Field(
        default=None, description="When the current step started."
    )
    pause_started_at: datetime | None = Field(
        default=None, description="When the current pause started."
    )
    last_analysis_at: datetime | None = Field(
        default=None, description="When the last analysis interval ended."
    )
    analysis: AnalysisStatus = Field(
        default_factory=AnalysisStatus, description="The canary's analysis so far."
    )
    message: str = Field(default="", description="What the canary is doing, for humans.")


class Recommendation(ApiModel):
    """One size the builtin scaler computed (the HPA's recommendation history)."""

    time: datetime = Field(description="When it was computed.")
    replicas: int = Field(ge=0, description="The size the metric asked for, before limits.")


class ScaleEvent(ApiModel):
    """One size change the builtin scaler made (for behavior policies' periods)."""

    time: datetime = Field(description="When /scale was written.")
    change: int = Field(description="Replicas added (positive) or removed (negative).")


class AutoscalerCondition(ApiModel):
    """One condition of the HorizontalPodAutoscaler, copied (provider hpa or keda)."""

    type: str = Field(max_length=64, description="AbleToScale, ScalingActive, ScalingLimited.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", max_length=256, description="The HPA's reason.")
    message: str = Field(default="", max_length=2048, description="The HPA's message.")


MAX_LISTED_PODS = 10
MAX_HISTORY = 120


class ScalingStatus(ApiModel):
    """What the autoscaler saw and did, whichever provider (``kubectl describe md``)."""

    provider: str = Field(default="", description="builtin, hpa or keda.")
    metric: str = Field(default="", description="The scaling.metric.type tracked.")
    current_value: str | None = Field(
        default=None,
        max_length=64,
        description="The metric's per-pod average, as the HPA prints it (a quantity); null "
        "when no pod gave data.",
    )
    target: str = Field(default="", max_length=64, description="The per-pod target.")
    current_replicas: int = Field(default=0, ge=0, description="Replicas of the stable now.")
    desired_replicas: int = Field(
        default=0, ge=0, description="Replicas the autoscaler wants (after every limit)."
    )
    last_scale_time: datetime | None = Field(
        default=None, description="When the autoscaler last changed the size."
    )
    reason: str = Field(default="", max_length=128, description="Why, in one word.")
    message: str = Field(default="", max_length=4096, description="Why, for humans.")
    pods_without_metrics: list[str] = Field(
        default_factory=list,
        max_length=MAX_LISTED_PODS,
        description="Serving pods that gave no metric (the first few, by name).",
    )
    conditions: list[AutoscalerCondition] = Field(
        default_factory=list,
        max_length=8,
        description="The HorizontalPodAutoscaler's own conditions (providers hpa and keda).",
    )
    recommendations: list[Recommendation] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="builtin: sizes computed within the longest stabilization window, kept "
        "here so a restarted operator honours the window.",
    )
    scale_events: list[ScaleEvent] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="builtin: size changes within the longest behavior policy period.",
    )


class GpuStatus(ApiModel):
    """GPUs allocated to running pods now (what the cluster is paying for)."""

    allocated: int = Field(
        default=0, ge=0, description="Whole GPUs or MIG slices held by running pods."
    )
    resource: str = Field(
        default="", max_length=128, description="nvidia.com/gpu or the MIG resource name."
    )


class Endpoints(ApiModel):
    http: str = Field(default="", description="KServe v2 HTTP URL of the Service.")
    grpc: str = Field(default="", description="KServe v2 gRPC address of the Service.")
    metrics: str = Field(default="", description="Prometheus metrics URL of the Service.")


class ModelDeploymentStatus(ApiModel):
    """Observed state of a ModelDeployment."""

    observed_generation: int = Field(
        default=0, description="The generation of the spec this status describes."
    )
    phase: Phase = Field(
        default=Phase.PROGRESSING,
        description="Progressing (moving toward the spec), Ready (Ready=True), Paused (a "
        "canary waits), Degraded (serving impaired, still trying) or Failed (Stalled=True).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled (what kubectl wait, kstatus and Argo CD read), "
        "Available, ModelReady, Scheduled, Progressing, Degraded, ScalingActive.",
    )
    replicas: int = Field(default=0, description="Pods of every revision (the /scale status).")
    ready_replicas: int = Field(
        default=0, description="Pods of every revision whose containers are ready."
    )
    model_ready_replicas: int = Field(
        default=0, description="Stable pods whose model answers ready."
    )
    selector: str = Field(default="", description="Label selector of all pods (for /scale).")
    stable: RevisionStatus | None = Field(
        default=None, description="The revision that serves (after a promotion, the canary's)."
    )
    canary: CanaryStatus | None = Field(
        default=None, description="The canary in flight, or the last one (Promoted, Aborted)."
    )
    endpoints: Endpoints = Field(
        default_factory=Endpoints, description="Where clients reach the model."
    )
    message: str = Field(default="", description="What is going on, for humans.")
    # What `kubectl get md` shows: what serves, not what was asked for.
    servers: str = Field(
        default="",
        description="Ready model servers / desired pods over every revision (the READY "
        "column): a pod counts once its model answers ready, not when its container starts.",
    )
    canary_version: str | None = Field(
        default=None,
        description="Model version of the canary while one is in flight (the CANARY column); "
        "absent otherwise.",
    )
    canary_weight: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Desired traffic percent of the canary while one is in flight (the WEIGHT "
        "column); absent otherwise.",
    )
    scaling: ScalingStatus | None = Field(
        default=None, description="The autoscaler's view: metric, target, sizes and why."
    )
    gpus: GpuStatus | None = Field(
        default=None, description="GPUs (or MIG slices) allocated to running pods now."
    )

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)
