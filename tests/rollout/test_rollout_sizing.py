"""Canary sizing: replica ratios, Gateway API capacity, the weight-100 handover, route weights."""

from __future__ import annotations

import pytest

from gantry.api.spec import TrafficRoutingType
from gantry.rollout import sizing

R, G = TrafficRoutingType.REPLICAS, TrafficRoutingType.GATEWAY_API


@pytest.mark.parametrize(
    ("stable", "weight", "canary", "effective"),
    [
        (4, 0, 0, 0),
        (4, 10, 1, 20),  # round(0.44) would be 0: at least one pod
        (3, 25, 1, 25),  # the documented case: a 1-of-4 canary is 25%
        (9, 10, 1, 10),
        (2, 50, 2, 50),
        (4, 50, 4, 50),
        (3, 40, 2, 40),  # 3*40/60 = 2.0
        (5, 33, 2, 29),  # 5*33/67 = 2.46 -> 2
        (1, 90, 9, 90),
        (7, 30, 3, 30),  # 7*30/70 = 3.0
        (5, 50, 5, 50),
        (4, 100, 4, 50),  # full size beside the stable (the handover shrinks the stable)
        (0, 10, 1, 100),
    ],
    ids=lambda v: str(v),
)
def test_replica_ratio(stable: int, weight: int, canary: int, effective: int) -> None:
    assert sizing.ratio_canary_replicas(stable, weight) == canary
    assert sizing.effective_weight(stable, canary) == effective


@pytest.mark.parametrize(
    ("x", "expected"), [(0.5, 1), (1.5, 2), (2.5, 3), (2.49, 2), (0.0, 0)], ids=str
)
def test_round_half_up_is_not_bankers_rounding(x: float, expected: int) -> None:
    assert sizing.round_half_up(x) == expected


@pytest.mark.parametrize(
    ("stable", "weight", "canary"),
    [
        (4, 0, 0),
        (4, 1, 1),
        (4, 10, 1),
        (4, 25, 1),
        (4, 26, 2),
        (4, 50, 2),
        (10, 35, 4),
        (4, 100, 4),
    ],
    ids=str,
)
def test_gateway_capacity(stable: int, weight: int, canary: int) -> None:
    assert sizing.gateway_canary_replicas(stable, weight) == canary


@pytest.mark.parametrize(
    ("routing", "weight", "available", "expected"),
    [
        (R, 10, 0, sizing.Split(stable=4, canary=1)),
        (G, 50, 0, sizing.Split(stable=4, canary=2)),
        (R, 100, 0, sizing.Split(stable=4, canary=4)),
        (R, 100, 1, sizing.Split(stable=3, canary=4)),
        (R, 100, 4, sizing.Split(stable=0, canary=4)),
        (G, 100, 2, sizing.Split(stable=2, canary=4)),
        (R, 100, 9, sizing.Split(stable=0, canary=4)),  # more available than wanted
    ],
    ids=[
        "ratio-10",
        "gateway-50",
        "handover-start",
        "handover-1-ready",
        "handover-done",
        "gateway-handover",
        "handover-surplus",
    ],
)
def test_split(
    routing: TrafficRoutingType, weight: int, available: int, expected: sizing.Split
) -> None:
    assert sizing.split(routing, 4, weight, canary_available=available) == expected


@pytest.mark.parametrize(
    ("weight", "previous", "available", "desired", "expected"),
    [
        (10, 0, 0, 1, 0),  # no pod yet: nothing routed
        (10, 0, 1, 1, 10),  # ready: the new weight
        (50, 10, 1, 2, 10),  # growing: keep the previous weight
        (50, 10, 2, 2, 50),
        (50, 10, 0, 2, 0),  # every canary pod gone: a route to nothing is 503s
        (30, 50, 1, 2, 30),  # a restarted step list lowered the weight: never above it
        (100, 50, 2, 4, 50),  # handover: at least the share of pods available (2/4)
        (100, 50, 3, 4, 75),
        (100, 50, 4, 4, 100),
    ],
    ids=[
        "no-pods",
        "ready",
        "growing",
        "grown",
        "lost-pods",
        "lowered",
        "handover-half",
        "handover-3of4",
        "handover-done",
    ],
)
def test_route_weight(
    weight: int, previous: int, available: int, desired: int, expected: int
) -> None:
    got = sizing.route_weight(
        weight, previous=previous, canary_available=available, canary_desired=desired, stable=4
    )
    assert got == expected


@pytest.mark.parametrize(("stable", "weight"), [(-1, 10), (4, -1), (4, 101)], ids=str)
def test_bad_inputs_are_refused(stable: int, weight: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        sizing.ratio_canary_replicas(stable, weight)
    with pytest.raises(ValueError, match="must be"):
        sizing.gateway_canary_replicas(stable, weight)
