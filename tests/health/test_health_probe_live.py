"""Probes against a live Gantry runtime (real Triton) and against a dead port."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from gantry.health import ProbeReason, probe_endpoints, summarize
from tests.support.runtime_proc import RuntimeProcess, requires_runtime, write_mlp

pytestmark = [pytest.mark.runtime, requires_runtime, pytest.mark.timeout(180)]
R = ProbeReason


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    root = tmp_path_factory.mktemp("live")
    model = write_mlp(root / "model.pt")
    with RuntimeProcess(
        [str(model), "--input=x:float32:4"], model_name="mlp", log_path=root / "runtime.log"
    ) as proc:
        proc.wait_ready(timeout=90)
        yield proc


@pytest.fixture
def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def test_live_runtime_and_dead_port(live: RuntimeProcess, dead_endpoint: str) -> None:
    endpoints = [live.ports.http_endpoint, live.ports.http_url, dead_endpoint]
    started = time.monotonic()
    results = await probe_endpoints(endpoints, "mlp", "1", timeout=3.0, concurrency=2)
    assert time.monotonic() - started < 3.0
    assert [r.reason for r in results] == [R.MODEL_READY, R.MODEL_READY, R.SERVER_UNREACHABLE]
    assert results[0].server_ready
    assert results[0].model_ready
    assert summarize(results)[:2] == (2, R.SERVER_UNREACHABLE)


async def test_live_runtime_without_version(live: RuntimeProcess) -> None:
    endpoints = [live.ports.http_endpoint]
    [result] = await probe_endpoints(endpoints, "mlp", None, timeout=3.0, concurrency=1)
    assert (result.reason, result.message) == (R.MODEL_READY, "model mlp ready")


async def test_live_runtime_other_model_and_version(live: RuntimeProcess) -> None:
    endpoints = [live.ports.http_endpoint]
    [other] = await probe_endpoints(
        endpoints, "resnet", "1", timeout=3.0, concurrency=1, headers=live.headers
    )
    [wrong_version] = await probe_endpoints(
        endpoints, "mlp", "7", timeout=3.0, concurrency=1, headers=live.headers
    )
    assert other.reason is R.MODEL_UNAVAILABLE
    assert other.message == "model resnet is not in the repository"
    assert other.server_ready
    assert wrong_version.reason is R.MODEL_UNAVAILABLE
