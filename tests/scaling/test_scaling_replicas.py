"""The HPA's replica calculator, one row per rule of replica_calculator.go."""

from __future__ import annotations

import pytest

from gantry.scaling.replicas import compute


@pytest.mark.parametrize(
    ("values", "unready", "missing", "current", "target", "want"),
    [
        # ratio 2.0 over 1 pod -> 2
        ([100.0], 0, 0, 1, 50, 2),
        # ratio 3.0 over 1 pod -> 3 (load rises: 1 -> 3 in one computation)
        ([150.0], 0, 0, 1, 50, 3),
        # within the 10% tolerance: keep the current size, whatever the pod count
        ([54.0, 46.0, 55.0], 0, 0, 3, 50, 3),
        # just outside it: ceil(1.12 * 3) = 4
        ([56.0, 56.0, 56.0], 0, 0, 3, 50, 4),
        # scale down: ceil(0.2 * 3) = 1
        ([10.0, 10.0, 10.0], 0, 0, 3, 50, 1),
        # unready pods on a scale-up count as 0: (100 + 0) / 2 / 50 = 1.0 -> hold
        ([100.0], 1, 0, 2, 50, 2),
        # ... and do not stop a big enough one: (200 + 0) / 2 / 50 = 2 -> 4
        ([200.0], 1, 0, 2, 50, 4),
        # unready pods on a scale-down are left out: ceil(0.2 * 1) = 1
        ([10.0], 1, 0, 2, 50, 1),
        # missing pods on a scale-down count as the target: (10 + 50) / 2 / 50 = 0.6 -> 2
        ([10.0], 0, 1, 3, 50, 2),
        # missing pods on a scale-up count as 0: (150 + 0) / 2 / 50 = 1.5 -> 3
        ([150.0], 0, 1, 2, 50, 3),
        # filling in flips the direction: (60 + 0) / 2 / 50 = 0.6 < 1 < 1.2 -> hold
        ([60.0], 0, 1, 2, 50, 2),
        # no serving value at all: nothing to go on
        ([], 2, 0, 2, 50, None),
    ],
)
def test_replica_calculator(
    values: list[float], unready: int, missing: int, current: int, target: float, want: int | None
) -> None:
    got = compute(values, unready=unready, missing=missing, current=current, target=target)
    assert (got.replicas if got else None) == want
