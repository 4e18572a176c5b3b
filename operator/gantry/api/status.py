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

    type: str
    status: ConditionStatus
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime
    observed_generation: int = Field(ge=0)


class RevisionStatus(ApiModel):
    """One revision's Deployment and how it serves."""

    revision: str = Field(description="Hash of the pod-template inputs of the spec.")
    deployment: str = Field(description="Name of the Deployment running this revision.")
    model_version: str = ""
    image: str = ""
    replicas: int = 0
    ready_replicas: int = 0
    model_ready_replicas: int = 0


class Verdict(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class MetricResult(ApiModel):
    """One metric of one analysis interval: enough to explain the decision."""

    name: str
    query: str = Field(default="", description="The query or scrape that produced value.")
    value: float | None = Field(default=None, description="Measured value; null when no data.")
    threshold: str = Field(default="", description="E.g. '>= 0.99' or '<= 200ms'.")
    verdict: Verdict
    message: str = ""


class AnalysisRun(ApiModel):
    """The verdict of one interval."""

    time: datetime
    verdict: Verdict
    request_count: float | None = None
    metrics: list[MetricResult] = Field(default_factory=list)


class AnalysisStatus(ApiModel):
    successes: int = 0
    failures: int = 0
    inconclusive: int = Field(default=0, description="Consecutive inconclusive intervals.")
    step_successes: int = Field(default=0, description="Successes within the current step.")
    last: AnalysisRun | None = None
    history: list[AnalysisRun] = Field(default_factory=list, max_length=10)


class CanaryPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"


class CanaryStatus(RevisionStatus):
    """A canary in flight (or the last one, when aborted)."""

    phase: CanaryPhase = CanaryPhase.PROGRESSING
    reason: str = Field(
        default="",
        description="Why the phase is what it is: PauseStep, ManualPause, InconclusiveAnalysis "
        "(Paused); AnalysisFailed, ProgressDeadlineExceeded, ManualAbort (Aborted).",
        max_length=128,
    )
    step_index: int = Field(default=0, ge=0)
    steps_hash: str = ""
    weight: int = Field(default=0, ge=0, le=100, description="Desired traffic percent.")
    actual_weight: int = Field(
        default=0, ge=0, le=100, description="Traffic percent the replica ratio gives."
    )
    stable_replicas: int = Field(default=0, description="Stable size frozen at canary start.")
    started_at: datetime | None = None
    step_started_at: datetime | None = None
    pause_started_at: datetime | None = None
    last_analysis_at: datetime | None = None
    analysis: AnalysisStatus = Field(default_factory=AnalysisStatus)
    message: str = ""


class Endpoints(ApiModel):
    http: str = ""
    grpc: str = ""
    metrics: str = ""


class ModelDeploymentStatus(ApiModel):
    """Observed state of a ModelDeployment."""

    observed_generation: int = 0
    phase: Phase = Phase.PROGRESSING
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int = Field(default=0, description="Pods of every revision (the /scale status).")
    ready_replicas: int = 0
    model_ready_replicas: int = 0
    selector: str = Field(default="", description="Label selector of all pods (for /scale).")
    stable: RevisionStatus | None = None
    canary: CanaryStatus | None = None
    endpoints: Endpoints = Field(default_factory=Endpoints)
    message: str = ""
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

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)
