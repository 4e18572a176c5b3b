"""The builtin scaler's decision: pod readings and history in, a size and a status out (pure).

One call per scrape of the stable's pods. The order is the HPA controller's
(``reconcileAutoscaler`` in ``horizontal.go``): a size outside the bounds is
brought inside them first; otherwise the metric's recommendation
(``replicas.compute``) goes through ``behavior.normalize``. Gantry adds two
rules, both holding the size rather than guessing:

* *GPU cold start*: no scale-up while a pod of the stable is still loading its
  model. The pods the last scale-up added are capacity on its way; asking for
  more before they serve is how an HPA overshoots by a whole model-load time.
* *Missing metrics*: a serving pod that gave no metric (its scrape failed) can
  be the busy one, so no scale-down happens until every serving pod reports;
  a scale-up still can (the missing pod counted as idle, as the HPA does), and
  ScalingActive is False with ``MetricUnavailable`` naming the pods and why.
* *Capacity floor*: a scale-down never goes below the pods the observed work
  needs at ``MAX_BUSY`` each (``capacity_floor``, from each pod's busy fraction).
  Queue time is a saturation signal: near 0 whenever capacity suffices, so the
  HPA's ratio asks for far fewer pods, the queue explodes on the smaller size,
  and the size flaps once per stabilization window. The floor is the size the
  load needs; the metric still decides every scale-up.

The recommendation history and the scale events live in ``status.scaling``, so
a restarted operator honours a stabilization window it was in the middle of.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gantry.api.plan import ServingPlan
from gantry.api.spec import ScalingProvider, ScalingSpec
from gantry.api.status import (
    MAX_HISTORY,
    MAX_LISTED_PODS,
    Recommendation,
    ScaleEvent,
    ScalingStatus,
)
from gantry.render.hpa import DEFAULT_BEHAVIOR, quantity
from gantry.scaling.behavior import Behavior, normalize
from gantry.scaling.readings import PodValue
from gantry.scaling.replicas import compute
from gantry.status.conditions import Autoscaler

UNITS = {"queueTimeMs": "ms", "inflight": " pending", "gpuUtilization": "%"}
# The busiest a pod is planned to be after a scale-down (the rest absorbs bursts).
MAX_BUSY = 0.9


@dataclass(frozen=True)
class PodReading:
    """One pod of the stable as the scaler sees it.

    Attributes:
        name: The pod.
        serving: Its model answers ready (else it is starting or loading).
        value: Its metric, or why there is none (None: not scraped, as a loading pod).
    """

    name: str
    serving: bool
    value: PodValue | None = None


@dataclass(frozen=True)
class BuiltinDecision:
    """What to do: the size, the status to keep and the condition's account."""

    replicas: int
    status: ScalingStatus
    autoscaler: Autoscaler
    rescaled: str = ""  # the Normal event's message when the size changes


def capacity_floor(pods: Sequence[PodReading]) -> tuple[int, float] | None:
    """(fewest pods for the observed work at ``MAX_BUSY`` each, the work), or None.

    The work is the sum of the serving pods' busy fractions (in pods' worth of
    model time); pods that did not report one add nothing, so the floor is a
    lower bound of what is needed.
    """
    busy = [p.value.busy for p in pods if p.serving and p.value and p.value.busy is not None]
    if not busy:
        return None
    work = sum(busy)
    # round(): 2.7 / 0.9 is 3.0000000000000004 in floats, and must read as 3.
    return max(1, math.ceil(round(work / MAX_BUSY, 9))), work


def _fmt(value: float) -> str:
    return quantity(round(value, 3)) if value >= 0.001 or value == 0 else "0"


def _history(previous: ScalingStatus | None) -> ScalingStatus:
    if previous is None or previous.provider != ScalingProvider.BUILTIN.value:
        return ScalingStatus()
    return previous


