"""autoscaling/v2 ``behavior`` as the HorizontalPodAutoscaler controller applies it (pure).

A transcription of ``normalizeDesiredReplicasWithBehaviors`` in
k8s.io/kubernetes ``pkg/controller/podautoscaler/horizontal.go``:

1. *Stabilization*: the recommendation is held between the lowest recommendation
   of the scale-up window and the highest of the scale-down window (both
   including the new one), starting from the current size.
2. *Rate*: the policies of the direction bound the change relative to the size
   at the start of each policy's period (replicas added and removed within the
   period are undone to find it); ``selectPolicy`` Max takes the policy allowing
   the biggest change, Min the smallest, Disabled none.
3. *Bounds*: min and max replicas.

Missing parts of a ``behavior`` take the API server's defaults (scale up: 4 pods
or 100% per 15 s, no window; scale down: 100% per 15 s, 300 s window), as a
partial behavior written to an HPA would. Gantry's own default when ``behavior``
is omitted is ``gantry.render.hpa.DEFAULT_BEHAVIOR`` (GPU cold starts), the same
for every provider.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gantry.api.status import Recommendation, ScaleEvent


class Select(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


@dataclass(frozen=True)
class Policy:
    type: str  # Pods | Percent
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    """One direction's HPAScalingRules, defaults filled in."""

    window_seconds: int
    select: Select
    policies: tuple[Policy, ...]


_UP_DEFAULT = Rules(0, Select.MAX, (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
_DOWN_DEFAULT = Rules(300, Select.MAX, (Policy("Percent", 100, 15),))


def _rules(raw: Mapping[str, Any] | None, default: Rules) -> Rules:
    if raw is None:
        return default
    window = raw.get("stabilizationWindowSeconds")
    policies = tuple(
        Policy(str(p["type"]), int(p["value"]), int(p["periodSeconds"]))
        for p in raw.get("policies") or ()
    )
    return Rules(
        window_seconds=default.window_seconds if window is None else int(window),
        select=Select(raw.get("selectPolicy") or Select.MAX),
        policies=policies or default.policies,
    )


@dataclass(frozen=True)
class Behavior:
    up: Rules
    down: Rules

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Behavior:
        """Rules from an autoscaling/v2 behavior (already validated by the spec's schema)."""
        return cls(
            up=_rules(raw.get("scaleUp"), _UP_DEFAULT),
            down=_rules(raw.get("scaleDown"), _DOWN_DEFAULT),
        )

    @property
    def history_seconds(self) -> int:
        """How far back recommendations and scale events matter."""
        periods = [p.period_seconds for p in (*self.up.policies, *self.down.policies)]
        return max([self.up.window_seconds, self.down.window_seconds, *periods])


@dataclass(frozen=True)
class Normalized:
    """The size to run and why it differs from the raw recommendation, if it does.

    Attributes:
        replicas: The size after stabilization, rate policies and bounds.
        stabilized: The size after stabilization only.
        limit: Why the rate or bounds cut it (HPA's ScalingLimited reasons:
            ScaleUpLimit, ScaleDownLimit, TooManyReplicas, TooFewReplicas), or "".
        recommendations: The history to keep (this one added; stale ones, and those
            no window can pick, dropped).
    """

    replicas: int
    stabilized: int
    limit: str
    recommendations: tuple[Recommendation, ...]


def _period_start(current: int, events: Sequence[ScaleEvent], seconds: int, now: datetime) -> int:
    """The size ``seconds`` ago: changes made since then undone."""
    cutoff = now - timedelta(seconds=seconds)
    return current - sum(e.change for e in events if e.time > cutoff)


def _limit(
    current: int, events: Sequence[ScaleEvent], rules: Rules, now: datetime, sign: int
) -> int:
    """The furthest size the policies allow from ``current`` (``sign`` +1 up, -1 down).

    Percent rounds away from the current size on the way up (a small percent of a
    few pods must still allow one pod) and toward it on the way down, as the HPA does.
    """
    if rules.select is Select.DISABLED:
        return current
    proposals = []
    for p in rules.policies:
        start = _period_start(current, events, p.period_seconds, now)
        if p.type == "Pods":
            proposals.append(start + sign * p.value)
        elif sign > 0:
            proposals.append(math.ceil(start * (1 + p.value / 100)))
        else:
            proposals.append(int(start * (1 - p.value / 100)))
    # Max picks the biggest change, Min the smallest, in either direction.
    widest = max if (rules.select is Select.MAX) == (sign > 0) else min
    return widest(proposals)


def compact(recommendations: Sequence[Recommendation]) -> tuple[Recommendation, ...]:
    """Only the recommendations a window can still pick, in time order (lossless).

    A window is every recommendation after some cutoff, and stabilization reads only
    its highest and lowest. A recommendation with a later one at least as high can
    never be a window's highest (a window holding it holds the later one too), nor,
    with a later one at least as low, its lowest: dropping those changes no answer.
    What is left is bounded by twice the distinct sizes, not by scrapes, so a 2 s
    scrape under a one-hour window fits the status (``MAX_HISTORY``) without losing
    the window's oldest peak.
    """
    kept: list[Recommendation] = []
    highest = lowest = None
    for r in reversed(sorted(recommendations, key=lambda r: r.time)):
        peak = highest is None or r.replicas > highest
        trough = lowest is None or r.replicas < lowest
        if peak or trough:
            kept.append(r)
        highest = r.replicas if highest is None else max(highest, r.replicas)
        lowest = r.replicas if lowest is None else min(lowest, r.replicas)
    return tuple(reversed(kept))


def normalize(
    behavior: Behavior,
    *,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    recommendations: Sequence[Recommendation],
    events: Sequence[ScaleEvent],
    now: datetime,
) -> Normalized:
    """Stabilize ``desired``, then bound it by the rate policies and the replica bounds."""
    up_cut = now - timedelta(seconds=behavior.up.window_seconds)
    down_cut = now - timedelta(seconds=behavior.down.window_seconds)
    up_rec = min([desired, *(r.replicas for r in recommendations if r.time > up_cut)])
    down_rec = max([desired, *(r.replicas for r in recommendations if r.time > down_cut)])
    stabilized = min(max(current, up_rec), down_rec)
    horizon = now - timedelta(seconds=behavior.history_seconds)
    kept = tuple(r for r in recommendations if r.time > horizon)
    kept = compact((*kept, Recommendation(time=now, replicas=desired)))

    replicas, limit = stabilized, ""
    if stabilized > current:
        ceiling = max(current, _limit(current, events, behavior.up, now, +1))
        allowed, why = (
            (ceiling, "ScaleUpLimit")
            if ceiling < max_replicas
            else (max_replicas, "TooManyReplicas")
        )
        if stabilized > allowed:
            replicas, limit = allowed, why
    elif stabilized < current:
        floor = min(current, _limit(current, events, behavior.down, now, -1))
        allowed, why = (
            (floor, "ScaleDownLimit") if floor > min_replicas else (min_replicas, "TooFewReplicas")
        )
        if stabilized < allowed:
            replicas, limit = allowed, why
    return Normalized(replicas=replicas, stabilized=stabilized, limit=limit, recommendations=kept)
