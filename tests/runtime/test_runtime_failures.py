"""Models that cannot load: Triton stays up and reports why, through the probe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gantry.health import ModelProbe, ProbeReason, probe_endpoints
from tests.support.runtime_proc import RuntimeProcess, requires_runtime

pytestmark = [pytest.mark.runtime, requires_runtime, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RuntimeProcess]]:
    """Two runtimes whose models fail to load, started side by side."""
    import torch

    root = tmp_path_factory.mktemp("failing")
    corrupt = root / "corrupt.pt"
    corrupt.write_bytes(b"this is not a TorchScript archive")
    weights = root / "weights.pt"
    torch.save({}, weights)
    procs = {
        "corrupt": RuntimeProcess(
            [str(corrupt), "--input=x:float32:4"],
            model_name="corrupt",
            log_path=root / "corrupt.log",
        ),
        "raising": RuntimeProcess(
            [
                str(weights),
                "--format=pytorch",
                "--module=tests.runtime.toy_models:broken_checkpoint",
                "--input=x:float32:4",
            ],
            model_name="raising",
            log_path=root / "raising.log",
        ),
    }
    for proc in procs.values():
        proc.start()
    try:
        for proc in procs.values():
            # A failed model never becomes ready; the server does.
            proc.wait_ready(timeout=90, model=False)
        yield procs
    finally:
        codes = {name: proc.stop(timeout=45) for name, proc in procs.items()}
    # A requested stop is a clean exit even while the model is in the failed state.
    assert codes == {"corrupt": 0, "raising": 0}


async def probe(proc: RuntimeProcess) -> ModelProbe:
    [result] = await probe_endpoints(
        [proc.ports.http_url],
        proc.model_name,
        str(proc.model_version),
        timeout=5.0,
        concurrency=1,
        headers=proc.headers,
    )
    return result


async def test_corrupt_torchscript_is_reported_with_tritons_message(
    failing: dict[str, RuntimeProcess],
) -> None:
    result = await probe(failing["corrupt"])
    assert result.reason is ProbeReason.MODEL_LOAD_FAILED, result
    assert result.server_ready
    assert not result.model_ready
    assert "Triton failed to load model corrupt version 1" in result.message
    # torch's own words about the archive, relayed through Triton's repository index.
    assert "failed to load TorchScript model" in result.message
    assert "PytorchStreamReader" in result.message or "zip" in result.message


async def test_raising_module_is_reported_with_its_exception(
    failing: dict[str, RuntimeProcess],
) -> None:
    result = await probe(failing["raising"])
    assert result.reason is ProbeReason.MODEL_LOAD_FAILED, result
    assert "broken_checkpoint raised RuntimeError" in result.message
    assert "checkpoint schema v3 is not supported" in result.message


async def test_without_the_token_the_failure_is_still_unavailable(
    failing: dict[str, RuntimeProcess],
) -> None:
    proc = failing["corrupt"]
    [result] = await probe_endpoints(
        [proc.ports.http_endpoint], proc.model_name, "1", timeout=5.0, concurrency=1
    )
    # The index is restricted: the probe cannot quote Triton, but does not raise either.
    assert result.reason is ProbeReason.MODEL_UNAVAILABLE, result
    assert "403" in result.message


def test_process_keeps_serving_the_failure(failing: dict[str, RuntimeProcess]) -> None:
    for proc in failing.values():
        assert "model load failed; serving the failure through Triton" in proc.logs()
