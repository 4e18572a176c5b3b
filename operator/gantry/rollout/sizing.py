"""How many pods each side of a canary runs, and what share of traffic that gives (pure).

The stable Deployment keeps its size frozen at canary start (``n``) during
every step, so a rollback never waits for capacity. The canary is sized from
the step's weight ``w``:

* ``trafficRouting: replicas`` -- one Service spreads requests evenly over the
  ready pods of both Deployments, so the canary's share *is* its share of pods:
  ``canary = max(1, round_half_up(n * w / (100 - w)))`` for ``0 < w < 100``.
  The effective weight ``c / (n + c)`` is what gets reported, and pods are
  coarse: with ``n = 3`` a 10% step gives 1 canary pod, a 1-of-4 canary, 25%.
* ``trafficRouting: gatewayAPI`` -- an HTTPRoute splits traffic exactly, so the
  canary only needs the capacity for its share: ``max(1, ceil(n * w / 100))``,
  and the route carries ``w`` itself.
* ``w == 0``: no canary pods.
* ``w == 100`` (the promotion phase after the last step, or a ``setWeight: 100``
  step): a handover instead of a second full fleet. The canary grows to ``n``
  while the stable shrinks by the canary pods already *available*
  (``stable = n - canary_available``), so the pods able to serve never drop
  below ``n``, and the GPUs an old pod frees are what the next canary pod
  schedules on: a GPU cluster does not need twice the capacity to promote.

Half-up rounding, not ``round()``: Python rounds half to even
(``round(2.5) == 2``), and a weight should not depend on parity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gantry.api.spec import TrafficRoutingType


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (``round_half_up(2.5) == 3``)."""
    return math.floor(x + 0.5)


def _check(stable: int, weight: int) -> None:
    if stable < 0:
        raise ValueError(f"stable replicas must be >= 0, got {stable}")
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, got {weight}")


def ratio_canary_replicas(stable: int, weight: int) -> int:
    """Canary pods beside ``stable`` pods so that the pod ratio approaches ``weight``.

    ``ratio_canary_replicas(4, 10) == 1`` (20%), ``ratio_canary_replicas(2, 50) == 2``,
    ``ratio_canary_replicas(9, 10) == 1`` (10%). Weight 100 is the full size ``stable``.

    Raises:
        ValueError: a negative size or a weight outside 0..100.
    """
    _check(stable, weight)
    if weight == 0:
        return 0
    if weight == 100:
        return max(1, stable)
    return max(1, round_half_up(stable * weight / (100 - weight)))


def gateway_canary_replicas(stable: int, weight: int) -> int:
    """Canary pods that can carry ``weight`` percent of what ``stable`` pods carry.

    ``gateway_canary_replicas(4, 10) == 1``, ``gateway_canary_replicas(4, 50) == 2``.

    Raises:
        ValueError: a negative size or a weight outside 0..100.
    """
    _check(stable, weight)
    if weight == 0:
        return 0
    return max(1, math.ceil(stable * weight / 100))


def effective_weight(stable: int, canary: int) -> int:
    """The canary's share of traffic when requests spread evenly over pods, in percent.

    ``effective_weight(3, 1) == 25``: a 1-of-4 canary is 25%. No pods at all give 0.

    Raises:
        ValueError: a negative count.
    """
    if stable < 0 or canary < 0:
        raise ValueError(f"replica counts must be >= 0, got stable={stable}, canary={canary}")
    total = stable + canary
    return round_half_up(100 * canary / total) if total else 0


@dataclass(frozen=True)
class Split:
    """Pods for each side of a canary.

    Attributes:
        stable: Replicas of the stable Deployment.
        canary: Replicas of the canary Deployment.
    """

    stable: int
    canary: int


def split(
    routing: TrafficRoutingType, stable: int, weight: int, *, canary_available: int = 0
) -> Split:
    """Replicas of both Deployments for one weight.

    Args:
        routing: How traffic is split.
        stable: The stable size frozen at canary start.
        weight: The canary's desired percent.
        canary_available: Canary pods available now (only used at weight 100, for
            the handover).

    Returns:
        The split; the stable keeps ``stable`` pods below weight 100.
    """
    if routing is TrafficRoutingType.GATEWAY_API:
        canary = gateway_canary_replicas(stable, weight)
    else:
        canary = ratio_canary_replicas(stable, weight)
    if weight == 100:
        return Split(stable=max(0, stable - min(canary_available, canary)), canary=canary)
    return Split(stable=stable, canary=canary)


def route_weight(
    weight: int,
    *,
    previous: int,
    canary_available: int,
    canary_desired: int,
    stable: int,
) -> int:
    """The HTTPRoute weight for the canary (gatewayAPI), given what is ready.

    Traffic only moves to pods that can take it: the new weight applies once the
    canary has all the pods its weight needs; until then the route keeps the
    previous weight (never above the new one). A canary with no available pod
    gets 0: a route to no endpoints answers 503s. During the weight-100
    handover the canary gets at least its share of the available capacity,
    because the stable has already given those pods up.

    Args:
        weight: The step's desired percent.
        previous: The weight the route carries now.
        canary_available: Canary pods available now.
        canary_desired: Canary pods the weight needs.
        stable: The stable size frozen at canary start.

    Returns:
        The percent to put on the route.
    """
    if canary_available <= 0:
        return 0
    if canary_available >= canary_desired:
        return weight
    held = min(previous, weight)
    if weight == 100 and stable > 0:
        held = max(held, min(100, math.ceil(100 * canary_available / stable)))
    return held
