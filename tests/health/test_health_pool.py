"""ProbePool over a real socket: kept connections, cached ready answers, bounds."""

from __future__ import annotations

import pytest

from gantry.health import ProbePool, ProbeReason, ProbeTarget
from gantry.health.pool import refill, wait_for_token
from tests.health.kserve_fake import Fake

pytestmark = pytest.mark.timeout(60)


async def test_a_ready_answer_is_reused_until_the_pod_changes(fake: Fake) -> None:
    fake.script.model_ready = True
    pool = ProbePool(timeout=2, ready_interval=3600)
    try:
        target = ProbeTarget(fake.endpoint, revision="uid-1/ready")
        first = await pool.probe([target], "m", "1")
        again = await pool.probe([target], "m", "1")
        assert first == again
        assert first[0].reason is ProbeReason.MODEL_READY
        assert (pool.stats.sent, pool.stats.reused) == (1, 1)

        # A readiness transition (or a new pod at the same IP) is asked at once.
        changed = await pool.probe([ProbeTarget(fake.endpoint, "uid-1/not-ready")], "m", "1")
        assert changed[0].model_ready
        assert pool.stats.sent == 2
        # So is another model version on the same endpoint.
        await pool.probe([ProbeTarget(fake.endpoint, "uid-1/not-ready")], "m", "2")
        assert pool.stats.sent == 3
    finally:
        await pool.close()


async def test_a_model_that_is_not_ready_is_asked_every_time(fake: Fake) -> None:
    fake.script.model_ready = False
    pool = ProbePool(timeout=2, ready_interval=3600)
    try:
        target = ProbeTarget(fake.endpoint, "uid-1")
        for _ in range(3):
            (result,) = await pool.probe([target], "m", "1")
            assert not result.model_ready
        assert (pool.stats.sent, pool.stats.reused) == (3, 0)
    finally:
        await pool.close()


async def test_probes_of_one_endpoint_share_one_kept_connection(fake: Fake) -> None:
    fake.script.model_ready = True
    pool = ProbePool(timeout=2, ready_interval=0)  # no reuse of answers: every probe is sent
    try:
        for _ in range(5):
            await pool.probe([ProbeTarget(fake.endpoint)], "m", "1")
        assert pool.stats.sent == 5
        assert pool.stats.clients_opened == 1
        # Every request of the five probes came over the same TCP connection.
        assert len(fake.script.peers) == 1
    finally:
        await pool.close()
    assert pool.stats.clients_closed == 1


async def test_a_closed_pool_probes_again_over_a_new_session(fake: Fake) -> None:
    fake.script.model_ready = True
    pool = ProbePool(timeout=2, ready_interval=0)
    try:
        await pool.probe([ProbeTarget(fake.endpoint)], "m", "1")
        await pool.close()  # closes the session and its kept connection
        (again,) = await pool.probe([ProbeTarget(fake.endpoint)], "m", "1")
        assert again.reason is ProbeReason.MODEL_READY
        assert len(fake.script.peers) == 2  # a new connection, from a new session
        assert (pool.stats.clients_opened, pool.stats.clients_closed) == (2, 1)
    finally:
        await pool.close()


async def test_idle_endpoints_are_closed_and_forgotten(fake: Fake) -> None:
    fake.script.model_ready = True
    pool = ProbePool(timeout=2, ready_interval=3600, idle_close=0)
    try:
        await pool.probe([ProbeTarget(fake.endpoint)], "m", "1")
        await pool.probe([ProbeTarget(fake.endpoint)], "m", "1")
        # With idle_close=0 the first call's client and answer are swept by the second.
        assert pool.stats.clients_closed >= 1
        assert pool.stats.reused == 0
    finally:
        await pool.close()


async def test_in_flight_probes_are_bounded_across_calls(fake: Fake) -> None:
    fake.script.model_ready = True
    fake.script.delay_s = 0.05
    pool = ProbePool(timeout=5, concurrency=2, rate=1000, ready_interval=0)
    try:
        targets = [ProbeTarget(fake.endpoint, str(i)) for i in range(6)]
        results = await pool.probe(targets, "m", "1")
        assert [r.model_ready for r in results] == [True] * 6
        assert fake.script.max_in_flight <= 2
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("tokens", "elapsed", "rate", "burst", "after"),
    [
        (0.0, 0.0, 10.0, 5.0, 0.0),
        (0.0, 0.1, 10.0, 5.0, 1.0),
        (0.5, 0.05, 10.0, 5.0, 1.0),
        (4.0, 10.0, 10.0, 5.0, 5.0),  # never more than the burst
        (2.0, -1.0, 10.0, 5.0, 2.0),  # a clock going back adds nothing
    ],
)
def test_refill(tokens: float, elapsed: float, rate: float, burst: float, after: float) -> None:
    assert refill(tokens, elapsed, rate=rate, burst=burst) == pytest.approx(after)


@pytest.mark.parametrize(
    ("tokens", "rate", "wait"),
    [(1.0, 10.0, 0.0), (3.0, 1.0, 0.0), (0.0, 10.0, 0.1), (0.5, 2.0, 0.25)],
)
def test_wait_for_token(tokens: float, rate: float, wait: float) -> None:
    assert wait_for_token(tokens, rate=rate) == pytest.approx(wait)
