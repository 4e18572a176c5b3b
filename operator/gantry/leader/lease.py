"""Pure rules of Lease leader election: given what the Lease says, what to do.

The rules are client-go's (``tools/leaderelection/leaderelection.go``):

* No Lease: create it, holding it.
* We hold it: renew (same ``acquireTime`` and ``leaseTransitions``, a new ``renewTime``).
* Someone else holds it and this elector has seen the same record for less than the
  record's ``leaseDurationSeconds``: follow. Expiry is measured on *this* process's monotonic
  clock from the moment it first saw the record, never by comparing the holder's wall-clock
  ``renewTime`` with ours: two machines' clocks may disagree by more than a lease.
* Released (empty holder) or expired: take over, ``leaseTransitions`` + 1.

Every write carries the ``resourceVersion`` it was decided on, so a 409 means someone else
wrote first and the decision is void.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Lease times are MicroTime: RFC 3339 with exactly six fractional digits.
MICROTIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_microtime(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("Lease times must be timezone-aware")
    return at.astimezone(UTC).strftime(MICROTIME_FORMAT)


def parse_microtime(text: str) -> datetime:
    """A Lease time as the API server writes it (``...Z`` with 0 to 9 fractional digits)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    head, dot, rest = value.partition(".")
    if dot:
        # Python parses at most 6 fractional digits; MicroTime has 6, RFC 3339 allows more.
        digits = rest[: len(rest) - 6]
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest[-6:]}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a Lease time: {text!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"Lease time without a timezone: {text!r}")
    return parsed


@dataclass(frozen=True)
class ElectionConfig:
    """Timing of an election, in seconds (client-go's defaults for controllers: 15/10/2).

    ``renew_deadline < lease_duration`` is what makes a cut-off leader safe: it gives up
    leading ``lease_duration - renew_deadline`` seconds before anyone may take its lease.
    """

    lease_duration: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if self.lease_duration < 1:
            raise ValueError(f"lease_duration must be >= 1 second, got {self.lease_duration}")
        if not 0 < self.renew_deadline < self.lease_duration:
            raise ValueError(
                f"renew_deadline ({self.renew_deadline}) must be > 0 and < lease_duration "
                f"({self.lease_duration}): a leader must stop before its lease can expire"
            )
        # client-go: renewDeadline > JitterFactor(1.2) * retryPeriod, so that at least one
        # retry fits inside the deadline even with jitter.
        if not 0 < self.retry_period * 1.2 < self.renew_deadline:
            raise ValueError(
                f"retry_period ({self.retry_period}) must be > 0 and 1.2 x retry_period < "
                f"renew_deadline ({self.renew_deadline})"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec, plus the version they were read at."""

    holder: str
    lease_duration: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int
    resource_version: str = ""

    @property
    def key(self) -> tuple[object, ...]:
        """What must change for a holder to count as alive (client-go compares the record)."""
        return (
            self.holder,
            self.lease_duration,
            self.acquire_time,
            self.renew_time,
            self.transitions,
        )

    def spec(self) -> dict[str, Any]:
        """The Lease ``spec`` to write."""
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration,
            "acquireTime": format_microtime(self.acquire_time) if self.acquire_time else None,
            "renewTime": format_microtime(self.renew_time) if self.renew_time else None,
            "leaseTransitions": self.transitions,
        }


def _field(spec: dict[str, Any], name: str, kind: type) -> Any:
    value = spec.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"Lease spec.{name} must be {kind.__name__}, got {value!r}")
    return value


def record_from_lease(lease: dict[str, Any]) -> LeaseRecord:
    """The election record of a Lease object as read from the API server.

    Raises:
        ValueError: a field of the wrong type, named.
    """
    spec = lease.get("spec") or {}
    acquire = _field(spec, "acquireTime", str)
    renew = _field(spec, "renewTime", str)
    return LeaseRecord(
        holder=_field(spec, "holderIdentity", str) or "",
        lease_duration=_field(spec, "leaseDurationSeconds", int) or 0,
        acquire_time=parse_microtime(acquire) if acquire else None,
        renew_time=parse_microtime(renew) if renew else None,
        transitions=_field(spec, "leaseTransitions", int) or 0,
        resource_version=str((lease.get("metadata") or {}).get("resourceVersion", "")),
    )


@dataclass(frozen=True)
class Create:
    """No Lease exists: create it, holding it."""

    record: LeaseRecord


@dataclass(frozen=True)
class Renew:
    """We hold the Lease: write a new renewTime at ``record.resource_version``."""

    record: LeaseRecord


@dataclass(frozen=True)
class TakeOver:
    """The Lease is released or expired: take it at ``record.resource_version``."""

    record: LeaseRecord
    previous_holder: str


@dataclass(frozen=True)
class Follow:
    """Someone else holds a live Lease; it expires for us in ``expires_in`` seconds."""

    holder: str
    expires_in: float


Decision = Create | Renew | TakeOver | Follow


def decide(
    current: LeaseRecord | None,
    *,
    identity: str,
    unchanged_for: float,
    now: datetime,
    lease_duration: int,
) -> Decision:
    """What an elector named ``identity`` does about ``current``.

    Args:
        current: The Lease as read, or None when there is none.
        identity: This elector's holder identity.
        unchanged_for: Seconds (monotonic) since this elector first saw ``current``'s record.
        now: Wall-clock time written into the Lease.
        lease_duration: The duration this elector writes when it holds the Lease.
    """
    if not identity:
        raise ValueError("identity must not be empty: an empty holderIdentity means released")
    if current is None:
        return Create(LeaseRecord(identity, lease_duration, now, now, 0))
    if current.holder == identity:
        renewed = LeaseRecord(
            identity,
            lease_duration,
            current.acquire_time or now,
            now,
            current.transitions,
            current.resource_version,
        )
        return Renew(renewed)
    expires_in = current.lease_duration - unchanged_for
    if current.holder and expires_in > 0:
        return Follow(current.holder, expires_in)
    taken = LeaseRecord(
        identity, lease_duration, now, now, current.transitions + 1, current.resource_version
    )
    return TakeOver(taken, previous_holder=current.holder)


def released(current: LeaseRecord, *, now: datetime) -> LeaseRecord:
    """The record a leader writes on a graceful stop (client-go's ReleaseOnCancel).

    An empty holder lets a standby take over at its next retry instead of after a lease
    duration; ``leaseDurationSeconds: 1`` does the same for electors that only look at time.
    """
    return LeaseRecord("", 1, now, now, current.transitions, current.resource_version)
