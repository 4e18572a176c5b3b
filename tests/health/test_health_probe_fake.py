"""Probe decisions against a scripted KServe v2 server on loopback.

A real Triton cannot easily be made to sit in every state (loading, not ready,
restricted index, slow); this aiohttp server answers the same HTTP API with
whatever the test scripts, so each branch of the probe runs over a real socket.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from gantry.health import ProbeReason, probe_endpoint, probe_endpoints
from tests.health.kserve_fake import Fake

pytestmark = pytest.mark.timeout(60)
R = ProbeReason


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A port that completes TCP handshakes (kernel backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


async def test_ready_model_skips_the_index(fake: Fake) -> None:
    fake.script.model_ready = True
    result = await probe_endpoint(f"http://{fake.endpoint}", "m", "3", timeout=2)
    assert (result.reason, result.server_ready, result.model_ready) == (R.MODEL_READY, True, True)
    assert result.message == "model m version 3 ready"
    assert fake.script.paths == ["GET /v2/health/ready", "GET /v2/models/m/versions/3/ready"]


async def test_load_failure_quotes_triton_without_the_stub_stack(fake: Fake) -> None:
    fake.script.index = [
        {"name": "other", "version": "1", "state": "READY"},
        {
            "name": "m",
            "version": "1",
            "state": "UNAVAILABLE",
            "reason": "Internal: RuntimeError: bad weights\n\nAt:\n  /x/model.py(9): initialize\n",
        },
    ]
    result = await probe_endpoint(fake.endpoint, "m", "1", timeout=2)
    assert result.reason is R.MODEL_LOAD_FAILED
    assert result.message == (
        "Triton failed to load model m version 1: Internal: RuntimeError: bad weights"
    )


@pytest.mark.parametrize(
    ("server_ready", "entry", "reason", "message"),
    [
        (False, {"state": "LOADING"}, R.MODEL_LOADING, "model m version 1 is loading"),
        (True, {"state": "UNLOADING"}, R.MODEL_UNAVAILABLE, "model m version 1 is unloading"),
        (
            True,
            {"state": "UNAVAILABLE", "reason": "unloaded"},
            R.MODEL_UNAVAILABLE,
            "model m version 1 is unavailable",
        ),
        (False, None, R.SERVER_NOT_READY, "server not ready"),
        (True, None, R.MODEL_UNAVAILABLE, "model m is not in the repository"),
    ],
)
async def test_states_from_the_index(
    fake: Fake,
    server_ready: bool,
    entry: dict[str, str] | None,
    reason: ProbeReason,
    message: str,
) -> None:
    fake.script.server_ready = server_ready
    fake.script.index = [{"name": "m", "version": "1", **entry}] if entry else []
    result = await probe_endpoint(fake.endpoint, "m", "1", timeout=2)
    assert (result.reason, result.message, result.server_ready) == (reason, message, server_ready)


async def test_restricted_index_degrades_to_unavailable(fake: Fake) -> None:
    fake.script.index_status = 403
    result = await probe_endpoint(fake.endpoint, "m", None, timeout=2)
    assert result.reason is R.MODEL_UNAVAILABLE
    assert "repository index unreadable" in result.message
    assert "403" in result.message
    assert fake.script.paths[1] == "GET /v2/models/m/ready"


async def test_slow_server_after_answering_is_unavailable_not_unreachable(fake: Fake) -> None:
    fake.script.index = [{"name": "m", "version": "1", "state": "LOADING"}]
    fake.script.delay_s = 0.3  # three calls: the third misses the 0.8 s budget
    started = time.monotonic()
    result = await probe_endpoint(fake.endpoint, "m", "1", timeout=0.8)
    assert time.monotonic() - started < 1.5
    assert (result.reason, result.server_ready) == (R.MODEL_UNAVAILABLE, True)
    assert result.message == "no complete answer within 0.8s"


async def test_dead_port_is_unreachable_fast() -> None:
    with socket.socket() as s:  # bind, learn the port, close: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = await probe_endpoint(f"127.0.0.1:{port}", "m", "1", timeout=2)
    assert time.monotonic() - started < 2
    assert (result.reason, result.server_ready, result.model_ready) == (
        R.SERVER_UNREACHABLE,
        False,
        False,
    )
    assert "Connect" in result.message


async def test_silent_server_is_unreachable_within_the_timeout(blackhole: str) -> None:
    started = time.monotonic()
    result = await probe_endpoint(blackhole, "m", "1", timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.reason is R.SERVER_UNREACHABLE
    assert result.message == "no complete answer within 0.5s"
    assert 0.4 < elapsed < 1.5


async def test_concurrency_is_bounded_and_order_kept(fake: Fake, blackhole: str) -> None:
    fake.script.model_ready = True
    fake.script.delay_s = 0.05
    endpoints = [fake.endpoint] * 12 + [blackhole]
    results = await probe_endpoints(endpoints, "m", "1", timeout=1.0, concurrency=3)
    assert [r.reason for r in results] == [R.MODEL_READY] * 12 + [R.SERVER_UNREACHABLE]
    assert [r.endpoint for r in results] == endpoints
    assert fake.script.max_in_flight <= 3


async def test_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await probe_endpoints(["a:1"], "m", None, timeout=1, concurrency=0)
    with pytest.raises(ValueError, match="timeout"):
        await probe_endpoint("a:1", "m", None, timeout=0)
