"""The asyncio shell of Lease leader election: read, decide, write, on a timer.

Safety rests on two clocks of this process only:

* a renewal counts from the monotonic time its request was *sent* (the API server stamps the
  Lease later, so others see it expire no earlier than ``sent + lease_duration``);
* leadership ends at ``sent + renew_deadline``, checked by :meth:`LeaderElector.is_leader` at
  call time and by a loop timer that calls ``on_stopped_leading`` even when the renewing
  task is stuck in a request that never returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gantry.leader.lease import (
    Create,
    ElectionConfig,
    Follow,
    LeaseRecord,
    Renew,
    TakeOver,
    decide,
    record_from_lease,
    released,
)
from gantry.leader.store import LeaseConflict, LeaseStore

log = logging.getLogger(__name__)

# client-go's JitterFactor: a candidate waits retry_period * (1 + U[0, 1.2)) between tries,
# so standbys started together do not hit the API server in lockstep.
JITTER = 1.2


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _nothing() -> None:
    return None


def _ignore(_: str) -> None:
    return None


class LeaderElector:
    """Campaign for one Lease until stopped.

    Args:
        store: The Lease.
        identity: This replica's holderIdentity; unique per process.
        config: Lease duration, renew deadline, retry period.
        on_started_leading: Called once each time this elector becomes leader.
        on_stopped_leading: Called once each time it stops (deadline passed, lost the
            Lease, or released it); writes must stop before it returns.
        on_new_leader: Called with the holder's identity whenever the observed holder changes.
        rng: Jitter source (seed it for reproducible runs).
    """

    def __init__(
        self,
        store: LeaseStore,
        *,
        identity: str,
        config: ElectionConfig | None = None,
        on_started_leading: Callable[[], None] = _nothing,
        on_stopped_leading: Callable[[], None] = _nothing,
        on_new_leader: Callable[[str], None] = _ignore,
        rng: random.Random | None = None,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        self._store = store
        self.identity = identity
        self.config = config or ElectionConfig()
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._rng = rng or random.Random()
        self._record: LeaseRecord | None = None
        self._observed_at = 0.0
        self._leading = False
        self._leading_until = 0.0
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._stopping = asyncio.Event()

    def is_leader(self) -> bool:
        """True while this elector holds the Lease and its renew deadline has not passed.

        Call it right before each batch of writes: it reads the monotonic clock now, so a
        leader whose renewals stalled answers False even before its timer callback ran.
        """
        return self._leading and time.monotonic() < self._leading_until

    @property
    def leader(self) -> str:
        """The holder this elector last saw ("" when none or released)."""
        return self._record.holder if self._record else ""

    async def run(self) -> None:
        """Campaign and renew until :meth:`stop` (or cancellation); then release if leading."""
        try:
            while not self._stopping.is_set():
                delay = await self._attempt()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        finally:
            await self._release()

    def stop(self) -> None:
        """Ask :meth:`run` to release the Lease and return."""
        self._stopping.set()

    async def _attempt(self) -> float:
        """One read-decide-write; returns the seconds until the next one."""
        sent = time.monotonic()
        # A renewal must not outlive leadership; a candidate's try is bounded the same way.
        budget = self._leading_until - sent if self._leading else self.config.renew_deadline
        try:
            async with asyncio.timeout(max(budget, 0.001)):
                decision = await self._decide_and_write(sent)
        except LeaseConflict as exc:
            log.info("lease: lost a race (%s)", exc)
            return self._candidate_delay()
        except Exception as exc:  # the API or network failed: try again; the deadline rules
            log.warning("lease: %s failed: %s", "renewal" if self._leading else "try", exc)
            return self.config.retry_period if self._leading else self._candidate_delay()
        if isinstance(decision, Follow):
            self._step_down("another holder: " + decision.holder)
            # Look again as soon as the holder's Lease would expire for us.
            return min(self._candidate_delay(), decision.expires_in + 0.01)
        self._renewed(sent)
        return self.config.retry_period

    async def _decide_and_write(self, sent: float) -> Follow | Create | Renew | TakeOver:
        lease = await self._store.read()
        self._observe(record_from_lease(lease) if lease else None, sent)
        decision = decide(
            self._record,
            identity=self.identity,
            unchanged_for=sent - self._observed_at,
            now=_utcnow(),
            lease_duration=self.config.lease_duration,
        )
        written: dict[str, Any]
        match decision:
            case Follow():
                return decision
            case Create(record=record):
                written = await self._store.create(record.spec())
            case Renew(record=record) | TakeOver(record=record):
                written = await self._store.update(record.spec(), record.resource_version)
        self._observe(record_from_lease(written), sent)
        return decision

    def _observe(self, record: LeaseRecord | None, at: float) -> None:
        previous = self._record
        if previous is None or record is None or previous.key != record.key:
            self._observed_at = at
        self._record = record
        holder = record.holder if record else ""
        if holder and holder != (previous.holder if previous else ""):
            self._on_new_leader(holder)

    def _renewed(self, sent: float) -> None:
        self._leading_until = sent + self.config.renew_deadline
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        delay = max(self._leading_until - time.monotonic(), 0.0)
        self._deadline_timer = asyncio.get_running_loop().call_later(delay, self._check_deadline)
        if not self._leading:
            self._leading = True
            log.info("lease: %s started leading", self.identity)
            self._on_started()

    def _check_deadline(self) -> None:
        if self._leading and not self.is_leader():
            self._step_down("renew deadline passed")

    def _step_down(self, why: str) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if self._leading:
            self._leading = False
            log.warning("lease: %s stopped leading: %s", self.identity, why)
            self._on_stopped()

    def _candidate_delay(self) -> float:
        return self.config.retry_period * (1 + self._rng.random() * JITTER)

    async def _release(self) -> None:
        """Hand the Lease back on a graceful stop, so a standby need not wait it out."""
        was_leading = self.is_leader()
        self._step_down("stopping")
        record = self._record
        if not was_leading or record is None or record.holder != self.identity:
            return
        try:
            async with asyncio.timeout(self.config.renew_deadline):
                free = released(record, now=_utcnow())
                self._record = record_from_lease(
                    await self._store.update(free.spec(), record.resource_version)
                )
        except Exception as exc:  # the Lease then expires on its own
            log.warning("lease: release failed: %s", exc)
