"""One ModelDeployment's life in the fault and kill scenarios, as a pure state machine.

create v1 -> edit to v2 (a canary) -> promote it by hand -> edit to v3 (another canary) ->
abort it by hand while it is in flight (rollback) -> record the end state -> delete -> every
child gone. v3's pod need not serve (the scenarios leave it unbacked, saving a Triton start):
a canary is aborted whatever its state.

:func:`advance` looks at what the cluster shows (:class:`Seen`) and says what the driver
(``e2e.faults.scenario``) does next; it never waits or calls anything, so every transition is
table-tested (``tests/faults/test_lifecycle.py``) and the driver only runs kubectl.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PROMOTE = "serving.gantry.dev/promote"
ABORT = "serving.gantry.dev/abort"


class Stage(StrEnum):
    PENDING = "Pending"  # not created yet (waits for a free slot)
    CREATING = "Creating"  # v1 applied: wait until it serves
    CANARY = "Canary"  # v2 applied: wait until its canary pauses
    PROMOTING = "Promoting"  # promote gate set: wait for Promoted and Ready
    SECOND_CANARY = "SecondCanary"  # v3 applied: wait until its canary is in flight
    ABORTING = "Aborting"  # abort gate set: wait for Aborted
    SETTLING = "Settling"  # wait until the aborted canary's Deployment is gone
    DELETING = "Deleting"  # delete sent: wait until it and its children are gone
    DONE = "Done"


class Do(StrEnum):
    APPLY = "apply"  # the spec at ``Action.version``
    ANNOTATE = "annotate"  # set ``Action.annotation`` to "true"
    RECORD_AND_DELETE = "record-and-delete"  # keep the end state, then delete


@dataclass(frozen=True)
class Action:
    do: Do
    version: int = 0
    annotation: str = ""


@dataclass(frozen=True)
class Seen:
    """What one poll shows of one ModelDeployment.

    Attributes:
        md: The object, or None when it does not exist.
        deployments: Names of the Deployments it controls (ownerReference by uid).
        children: Every child it controls, as (kind, name).
        leftovers: Children of a deleted ModelDeployment of this name still present.
    """

    md: Mapping[str, Any] | None
    deployments: frozenset[str] = frozenset()
    children: frozenset[tuple[str, str]] = frozenset()
    leftovers: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def status(self) -> Mapping[str, Any]:
        return (self.md or {}).get("status") or {}

    @property
    def canary(self) -> Mapping[str, Any]:
        return self.status.get("canary") or {}

    def observed_current(self) -> bool:
        """The status describes the spec as it is now (not the one before the last edit)."""
        meta = (self.md or {}).get("metadata") or {}
        return bool(self.md) and self.status.get("observedGeneration") == meta.get("generation")


def _serving(seen: Seen, version: str) -> bool:
    stable = seen.status.get("stable") or {}
    return (
        seen.observed_current()
        and seen.status.get("phase") == "Ready"
        and stable.get("modelVersion") == version
        and stable.get("modelReadyReplicas", 0) >= 1
    )


def _paused_canary(seen: Seen, version: str) -> bool:
    return (
        seen.observed_current()
        and seen.canary.get("modelVersion") == version
        and seen.canary.get("phase") == "Paused"
    )


def _canary_in_flight(seen: Seen, version: str) -> bool:
    return (
        seen.observed_current()
        and seen.canary.get("modelVersion") == version
        and seen.canary.get("phase") in ("Progressing", "Paused")
    )


def advance(stage: Stage, seen: Seen, *, slot_free: bool = True) -> tuple[Stage, Action | None]:
    """The next stage and what to do to get there; the same stage and None: keep waiting."""
    if stage is Stage.PENDING:
        return (Stage.CREATING, Action(Do.APPLY, 1)) if slot_free else (stage, None)
    if stage is Stage.CREATING and _serving(seen, "1"):
        return Stage.CANARY, Action(Do.APPLY, 2)
    if stage is Stage.CANARY and _paused_canary(seen, "2"):
        return Stage.PROMOTING, Action(Do.ANNOTATE, annotation=PROMOTE)
    if stage is Stage.PROMOTING and seen.canary.get("phase") == "Promoted" and _serving(seen, "2"):
        return Stage.SECOND_CANARY, Action(Do.APPLY, 3)
    if stage is Stage.SECOND_CANARY and _canary_in_flight(seen, "3"):
        return Stage.ABORTING, Action(Do.ANNOTATE, annotation=ABORT)
    if (
        stage is Stage.ABORTING
        and seen.canary.get("modelVersion") == "3"
        and seen.canary.get("phase") == "Aborted"
    ):
        return Stage.SETTLING, None
    if stage is Stage.SETTLING and seen.canary.get("deployment") not in seen.deployments:
        return Stage.DELETING, Action(Do.RECORD_AND_DELETE)
    if stage is Stage.DELETING and seen.md is None and not seen.leftovers:
        return Stage.DONE, None
    return stage, None


@dataclass(frozen=True)
class EndState:
    """What must be the same with and without faults, kills or a leader change."""

    phase: str
    stable_version: str
    stable_revision: str
    canary_version: str
    canary_revision: str
    canary_phase: str
    canary_reason: str
    children: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, seen: Seen) -> EndState:
        stable = seen.status.get("stable") or {}
        return cls(
            phase=str(seen.status.get("phase", "")),
            stable_version=str(stable.get("modelVersion", "")),
            stable_revision=str(stable.get("revision", "")),
            canary_version=str(seen.canary.get("modelVersion", "")),
            canary_revision=str(seen.canary.get("revision", "")),
            canary_phase=str(seen.canary.get("phase", "")),
            canary_reason=str(seen.canary.get("reason", "")),
            children=seen.children,
        )
