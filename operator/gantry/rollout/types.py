"""What the rollout state machine reads and what it answers (pure data).

Manual gates are one-shot annotations on the ModelDeployment; the shell removes
each one the decision lists in ``Decision.consumed`` (after the status write):

* ``serving.gantry.dev/abort``: roll the canary back now (reason ManualAbort).
* ``serving.gantry.dev/promote``: skip the remaining steps and promote (through the
  weight-100 handover, so capacity never drops); the value ``step`` instead
  completes only the current step. Either value works on a paused canary, and in
  the promotion phase (paused there or not) promotes once the canary has every pod.
* ``serving.gantry.dev/pause``: hold the canary at its current step (analysis
  keeps running, so a failing canary still rolls back).
* ``serving.gantry.dev/resume``: continue a paused canary; at an indefinite pause
  step it completes that step; on an aborted canary it retries the same
  revision from step 0.

When several are set at once: abort > promote > resume > pause, and all of them
are consumed. Gates that do not apply (no canary in flight, pause while paused)
are consumed and ignored, so they never fire later by surprise. The values
``false``, ``0``, ``no`` and ``off`` mean "not set"; ``true`` (or ``yes``, ``on``,
``1``) sets a gate, and ``promote`` also takes ``step``. Any other value is a
typo whose intent cannot be guessed (``promote=banana`` must not promote):
:func:`invalid_gates` names it, and the shell removes it with a Warning and acts
on nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, NamedTuple

from gantry.analysis.measurement import Measurement
from gantry.api.plan import ServingPlan
from gantry.api.spec import GROUP
from gantry.api.status import CanaryPhase, CanaryStatus, RevisionStatus

PROMOTE_ANNOTATION = f"{GROUP}/promote"
ABORT_ANNOTATION = f"{GROUP}/abort"
PAUSE_ANNOTATION = f"{GROUP}/pause"
RESUME_ANNOTATION = f"{GROUP}/resume"
GATE_ANNOTATIONS = (ABORT_ANNOTATION, PROMOTE_ANNOTATION, RESUME_ANNOTATION, PAUSE_ANNOTATION)
_UNSET_VALUES = frozenset({"false", "0", "no", "off"})
_SET_VALUES = frozenset({"true", "1", "yes", "on"})
# The values each gate accepts, as the Warning for a wrong one lists them.
GATE_VALUES: Mapping[str, tuple[str, ...]] = {
    ABORT_ANNOTATION: ("true",),
    PROMOTE_ANNOTATION: ("true", "step"),
    RESUME_ANNOTATION: ("true",),
    PAUSE_ANNOTATION: ("true",),
}


class Reason(StrEnum):
    """``CanaryStatus.reason`` values (also event reasons)."""

    PAUSE_STEP = "PauseStep"
    MANUAL_PAUSE = "ManualPause"
    INCONCLUSIVE = "InconclusiveAnalysis"
    ANALYSIS_FAILED = "AnalysisFailed"
    PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
    MANUAL_ABORT = "ManualAbort"
    PROMOTED = "Promoted"


class PromoteMode(StrEnum):
    FULL = "full"
    STEP = "step"


@dataclass(frozen=True)
class Gates:
    """The manual gates set on the ModelDeployment."""

    abort: bool = False
    promote: PromoteMode | None = None
    resume: bool = False
    pause: bool = False
    present: tuple[str, ...] = ()


def _known_value(key: str, value: str) -> bool:
    word = value.strip().lower()
    return word in _UNSET_VALUES or word in _SET_VALUES or word in GATE_VALUES[key]


class InvalidGate(NamedTuple):
    """A gate annotation whose value Gantry does not know."""

    key: str
    value: str

    @property
    def message(self) -> str:
        accepted = " or ".join(GATE_VALUES[self.key])
        return (
            f"annotation {self.key}={self.value!r} is not understood (use {accepted}; "
            f"false means not set): removed without acting on it"
        )


def invalid_gates(annotations: Mapping[str, str]) -> tuple[InvalidGate, ...]:
    """Gate annotations set to a value that is neither a set nor an unset word."""
    return tuple(
        InvalidGate(k, annotations[k])
        for k in GATE_ANNOTATIONS
        if k in annotations and not _known_value(k, annotations[k])
    )


def read_gates(annotations: Mapping[str, str]) -> Gates:
    """Parse the gate annotations out of all of a ModelDeployment's annotations.

    A gate with an unknown value is neither set nor present: it is never acted on
    (see :func:`invalid_gates` for how it is reported and removed).
    """
    present = tuple(
        k for k in GATE_ANNOTATIONS if k in annotations and _known_value(k, annotations[k])
    )

    def is_set(key: str) -> bool:
        return key in present and annotations[key].strip().lower() not in _UNSET_VALUES

    promote = None
    if is_set(PROMOTE_ANNOTATION):
        step = annotations[PROMOTE_ANNOTATION].strip().lower() == PromoteMode.STEP
        promote = PromoteMode.STEP if step else PromoteMode.FULL
    return Gates(
        abort=is_set(ABORT_ANNOTATION),
        promote=promote,
        resume=is_set(RESUME_ANNOTATION),
        pause=is_set(PAUSE_ANNOTATION),
        present=present,
    )


@dataclass(frozen=True)
class DeploymentReadiness:
    """What one Deployment reports, as far as the rollout cares.

    Attributes:
        replicas: ``spec.replicas`` now (the autoscaler's choice when one owns it).
        ready: ``status.readyReplicas``.
        available: ``status.availableReplicas`` (ready for ``minReadySeconds``).
        model_ready: Pods whose model answers ``/v2/models/{m}/ready``; None when
            not probed (then availability alone counts).
    """

    replicas: int = 0
    ready: int = 0
    available: int = 0
    model_ready: int | None = None

    @property
    def serving(self) -> int:
        """Pods that can take traffic: available and, when probed, model-ready."""
        if self.model_ready is None:
            return self.available
        return min(self.available, self.model_ready)


@dataclass(frozen=True)
class Observations:
    """What the shell saw this tick.

    Attributes:
        deployments: Readiness by Deployment name (missing: the Deployment does not exist).
        annotations: The ModelDeployment's annotations (gates are read from them).
        measurement: The canary's analysis measurement, when the previous decision
            asked for one (``Decision.measure``) in this same tick.
    """

    deployments: Mapping[str, DeploymentReadiness] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    measurement: Measurement | None = None


class Event(NamedTuple):
    """A Kubernetes Event to emit on the ModelDeployment."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """What to do now.

    Attributes:
        plan: The Deployments (and autoscaler target, route weight) to apply.
        stable: The stable revision for ``status.stable``.
        canary: The canary for ``status.canary`` (in flight, Aborted or Promoted).
        events: Events for the transitions this decision makes (none when nothing changed).
        requeue_after: Seconds until something time-based is due (pause end, next
            analysis interval, readiness poll); None when nothing is.
        measure: An analysis interval is due: measure the canary and call ``decide``
            again in this tick with the measurement in ``Observations``.
        consumed: Gate annotations to remove from the ModelDeployment.
        message: What is going on, for humans.
    """

    plan: ServingPlan
    stable: RevisionStatus | None
    canary: CanaryStatus | None
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    measure: bool = False
    consumed: tuple[str, ...] = ()
    message: str = ""

    @property
    def progressing(self) -> bool:
        """A canary is in flight (Progressing or Paused)."""
        return self.canary is not None and self.canary.phase in (
            CanaryPhase.PROGRESSING,
            CanaryPhase.PAUSED,
        )
