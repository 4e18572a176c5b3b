"""When the cluster refuses a child: what to report and when to try again (pure).

A child the API server refuses (a 4xx such as 422 Invalid or an admission
webhook's 403) will be refused again for the same manifest, so it is reported
at once (``ChildRejected``) and retried only with backoff. A 5xx, 429 or 409 is
usually the server's trouble, not the manifest's: it is retried with the same
backoff and reported only once it has repeated on the same manifest, since some
inputs make the API server fail the same way every time. A name held by an
object Gantry did not create (``ChildConflict``) is reported at once and
re-checked with backoff: only a person can resolve it.

The backoff is per ModelDeployment and keyed on a hash of everything the
reconcile wanted to write, so the next spec change (a new manifest) is tried at
once, while an unchanged one waits ``BASE_DELAY * 2**(attempts-1)`` seconds,
capped at ``MAX_DELAY``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

BASE_DELAY = 5.0
MAX_DELAY = 300.0
# Transient-looking answers on the same manifest before they are reported.
REPEATS_BEFORE_REPORT = 3


class FailureKind(StrEnum):
    REJECTED = "ChildRejected"
    CONFLICT = "ChildConflict"
    # A child kind the cluster does not serve (an HTTPRoute without the Gateway API CRDs).
    KIND_NOT_INSTALLED = "ChildKindNotInstalled"


def manifests_hash(manifests: Sequence[Any]) -> str:
    """A stable digest of the children a reconcile wanted to write."""
    canonical = json.dumps(list(manifests), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def transient(status: int) -> bool:
    """An answer that may succeed on retry with the same manifest."""
    return status in (409, 429) or status >= 500


@dataclass(frozen=True)
class ChildFailure:
    """The last failure to write one ModelDeployment's children.

    Attributes:
        kind: ChildRejected or ChildConflict (also the status reason).
        message: What to tell the user: the child and the server's (or our) words.
        manifests: ``manifests_hash`` of what was being written.
        attempts: Consecutive failures on these manifests.
        status: HTTP status of the last answer (0 for a conflict found by Gantry).
        retry_at: When the same manifests may be tried again.
    """

    kind: FailureKind
    message: str
    manifests: str
    attempts: int
    status: int
    retry_at: datetime

    @property
    def reportable(self) -> bool:
        """Whether the status should say it now (a transient answer must repeat first)."""
        if self.kind is not FailureKind.REJECTED or not transient(self.status):
            return True
        return self.attempts >= REPEATS_BEFORE_REPORT

    def due(self, manifests: str, now: datetime) -> bool:
        """Whether writing ``manifests`` may be tried now."""
        return manifests != self.manifests or now >= self.retry_at


def delay(attempts: int) -> float:
    """Seconds to wait after ``attempts`` consecutive failures (exponential, capped)."""
    # The exponent is bounded first: a long-lived failure must not overflow the float.
    return min(MAX_DELAY, BASE_DELAY * 2.0 ** min(max(0, attempts - 1), 32))


def record(
    previous: ChildFailure | None,
    *,
    kind: FailureKind,
    message: str,
    manifests: str,
    status: int,
    now: datetime,
) -> ChildFailure:
    """The failure after one more refusal; attempts count only on the same manifests."""
    same = previous is not None and previous.manifests == manifests and previous.kind is kind
    attempts = previous.attempts + 1 if same and previous is not None else 1
    return ChildFailure(
        kind=kind,
        message=message,
        manifests=manifests,
        attempts=attempts,
        status=status,
        retry_at=now + timedelta(seconds=delay(attempts)),
    )


def describe_refusal(kind: str, namespace: str, name: str, status: int, message: str) -> str:
    """The user-facing line for a refused child: which child, then the server's words."""
    return f"{kind} {namespace}/{name} refused by the API server ({status}): {message}"


def describe_conflict(kind: str, namespace: str, name: str, holder: str) -> str:
    """The user-facing line for a child name held by an object Gantry did not create."""
    return (
        f"{kind} {namespace}/{name} already exists and is {holder}; Gantry never takes over "
        "an object it did not create: delete or rename that object, or rename this "
        "ModelDeployment"
    )
