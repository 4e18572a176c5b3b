"""The runtime serving a TorchScript MLP: real Triton, real clients, real numbers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.runtime_proc import RuntimeProcess, requires_runtime, write_mlp

pytestmark = [
    pytest.mark.runtime,
    requires_runtime,
    pytest.mark.timeout(180),
    # The reference is computed with torch.jit.load, deprecated (not removed) in torch 2.10+.
    pytest.mark.filterwarnings("ignore:.*torch.jit:FutureWarning"),
]

MODEL = "mlp"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mlp(tmp_path_factory.mktemp("mlp") / "model.pt", in_features=4, out_features=3)


@pytest.fixture(scope="module")
def served(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    proc = RuntimeProcess(
        [
            str(model_path),
            "--input=x:float32:4",
            "--max-batch-size=16",
            "--preferred-batch-size=4",
            "--preferred-batch-size=8",
            "--max-queue-delay-us=2000",
        ],
        model_name=MODEL,
        log_path=tmp_path_factory.mktemp("logs") / "mlp.log",
    )
    with proc:
        proc.wait_ready(timeout=90)
        yield proc
    assert proc.wait_exit(timeout=1) == 0, proc.logs()


def direct(model_path: Path, x: np.ndarray) -> np.ndarray:
    import torch

    module = torch.jit.load(str(model_path))
    with torch.inference_mode():
        out: np.ndarray = module(torch.from_numpy(x)).numpy()
    return out


def batch(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 4), dtype=np.float32)


def test_http_inference_matches_direct_call(served: RuntimeProcess, model_path: Path) -> None:
    import tritonclient.http as http

    x = batch(5)
    client = http.InferenceServerClient(served.ports.http_endpoint, network_timeout=30)
    try:
        inp = http.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(MODEL, [inp], model_version="1")
    finally:
        client.close()
    got = result.as_numpy("output__0")
    assert got.shape == (5, 3)
    assert np.allclose(got, direct(model_path, x), atol=1e-5)


def test_grpc_inference_matches_direct_call(served: RuntimeProcess, model_path: Path) -> None:
    import tritonclient.grpc as grpc

    x = batch(3, seed=1)
    client = grpc.InferenceServerClient(served.ports.grpc_endpoint)
    try:
        inp = grpc.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(MODEL, [inp], client_timeout=30)
    finally:
        client.close()
    assert np.allclose(result.as_numpy("output__0"), direct(model_path, x), atol=1e-5)


def test_model_config_shows_dynamic_batching(served: RuntimeProcess) -> None:
    config = httpx.get(f"{served.ports.http_url}/v2/models/{MODEL}/config", timeout=10).json()
    assert config["max_batch_size"] == 16
    assert config["dynamic_batching"]["preferred_batch_size"] == [4, 8]
    assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 2000
    assert [i["name"] for i in config["input"]] == ["x"]
    # Outputs were inferred by running the model once: name, dtype and shape.
    assert [(o["name"], o["data_type"], o["dims"]) for o in config["output"]] == [
        ("output__0", "TYPE_FP32", [3])
    ]


async def test_concurrent_requests_are_batched_and_correct(
    served: RuntimeProcess, model_path: Path
) -> None:
    import tritonclient.http.aio as aio

    inputs = [batch(1 + i % 3, seed=100 + i) for i in range(32)]
    client = aio.InferenceServerClient(served.ports.http_endpoint, conn_timeout=30)

    async def one(x: np.ndarray) -> np.ndarray:
        inp = aio.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = await client.infer(MODEL, [inp])
        out: np.ndarray = result.as_numpy("output__0")
        return out

    try:
        before = await _counts(client, served)
        async with asyncio.timeout(60):
            outputs = await asyncio.gather(*(one(x) for x in inputs))
        after = await _counts(client, served)
    finally:
        await client.close()
    expected = direct(model_path, np.concatenate(inputs))
    assert np.allclose(np.concatenate(outputs), expected, atol=1e-5)
    requests = after[0] - before[0]
    executions = after[1] - before[1]
    assert requests == len(inputs)
    # Dynamic batching: fewer model executions than requests.
    assert executions < requests, (requests, executions)


async def _counts(client: Any, served: RuntimeProcess) -> tuple[int, int]:
    # The statistics endpoint is restricted: it needs the runtime's access token.
    stats = await client.get_inference_statistics(MODEL, headers=served.headers)
    model = stats["model_stats"][0]
    # success.count counts requests; inference_count would count batch rows.
    return int(model["inference_stats"]["success"]["count"]), int(model["execution_count"])


def test_metrics_endpoint_exports_triton_counters(served: RuntimeProcess) -> None:
    text = httpx.get(f"http://127.0.0.1:{served.ports.metrics}/metrics", timeout=10).text
    assert f'nv_inference_request_success{{model="{MODEL}",version="1"}}' in text
    assert "nv_inference_queue_duration_us" in text
