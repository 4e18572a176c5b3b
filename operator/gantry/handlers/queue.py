"""A work queue of ModelDeployment keys, with client-go's workqueue guarantees.

* **Coalesced.** A key waits in the queue at most once, however many events
  named it.
* **One in flight per key.** A key added while it is being processed is marked
  dirty and queued again when that run ends, so the object is reconciled once
  more with what changed meanwhile, never twice at once.
* **Delayed adds.** ``add_after`` keeps the earliest due time of each key: a
  canary's next analysis and a failure's backoff do not pile up timers.
* **Per-key backoff.** ``retry`` waits ``base * 2**(failures-1)`` up to ``cap``;
  ``forget`` resets it after a success.
* **Events first.** A key added because something changed (``urgent``, the
  default) is served before keys that are only due by the clock (timers,
  retries, the resync), as controller-runtime's priority queue does: at a
  thousand objects a user's edit must not wait behind a round of re-probes.

Workers take keys with :meth:`WorkQueue.get` and must call :meth:`WorkQueue.done`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1-based)."""
    if failures < 1:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 32)))


@dataclass
class QueueStats:
    """Counters for the operator's metrics and the tests."""

    added: int = 0
    coalesced: int = 0  # adds that found the key already waiting or running
    retries: int = 0


@dataclass
class _Timer(Generic[K]):
    due: float
    handle: asyncio.TimerHandle


@dataclass
class WorkQueue(Generic[K]):
    """Keys to reconcile; see the module docstring for the guarantees."""

    base_backoff: float = 1.0
    max_backoff: float = 300.0
    stats: QueueStats = field(default_factory=QueueStats)

    def __post_init__(self) -> None:
        self._urgent: deque[K] = deque()
        self._routine: deque[K] = deque()
        # Waiting keys and whether they are urgent; a deque entry that disagrees is stale.
        self._queued: dict[K, bool] = {}
        self._signal = asyncio.Event()
        self._processing: set[K] = set()
        self._dirty: dict[K, bool] = {}  # added while in flight, and whether urgently
        self._timers: dict[K, _Timer[K]] = {}
        self._failures: dict[K, int] = {}

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def in_flight(self) -> int:
        return len(self._processing)

    def _push(self, key: K, urgent: bool) -> None:
        self._queued[key] = urgent
        (self._urgent if urgent else self._routine).append(key)
        self._signal.set()

    def add(self, key: K, *, urgent: bool = True) -> None:
        """Reconcile ``key`` soon; ``urgent=False`` for work due by the clock only."""
        self.stats.added += 1
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.handle.cancel()
        if key in self._processing:
            self.stats.coalesced += key not in self._dirty
            self._dirty[key] = self._dirty.get(key, False) or urgent
            return
        if key in self._queued:
            self.stats.coalesced += 1
            if urgent and not self._queued[key]:
                self._push(key, True)  # promoted: its routine entry is now stale
            return
        self._push(key, urgent)

    def add_after(self, key: K, delay: float) -> None:
        """Reconcile ``key`` in ``delay`` seconds, or earlier if already due earlier."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None:
            if timer.due <= due:
                return
            timer.handle.cancel()
        handle = loop.call_at(due, self._fire, key)
        self._timers[key] = _Timer(due, handle)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key, urgent=False)

    def retry(self, key: K) -> float:
        """Requeue ``key`` after its next backoff; the delay chosen."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        self.stats.retries += 1
        delay = backoff_delay(failures, base=self.base_backoff, cap=self.max_backoff)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (its reconcile succeeded)."""
        self._failures.pop(key, None)

    def drop(self, key: K) -> None:
        """The object is gone: no timer, no backoff (a run in flight still ends normally)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.handle.cancel()
        self._failures.pop(key, None)
        self._dirty.pop(key, None)
        self._queued.pop(key, None)

    def due_in(self, key: K) -> float | None:
        """Seconds until ``key``'s timer fires, if it has one."""
        timer = self._timers.get(key)
        if timer is None:
            return None
        return max(0.0, timer.due - asyncio.get_running_loop().time())

    async def get(self) -> K:
        """The next key to process (urgent ones first); in flight until :meth:`done`."""
        while True:
            for waiting, urgent in ((self._urgent, True), (self._routine, False)):
                while waiting:
                    key = waiting.popleft()
                    if self._queued.get(key) is urgent:  # else dropped or promoted: stale
                        del self._queued[key]
                        self._processing.add(key)
                        return key
            self._signal.clear()
            await self._signal.wait()

    def done(self, key: K) -> None:
        """Processing of ``key`` ended; re-queue it if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._push(key, self._dirty.pop(key))

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.handle.cancel()
        self._timers.clear()
