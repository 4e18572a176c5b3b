"""WorkQueue: client-go's workqueue guarantees, one by one."""

from __future__ import annotations

import asyncio

import pytest

from gantry.handlers.queue import WorkQueue, backoff_delay

pytestmark = pytest.mark.timeout(30)

A = ("ns", "a")
B = ("ns", "b")


async def next_key(queue: WorkQueue[tuple[str, str]]) -> tuple[str, str]:
    async with asyncio.timeout(5):
        return await queue.get()


def nothing_ready(queue: WorkQueue[tuple[str, str]]) -> bool:
    """No key is waiting to be taken (without blocking on get)."""
    return len(queue) == 0


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (1000, 300.0)],
)
def test_backoff_delay(failures: int, delay: float) -> None:
    assert backoff_delay(failures, base=1.0, cap=300.0) == delay


async def test_adds_of_a_waiting_key_coalesce() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    for key in (A, A, B, A):
        queue.add(key)
    assert len(queue) == 2
    assert (queue.stats.added, queue.stats.coalesced) == (4, 2)
    assert [await next_key(queue), await next_key(queue)] == [A, B]
    assert nothing_ready(queue)


async def test_one_run_per_key_and_a_dirty_key_runs_once_more() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add(A)
    assert await next_key(queue) == A
    assert queue.in_flight == 1
    queue.add(A)  # changed while it runs: not handed to a second worker
    queue.add(A)
    assert nothing_ready(queue)
    assert queue.stats.coalesced == 1  # the second add found it already dirty
    queue.done(A)
    assert (len(queue), queue.in_flight) == (1, 0)
    assert await next_key(queue) == A
    queue.done(A)
    assert nothing_ready(queue)  # the re-run was clean: no third run


async def test_add_after_keeps_the_earliest_due_time() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add_after(A, 100)
    queue.add_after(A, 0.01)  # earlier: replaces
    queue.add_after(A, 200)  # later: ignored
    due = queue.due_in(A)
    assert due is not None
    assert due <= 0.01
    assert nothing_ready(queue)
    assert await next_key(queue) == A
    assert queue.due_in(A) is None
    queue.done(A)


async def test_add_now_cancels_a_pending_timer_and_zero_delay_is_now() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add_after(A, 100)
    queue.add(A)
    assert queue.due_in(A) is None
    queue.add_after(B, 0)
    assert len(queue) == 2
    queue.shutdown()


async def test_retries_double_to_the_cap_and_forget_resets() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue(base_backoff=1.0, max_backoff=8.0)
    delays = []
    for _ in range(5):
        delays.append(queue.retry(A))
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert queue.retry(B) == 1.0  # per key
    queue.forget(A)
    assert queue.retry(A) == 1.0
    assert queue.stats.retries == 7
    queue.shutdown()
    assert (queue.due_in(A), queue.due_in(B)) == (None, None)


async def test_a_retry_never_postpones_an_earlier_look() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue(base_backoff=50.0)
    queue.add_after(A, 5)
    queue.retry(A)
    due = queue.due_in(A)
    assert due is not None
    assert due <= 5
    queue.shutdown()


async def test_drop_forgets_a_queued_key_its_timer_and_backoff() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue(base_backoff=1.0)
    queue.add(A)
    queue.add(B)
    queue.drop(A)
    assert await next_key(queue) == B  # A is skipped
    queue.done(B)

    queue.retry(A)
    queue.retry(A)
    queue.drop(A)
    assert queue.due_in(A) is None
    assert queue.retry(A) == 1.0  # the backoff started over
    queue.shutdown()


async def test_a_key_dropped_while_running_is_not_run_again() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add(A)
    assert await next_key(queue) == A
    queue.add(A)  # dirty...
    queue.drop(A)  # ...but gone
    queue.done(A)
    assert nothing_ready(queue)


C = ("ns", "c")


async def test_keys_added_by_events_go_before_keys_due_by_the_clock() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add(A, urgent=False)  # a resync, or a timer that fired
    queue.add(B, urgent=False)
    queue.add(C)  # a user's edit
    assert [await next_key(queue) for _ in range(3)] == [C, A, B]


async def test_an_event_promotes_a_key_already_waiting_by_the_clock() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add(A, urgent=False)
    queue.add(B, urgent=False)
    queue.add(B)  # something changed for B while it waited
    assert len(queue) == 2
    assert await next_key(queue) == B
    assert await next_key(queue) == A
    queue.done(B)
    queue.done(A)
    assert nothing_ready(queue)  # B's stale routine entry is skipped, not run twice
    queue.add(A, urgent=False)
    assert await next_key(queue) == A


async def test_a_fired_timer_is_routine_and_a_dirty_rerun_keeps_its_urgency() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add_after(A, 0.01)
    await asyncio.sleep(0.05)
    queue.add(B, urgent=False)
    queue.add(C)
    assert await next_key(queue) == C
    assert await next_key(queue) == A  # routine, in arrival order with B
    queue.add(A)  # an event during A's run
    queue.done(A)
    assert await next_key(queue) == A  # re-run before B: the event made it urgent
    assert await next_key(queue) == B
