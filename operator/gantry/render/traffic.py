"""Traffic weights approximated by replica counts behind one Service.

With ``trafficRouting: replicas`` a Service spreads requests evenly over ready
pods, so the canary's share is its share of pods: a 1-of-4 canary is 25%. The
stable Deployment keeps its full size (capacity never drops during a canary)
and the canary is sized to approach the requested weight.
"""

from __future__ import annotations

import math


def _round_half_up(x: float) -> int:
    # round() rounds half to even (round(2.5) == 2); weights should not depend on parity.
    return math.floor(x + 0.5)


def replica_split(stable_replicas: int, weight: int) -> tuple[int, int]:
    """Returns ``(stable, canary)`` replicas that approximate ``weight`` percent for the canary.

    * ``weight == 0``: no canary pods.
    * ``0 < weight < 100``: stable keeps ``stable_replicas``; the canary gets
      ``max(1, round(stable * w / (100 - w)))`` so it serves at least some traffic.
    * ``weight == 100``: every request to the canary: stable scales to zero and the
      canary takes the stable size (at least one pod).

    Examples:
        ``replica_split(3, 25) == (3, 1)`` (25%); ``replica_split(4, 10) == (4, 1)``
        (20%, the closest a whole pod gets); ``replica_split(2, 50) == (2, 2)``.

    Raises:
        ValueError: ``stable_replicas`` is negative or ``weight`` is outside 0..100.
    """
    if stable_replicas < 0:
        raise ValueError(f"stable_replicas must be >= 0, got {stable_replicas}")
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, got {weight}")
    if weight == 0:
        return stable_replicas, 0
    if weight == 100:
        return 0, max(1, stable_replicas)
    canary = _round_half_up(stable_replicas * weight / (100 - weight))
    return stable_replicas, max(1, canary)


def effective_weight(stable: int, canary: int) -> int:
    """The canary's traffic percent when requests spread evenly over ready pods.

    ``effective_weight(3, 1) == 25``: a 1-of-4 canary is 25%. Zero pods in all give 0.

    Raises:
        ValueError: a count is negative.
    """
    if stable < 0 or canary < 0:
        raise ValueError(f"replica counts must be >= 0, got stable={stable}, canary={canary}")
    total = stable + canary
    if total == 0:
        return 0
    return _round_half_up(100 * canary / total)
