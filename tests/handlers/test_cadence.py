"""next_look: when a ModelDeployment is looked at again, events aside (a table)."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.handlers.cadence import Cadence, next_look, settled

CADENCE = Cadence(poll=5.0, probe=60.0)


def status(phase: str, replicas: int = 2, model_ready: int = 2) -> dict[str, Any]:
    return {"phase": phase, "replicas": replicas, "modelReadyReplicas": model_ready}


@pytest.mark.parametrize(
    ("requeue_after", "status_", "due"),
    [
        # Settled: the slow re-probe, unless the rollout wants an earlier look.
        (None, status("Ready"), 60.0),
        (None, status("Paused"), 60.0),
        (None, status("Failed"), 60.0),
        (30.0, status("Paused"), 30.0),  # a pause ends
        (90.0, status("Ready"), 60.0),  # the probe comes first
        # Settling: polled.
        (None, None, 5.0),
        (None, {}, 5.0),
        (None, status("Progressing"), 5.0),
        (None, status("Degraded"), 5.0),
        (None, status("Ready", replicas=3, model_ready=2), 5.0),  # a model still loading
        (None, {"phase": "Ready"}, 60.0),  # no replicas counted: nothing to wait for
        (2.0, status("Progressing"), 2.0),  # analysis due sooner than the poll
        (30.0, status("Progressing"), 5.0),
        # Never negative, a due time already past means now.
        (-1.0, status("Ready"), 0.0),
        (0.0, status("Progressing"), 0.0),
    ],
)
def test_next_look(requeue_after: float | None, status_: dict[str, Any] | None, due: float) -> None:
    assert next_look(requeue_after, status_, CADENCE) == due


@pytest.mark.parametrize(
    ("status_", "expected"),
    [
        (None, False),
        ({}, False),
        (status("Ready"), True),
        (status("Ready", model_ready=3), True),
        (status("Ready", model_ready=1), False),
        (status("Progressing"), False),
        ({"phase": "Paused", "replicas": "2", "modelReadyReplicas": "2"}, True),
    ],
)
def test_settled(status_: dict[str, Any] | None, expected: bool) -> None:
    assert settled(status_) is expected


@pytest.mark.parametrize(
    ("quiet", "requeue_after", "status_", "due"),
    [
        # A settling object is polled at the poll pace while things change...
        (0, None, status("Degraded"), 5.0),
        (4, None, status("Degraded"), 5.0),  # patience: 4 unchanged looks at full pace
        # ...then, stuck, less and less often, up to poll_max.
        (5, None, status("Degraded"), 10.0),
        (6, None, status("Degraded"), 20.0),
        (7, None, status("Degraded"), 30.0),
        (50, None, status("Degraded"), 30.0),
        (10_000, None, status("Progressing"), 30.0),  # no overflow
        # The rollout's own timers still win, and a settled object keeps the probe pace.
        (50, 3.0, status("Progressing"), 3.0),
        (50, None, status("Ready"), 60.0),
    ],
)
def test_a_stuck_object_is_looked_at_less_often(
    quiet: int, requeue_after: float | None, status_: dict[str, Any], due: float
) -> None:
    assert next_look(requeue_after, status_, CADENCE, quiet) == due


def test_poll_max_below_poll_keeps_the_poll() -> None:
    assert next_look(None, status("Degraded"), Cadence(poll=5.0, poll_max=1.0), 40) == 5.0
