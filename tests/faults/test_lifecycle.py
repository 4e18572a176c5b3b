"""Every transition of the fault scenario's lifecycle, from what a poll shows."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.faults.lifecycle import ABORT, PROMOTE, Action, Do, EndState, Seen, Stage, advance
from e2e.faults.scenario import rollout_decision


def md(
    *,
    generation: int = 1,
    observed: int = 1,
    phase: str = "Ready",
    stable: str = "1",
    ready: int = 1,
    canary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "phase": phase,
        "stable": {"modelVersion": stable, "modelReadyReplicas": ready, "revision": f"r{stable}"},
    }
    if canary is not None:
        status["canary"] = canary
    return {"metadata": {"generation": generation, "uid": "u1"}, "status": status}


def seen(obj: dict[str, Any] | None, **kw: Any) -> Seen:
    return Seen(obj, **kw)


CANARY2_PAUSED = {"modelVersion": "2", "phase": "Paused", "deployment": "m-r2"}
CANARY3_PAUSED = {"modelVersion": "3", "phase": "Paused", "deployment": "m-r3"}
ABORTED3 = {"modelVersion": "3", "phase": "Aborted", "deployment": "m-r3", "revision": "r3"}


@pytest.mark.parametrize(
    ("stage", "observed", "expected"),
    [
        # Pending: created only when a slot is free.
        (Stage.PENDING, seen(None), (Stage.CREATING, Action(Do.APPLY, 1))),
        # Creating: v1 must serve, as the status of the current generation says.
        (Stage.CREATING, seen(None), (Stage.CREATING, None)),
        (Stage.CREATING, seen(md(phase="Progressing")), (Stage.CREATING, None)),
        (Stage.CREATING, seen(md(ready=0)), (Stage.CREATING, None)),
        (Stage.CREATING, seen(md(generation=2, observed=1)), (Stage.CREATING, None)),
        (Stage.CREATING, seen(md()), (Stage.CANARY, Action(Do.APPLY, 2))),
        # Canary: v2's canary paused (by its pause step) -> promote by hand.
        (Stage.CANARY, seen(md(generation=2, observed=2)), (Stage.CANARY, None)),
        (
            Stage.CANARY,
            seen(md(generation=2, observed=1, canary=CANARY2_PAUSED)),
            (Stage.CANARY, None),
        ),
        (
            Stage.CANARY,
            seen(md(generation=2, observed=2, canary={**CANARY2_PAUSED, "phase": "Progressing"})),
            (Stage.CANARY, None),
        ),
        (
            Stage.CANARY,
            seen(md(generation=2, observed=2, phase="Paused", canary=CANARY2_PAUSED)),
            (Stage.PROMOTING, Action(Do.ANNOTATE, annotation=PROMOTE)),
        ),
        # Promoting: Promoted and v2 serving as the stable.
        (
            Stage.PROMOTING,
            seen(md(generation=2, observed=2, phase="Paused", canary=CANARY2_PAUSED)),
            (Stage.PROMOTING, None),
        ),
        (
            Stage.PROMOTING,
            seen(md(generation=2, observed=2, stable="1", canary={"phase": "Promoted"})),
            (Stage.PROMOTING, None),
        ),
        (
            Stage.PROMOTING,
            seen(md(generation=2, observed=2, stable="2", canary={"phase": "Promoted"})),
            (Stage.SECOND_CANARY, Action(Do.APPLY, 3)),
        ),
        # Second canary: a paused canary of v2 (the last one) is not v3's; v3's is aborted
        # as soon as it is in flight, serving or not.
        (
            Stage.SECOND_CANARY,
            seen(md(generation=3, observed=3, stable="2", canary=CANARY2_PAUSED)),
            (Stage.SECOND_CANARY, None),
        ),
        (
            Stage.SECOND_CANARY,
            seen(md(generation=3, observed=2, stable="2", canary=CANARY3_PAUSED)),
            (Stage.SECOND_CANARY, None),
        ),
        (
            Stage.SECOND_CANARY,
            seen(md(generation=3, observed=3, stable="2", canary=CANARY3_PAUSED)),
            (Stage.ABORTING, Action(Do.ANNOTATE, annotation=ABORT)),
        ),
        (
            Stage.SECOND_CANARY,
            seen(
                md(
                    generation=3,
                    observed=3,
                    stable="2",
                    canary={**CANARY3_PAUSED, "phase": "Progressing"},
                )
            ),
            (Stage.ABORTING, Action(Do.ANNOTATE, annotation=ABORT)),
        ),
        # Aborting: only v3's Aborted counts.
        (
            Stage.ABORTING,
            seen(md(generation=3, observed=3, stable="2", canary=CANARY3_PAUSED)),
            (Stage.ABORTING, None),
        ),
        (
            Stage.ABORTING,
            seen(md(generation=3, observed=3, phase="Failed", stable="2", canary=ABORTED3)),
            (Stage.SETTLING, None),
        ),
        # Settling: the aborted canary's Deployment must be gone before the end state is kept.
        (
            Stage.SETTLING,
            seen(md(canary=ABORTED3), deployments=frozenset({"m-r2", "m-r3"})),
            (Stage.SETTLING, None),
        ),
        (
            Stage.SETTLING,
            seen(md(canary=ABORTED3), deployments=frozenset({"m-r2"})),
            (Stage.DELETING, Action(Do.RECORD_AND_DELETE)),
        ),
        # Deleting: the object and every child it had are gone.
        (Stage.DELETING, seen(md()), (Stage.DELETING, None)),
        (
            Stage.DELETING,
            seen(None, leftovers=frozenset({("Deployment", "m-r2")})),
            (Stage.DELETING, None),
        ),
        (Stage.DELETING, seen(None), (Stage.DONE, None)),
        (Stage.DONE, seen(None), (Stage.DONE, None)),
    ],
)
def test_each_stage_moves_on_only_when_the_cluster_shows_it(
    stage: Stage, observed: Seen, expected: tuple[Stage, Action | None]
) -> None:
    assert advance(stage, observed) == expected


def test_pending_waits_for_a_free_slot() -> None:
    assert advance(Stage.PENDING, seen(None), slot_free=False) == (Stage.PENDING, None)


def test_the_end_state_keeps_what_must_match_between_runs() -> None:
    children = frozenset({("Deployment", "m-r2"), ("Service", "m")})
    obj = md(generation=3, observed=3, phase="Failed", stable="2", canary=ABORTED3)
    obj["status"]["canary"]["reason"] = "ManualAbort"
    end = EndState.of(Seen(obj, children=children))
    assert end == EndState(
        phase="Failed",
        stable_version="2",
        stable_revision="r2",
        canary_version="3",
        canary_revision="r3",
        canary_phase="Aborted",
        canary_reason="ManualAbort",
        children=children,
    )


@pytest.mark.parametrize(
    ("event", "decision"),
    [
        ({"reason": "CanaryStarted", "message": "canary r2 started"}, "Started"),
        ({"reason": "CanaryPromoted", "message": "canary r2 promoted: ..."}, "Promoted"),
        (
            {"reason": "ManualAbort", "message": "canary r3 rolled back (ManualAbort): asked"},
            "RolledBack",
        ),
        (
            {"reason": "AnalysisFailed", "message": "canary r3 rolled back (AnalysisFailed): x"},
            "RolledBack",
        ),
        # The Degraded condition's transition shares the reason, not the decision.
        ({"reason": "ManualAbort", "message": "Degraded=True: canary r3 rolled back"}, None),
        ({"reason": "CanaryStep", "message": "step 1/2"}, None),
        ({}, None),
    ],
)
def test_only_the_rollouts_own_events_count_as_decisions(
    event: dict[str, Any], decision: str | None
) -> None:
    assert rollout_decision(event) == decision