def decide_builtin(
    scaling: ScalingSpec,
    *,
    current: int,
    pods: Sequence[PodReading],
    previous: ScalingStatus | None,
    now: datetime,
) -> BuiltinDecision:
    """The stable's size for this scrape, with the status that explains it.

    Args:
        scaling: The spec's scaling section (builtin provider, autoscaled).
        current: The stable Deployment's spec.replicas.
        pods: Every non-terminating pod of the stable.
        previous: ``status.scaling`` as last written.
        now: The scrape time (aware).
    """
    metric = scaling.metric.type.value
    unit = UNITS.get(metric, "")
    target = scaling.metric.target
    history = _history(previous)
    behavior = Behavior.parse(scaling.behavior or DEFAULT_BEHAVIOR)
    lo, hi = scaling.min_replicas, scaling.max_replicas

    values = [p.value.value for p in pods if p.serving and p.value and p.value.value is not None]
    missing = [p for p in pods if p.serving and p.value is not None and p.value.problem]
    warming = [p for p in pods if p.serving and p.value is not None and p.value.warming]
    unready = [p for p in pods if not p.serving]
    average = sum(values) / len(values) if values else None

    def finish(
        replicas: int, autoscaler: Autoscaler, recs: Sequence[Recommendation] = ()
    ) -> BuiltinDecision:
        events = [
            e
            for e in history.scale_events
            if (now - e.time).total_seconds() < behavior.history_seconds
        ]
        last = history.last_scale_time
        rescaled = ""
        if replicas != current:
            events.append(ScaleEvent(time=now, change=replicas - current))
            last = now
            rescaled = f"New size: {replicas} (was {current}); {autoscaler.message}"
        status = ScalingStatus(
            provider=ScalingProvider.BUILTIN.value,
            metric=metric,
            current_value=_fmt(average) if average is not None else None,
            target=_fmt(target),
            current_replicas=current,
            desired_replicas=replicas,
            last_scale_time=last,
            reason=autoscaler.reason,
            message=autoscaler.message,
            pods_without_metrics=[p.name for p in missing][:MAX_LISTED_PODS],
            recommendations=list(recs or history.recommendations)[-MAX_HISTORY:],
            scale_events=events[-MAX_HISTORY:],
        )
        return BuiltinDecision(replicas, status, autoscaler, rescaled)

    if current == 0:
        text = "the stable has 0 replicas; the builtin scaler starts from minReplicas >= 1 only"
        return finish(0, Autoscaler(False, "ScalingDisabled", text))
    if current > hi:
        return finish(
            hi,
            Autoscaler(True, "AtMaxReplicas", f"{current} replicas above scaling.maxReplicas={hi}"),
        )
    if current < lo:
        return finish(
            lo,
            Autoscaler(True, "Autoscaling", f"{current} replicas below scaling.minReplicas={lo}"),
        )

    why_missing = "; ".join(f"{p.name}: {p.value.problem}" for p in missing if p.value)
    computed = compute(
        values,
        unready=len(unready) + len(warming),
        missing=len(missing),
        current=current,
        target=target,
    )
    if computed is None:
        if missing:
            text = f"no {metric} from the serving pods, size held at {current}: {why_missing}"
            return finish(current, Autoscaler(False, "MetricUnavailable", text))
        text = (
            f"waiting for {metric} from the pods ({len(warming)} warming, {len(unready)} "
            f"loading); size held at {current}"
        )
        return finish(current, Autoscaler(True, "AwaitingMetrics", text))

    raw = computed.replicas
    held = ""
    if missing:
        # Said whether or not it changed the size: the pods must be named either way.
        raw, held = max(raw, current), f"; no {metric} from {why_missing} (no scale-down)"
    floor = capacity_floor(pods) if raw < current else None
    if floor is not None and floor[0] > max(raw, lo):
        kept = min(current, floor[0])
        held += (
            f"; scale-down to {max(raw, lo)} held at {kept}: the model ran {floor[1]:.2f} pods' "
            f"worth of time, {floor[0]} keep each under {MAX_BUSY:.0%} busy"
        )
        raw = kept
    waiting = raw > current and bool(unready)
    if waiting:
        names = ", ".join(p.name for p in unready[:MAX_LISTED_PODS])
        held += f"; scale-up to {raw} held while {len(unready)} pod(s) load the model ({names})"
        raw = current
    norm = normalize(
        behavior,
        current=current,
        desired=raw,
        min_replicas=lo,
        max_replicas=hi,
        recommendations=history.recommendations,
        events=history.scale_events,
        now=now,
    )
    seen = (
        f"{metric} {computed.average:.4g}{unit} per pod (target {target:g}{unit}) "
        f"over {len(values)} pod(s)"
    )
    text = f"{seen}: {current} -> {norm.replicas} replicas"
    if norm.limit:
        text += f" (limited: {norm.limit}, the metric asks for {norm.stabilized})"
    elif norm.stabilized != raw:
        text += (
            f" (stabilized: recent recommendations ask for {norm.stabilized}, the metric for {raw})"
        )
    text += held
    if missing:
        return finish(
            norm.replicas, Autoscaler(False, "MetricUnavailable", text), norm.recommendations
        )
    if norm.limit == "TooManyReplicas":
        reason = "AtMaxReplicas"
    elif waiting:
        reason = "WaitingForModelLoad"
    else:
        reason = "Autoscaling"
    return finish(norm.replicas, Autoscaler(True, reason, text), norm.recommendations)


_INACTIVE = {"MetricUnavailable", "ScalingDisabled"}


def carried(previous: ScalingStatus | None) -> Autoscaler | None:
    """The account of the last read, for the reconciles between two reads."""
    if previous is None or previous.provider != ScalingProvider.BUILTIN.value:
        return None
    return Autoscaler(previous.reason not in _INACTIVE, previous.reason, previous.message)


def frozen(previous: ScalingStatus | None) -> ScalingStatus | None:
    """status.scaling while a canary holds the stable: the history kept, the reason told."""
    if previous is None:
        return None
    text = "the stable is held at its size until the canary ends"
    return previous.model_copy(update={"reason": "FrozenForCanary", "message": text})


def resize(plan: ServingPlan, deployment: str, replicas: int) -> ServingPlan:
    """``plan`` with ``deployment`` sized to ``replicas`` (written through /scale)."""
    return dataclasses.replace(
        plan,
        deployments=tuple(
            dataclasses.replace(d, replicas=replicas) if d.name == deployment else d
            for d in plan.deployments
        ),
    )
