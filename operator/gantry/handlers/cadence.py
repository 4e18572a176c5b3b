"""When to look at one ModelDeployment again, events aside.

Changes of the object and of its children reach the work queue as watch
events. What no event announces is time and the model inside a pod: a pause
ending, the next analysis interval, a progress deadline, a model that finishes
loading in a pod Kubernetes already calls Ready. So:

* the rollout's own ``requeue_after`` (pause end, analysis due) always counts;
* an object still settling (not Ready, or fewer model-ready pods than pods) is
  looked at again every ``poll`` seconds: that is how a loading model and a
  progress deadline are noticed. Once ``patience`` looks in a row changed
  nothing, the wait doubles up to ``poll_max``: an object stuck in a state only
  a person can fix (a model that cannot load) must not cost the operator a
  reconcile every few seconds for ever, and any event still queues it at once;
* a settled object is re-probed every ``probe`` seconds, so a model that dies
  in a pod that stays Running still turns the status False;
* a transient failure waits for the queue's backoff instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SETTLED_PHASES = frozenset({"Ready", "Paused", "Failed"})


@dataclass(frozen=True)
class Cadence:
    poll: float = 5.0
    probe: float = 60.0
    poll_max: float = 30.0
    patience: int = 4  # unchanged looks at the ``poll`` pace before slowing down


def settled(status: Mapping[str, Any] | None) -> bool:
    """Whether nothing is expected to change without an event or a rollout timer."""
    if not status:
        return False
    if status.get("phase") not in SETTLED_PHASES:
        return False
    replicas = int(status.get("replicas") or 0)
    return int(status.get("modelReadyReplicas") or 0) >= replicas


def next_look(
    requeue_after: float | None,
    status: Mapping[str, Any] | None,
    cadence: Cadence,
    quiet: int = 0,
) -> float:
    """Seconds until the next reconcile of an object whose status is ``status``.

    ``quiet``: how many reconciles in a row, this one included, changed nothing.
    """
    if settled(status):
        base = cadence.probe
    else:
        slower = max(0, quiet - cadence.patience)
        base = min(max(cadence.poll, cadence.poll_max), cadence.poll * 2 ** min(slower, 16))
    if requeue_after is None:
        return base
    return max(0.0, min(base, requeue_after))
