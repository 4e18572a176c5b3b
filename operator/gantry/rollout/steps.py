"""Canary steps: their hash, how they read, and entering one (pure).

Step indexes run ``0 .. len(steps)``: the extra index ``len(steps)`` is the
*promotion phase*, an implicit weight-100 step after the last one in which the
canary takes over the stable's pods (see ``sizing``) and is then promoted.

The steps hash in status detects a steps edit mid-rollout. Like Argo Rollouts,
an edit restarts the canary from step 0: the old step index means nothing in
a different list. The canary Deployment and its pods stay (the pod template did
not change); its weight, step and analysis counters start over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from gantry.api.spec import CanaryStep, parse_duration
from gantry.api.status import CanaryPhase, CanaryStatus
from gantry.rollout.types import Reason


def steps_hash(steps: Sequence[CanaryStep]) -> str:
    """A 10-character hash of the canonical steps list (defaults filled, nulls dropped)."""
    canonical = [s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in steps]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def describe(step: CanaryStep) -> str:
    """``setWeight 10``, ``pause 60s``, ``pause until promoted``, ``analysis x2``."""
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause until promoted"
    intervals = step.analysis.intervals if step.analysis else 1
    return f"analysis x{intervals}"


def label(index: int, steps: Sequence[CanaryStep]) -> str:
    """``step 2/4 (setWeight 50)``, or ``promotion`` past the last step."""
    if index >= len(steps):
        return "promotion"
    return f"step {index + 1}/{len(steps)} ({describe(steps[index])})"


def current(index: int, steps: Sequence[CanaryStep]) -> CanaryStep | None:
    """The step at ``index``; None in the promotion phase."""
    return steps[index] if index < len(steps) else None


def pause_seconds(step: CanaryStep | None) -> float | None:
    """The duration of a timed pause step; None for any other step."""
    if step is None or step.pause is None or step.pause.duration is None:
        return None
    return parse_duration(step.pause.duration)


def is_indefinite_pause(step: CanaryStep | None) -> bool:
    return step is not None and step.pause is not None and step.pause.duration is None


def waits_for_pods(step: CanaryStep | None) -> bool:
    """setWeight steps and the promotion phase complete once the canary is ready."""
    return step is None or step.set_weight is not None


def enter(
    canary: CanaryStatus, index: int, steps: Sequence[CanaryStep], now: datetime
) -> CanaryStatus:
    """The canary as it is on entering step ``index``.

    Entering applies the step's action: setWeight sets the weight, a pause
    starts its clock (an indefinite one pauses the canary, reason PauseStep),
    an analysis step zeroes its success count, the promotion phase sets 100.
    The weight otherwise carries over from the previous step.
    """
    step = current(index, steps)
    update: dict[str, object] = {
        "step_index": index,
        "step_started_at": now,
        "pause_started_at": None,
        "phase": CanaryPhase.PROGRESSING,
        "reason": "",
        "analysis": canary.analysis.model_copy(update={"step_successes": 0}),
    }
    if step is None:
        update["weight"] = 100
    elif step.set_weight is not None:
        update["weight"] = step.set_weight
    elif step.pause is not None:
        update["pause_started_at"] = now
        if step.pause.duration is None:
            update["phase"] = CanaryPhase.PAUSED
            update["reason"] = Reason.PAUSE_STEP.value
    return canary.model_copy(update=update)
