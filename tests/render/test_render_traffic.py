"""Replica-ratio traffic splitting."""

from __future__ import annotations

import pytest

from gantry.render.traffic import effective_weight, replica_split


@pytest.mark.parametrize(
    ("stable", "weight", "expected"),
    [
        (4, 0, (4, 0)),
        (3, 25, (3, 1)),
        (4, 10, (4, 1)),  # at least one pod, even below one pod's worth
        (9, 10, (9, 1)),
        (10, 10, (10, 1)),  # 1.11 rounds to 1
        (2, 50, (2, 2)),
        (3, 50, (3, 3)),
        (1, 75, (1, 3)),
        (4, 20, (4, 1)),
        (6, 20, (6, 2)),  # 1.5 rounds half up, not to even
        (0, 10, (0, 1)),
        (5, 100, (0, 5)),
        (0, 100, (0, 1)),
    ],
)
def test_replica_split(stable: int, weight: int, expected: tuple[int, int]) -> None:
    assert replica_split(stable, weight) == expected


@pytest.mark.parametrize(("stable", "weight"), [(-1, 10), (3, -1), (3, 101)])
def test_replica_split_rejects_bad_input(stable: int, weight: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        replica_split(stable, weight)


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [(3, 1, 25), (4, 1, 20), (1, 1, 50), (0, 0, 0), (0, 3, 100), (5, 0, 0), (7, 1, 13), (2, 1, 33)],
)
def test_effective_weight(stable: int, canary: int, expected: int) -> None:
    assert effective_weight(stable, canary) == expected


def test_effective_weight_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        effective_weight(-1, 1)


@pytest.mark.parametrize("weight", [1, 5, 10, 20, 25, 33, 50, 59, 75, 90, 99])
@pytest.mark.parametrize("stable", [1, 2, 3, 4, 8, 10])
def test_split_lands_within_one_pod_of_the_weight(stable: int, weight: int) -> None:
    s, c = replica_split(stable, weight)
    assert s == stable
    assert c >= 1

    def exact(canary: int) -> float:
        return 100 * canary / (stable + canary)

    # The stable side never shrinks, so one canary pod is the granularity.
    assert exact(c - 1) <= weight <= exact(c + 1)
