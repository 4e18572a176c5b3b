"""The rollout state machine: (spec, status, observations, now) -> decision. Pure.

Nothing here does I/O or reads a clock; all state lives in the ModelDeployment
status, so a restarted operator resumes exactly where it was.

The protocol the shell follows on every tick (one reconcile of one CR):

1. Observe: readiness of the CR's Deployments (by name), the CR's annotations;
   ``measurement=None``. Take ``now`` once (aware) and use it for both calls.
2. ``d = decide(spec, status, obs, now, desired_revision=..., md_name=...)``.
3. If ``d.measure``: an analysis interval is due. Measure the canary
   (``d.canary`` names the revision and Deployment; the provider is
   ``gantry.analysis.providers.AnalysisProviders``), then call ``decide`` again
   with the same status, ``now`` and ``observations`` plus the measurement, and
   use only that second decision. ``decide`` ignores a measurement it did not
   ask for or one of another revision, so passing one is always safe.
4. Apply ``d.plan`` (server-side apply; with gatewayAPI update the HTTPRoute
   weights before deleting a Deployment the plan dropped), write the status
   (``d.stable``, ``d.canary``, ``d.message``), emit ``d.events``, then remove
   the annotations in ``d.consumed`` (after the status write: if the removal
   fails the gate applies once more, which is harmless except for
   ``promote: step``).
5. Requeue after ``d.requeue_after`` seconds when it is not None.
"""

from gantry.rollout.machine import decide
from gantry.rollout.types import (
    ABORT_ANNOTATION,
    GATE_ANNOTATIONS,
    PAUSE_ANNOTATION,
    PROMOTE_ANNOTATION,
    RESUME_ANNOTATION,
    Decision,
    DeploymentReadiness,
    Event,
    InvalidGate,
    Observations,
    Reason,
    invalid_gates,
)

__all__ = [
    "ABORT_ANNOTATION",
    "GATE_ANNOTATIONS",
    "PAUSE_ANNOTATION",
    "PROMOTE_ANNOTATION",
    "RESUME_ANNOTATION",
    "Decision",
    "DeploymentReadiness",
    "Event",
    "InvalidGate",
    "Observations",
    "Reason",
    "decide",
    "invalid_gates",
]
