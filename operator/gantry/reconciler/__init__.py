"""One level-based reconcile of a ModelDeployment: observe, decide, apply, report.

No kopf here: the handlers call :meth:`Reconciler.reconcile` and turn its
:class:`Outcome` into a status patch, events and annotation removals.

* :mod:`.core` orders the steps: reads (the caches), probes and scrapes, the
  pure decisions, writes, the report. It holds no decision of its own.
* :mod:`.facts` is the pure part: what the observations mean, the status and
  the Event to write, the applied-manifest hash, refused gates.
* :mod:`.probes`: model-health answers per pod and per Deployment.
"""

from gantry.reconciler.core import (
    SCALE_MANAGER,
    OwnerGoneError,
    Reconciler,
    Settings,
    owner_gone,
    write_outcome,
)
from gantry.reconciler.facts import (
    APPLIED_ANNOTATION,
    Outcome,
    describe_validation_error,
    stamp_applied,
)

__all__ = [
    "APPLIED_ANNOTATION",
    "SCALE_MANAGER",
    "Outcome",
    "OwnerGoneError",
    "Reconciler",
    "Settings",
    "describe_validation_error",
    "owner_gone",
    "stamp_applied",
    "write_outcome",
]
