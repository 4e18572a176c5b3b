"""nn.Module + state dict over HTTP, batching off, graceful SIGTERM, fatal load errors."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.runtime_proc import REPO_ROOT, RuntimeProcess, requires_runtime

pytestmark = [pytest.mark.runtime, requires_runtime, pytest.mark.timeout(180)]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A loopback HTTP server for ``tmp_path/www``: the model download source."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_state_dict_module_downloaded_with_batching_off(
    tmp_path: Path, file_server: tuple[Path, str]
) -> None:
    import torch

    from tests.runtime.toy_models import TinyMLP

    www, base_url = file_server
    torch.manual_seed(7)
    reference = TinyMLP(in_features=4, hidden=8, out_features=3).eval()
    torch.save(reference.state_dict(), www / "weights.pt")
    config = {
        "model": {
            "uri": f"{base_url}/weights.pt",
            "format": "pytorch",
            "module": "tests.runtime.toy_models:TinyMLP",
            "module_kwargs": {"in_features": 4, "hidden": 8, "out_features": 3},
        },
        "inputs": [{"name": "features", "dtype": "float32", "shape": [4]}],
        "batching": {"dynamic": False, "max_batch_size": 8},
        # The other live tests use small tensors, which travel inline: cover shared memory.
        "server": {"tensor_transport": "shared_memory"},
    }
    config_path = tmp_path / "runtime.json"
    config_path.write_text(json.dumps(config))
    proc = RuntimeProcess(
        ["--config", str(config_path)], model_name="tiny", log_path=tmp_path / "tiny.log"
    )
    with proc:
        proc.wait_ready(timeout=90)
        url = proc.ports.http_url
        model_config = httpx.get(f"{url}/v2/models/tiny/config", timeout=10).json()
        x = np.random.default_rng(3).standard_normal((6, 4), dtype=np.float32)
        tensor = {"name": "features", "shape": [6, 4], "datatype": "FP32"}
        body = {"inputs": [{**tensor, "data": x.ravel().tolist()}]}
        answer = httpx.post(f"{url}/v2/models/tiny/infer", json=body, timeout=30).json()
    assert proc.wait_exit(timeout=1) == 0
    assert "tensors cross to the model via shared memory" in proc.logs()
    assert model_config["max_batch_size"] == 8
    assert "dynamic_batching" not in model_config
    outputs = {o["name"]: o for o in answer["outputs"]}
    with torch.inference_mode():
        expected = reference(torch.from_numpy(x))
    logits = np.asarray(outputs["logits"]["data"], dtype=np.float32).reshape(6, 3)
    assert np.allclose(logits, expected["logits"].numpy(), atol=1e-5)
    assert outputs["top"]["datatype"] == "INT64"
    assert outputs["top"]["data"] == expected["top"].ravel().tolist()


def _infer(url: str, value: float) -> float:
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [value]}]}
    response = httpx.post(f"{url}/v2/models/slow/infer", json=body, timeout=60)
    response.raise_for_status()
    return float(response.json()["outputs"][0]["data"][0])


def test_sigterm_drains_in_flight_requests_and_exits_zero(tmp_path: Path) -> None:
    import torch

    torch.save({}, tmp_path / "empty.pt")
    proc = RuntimeProcess(
        [
            str(tmp_path / "empty.pt"),
            "--format=pytorch",
            "--module=tests.runtime.toy_models:SlowDouble",
            '--module-kwargs={"delay_s": 1.5}',
            "--input=x:float32:1",
            "--drain-timeout=20",
        ],
        model_name="slow",
        log_path=tmp_path / "slow.log",
    )
    with proc, ThreadPoolExecutor(max_workers=4) as pool:
        proc.wait_ready(timeout=90)
        url = proc.ports.http_url
        in_flight = [pool.submit(_infer, url, float(i)) for i in range(4)]
        time.sleep(0.5)  # the first batch is now inside the 1.5 s forward
        assert not any(f.done() for f in in_flight)
        signalled = time.monotonic()
        proc.signal()
        # Stop accepting: the model leaves the ready set while requests still run.
        deadline = time.monotonic() + 5
        with httpx.Client(timeout=1) as client:
            while client.get(f"{url}/v2/models/slow/ready").status_code == httpx.codes.OK:
                assert time.monotonic() < deadline, "model still ready 5 s after SIGTERM"
                time.sleep(0.05)
        with pytest.raises(httpx.HTTPStatusError):
            _infer(url, 100.0)
        assert [f.result(timeout=30) for f in in_flight] == [0.0, 2.0, 4.0, 6.0]
        code = proc.wait_exit(timeout=40)
        elapsed = time.monotonic() - signalled
    assert code == 0, proc.logs()
    assert "drained slow" in proc.logs()
    assert elapsed < 20, f"shutdown took {elapsed:.1f}s"


def test_exit_on_load_error_exits_nonzero_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.pt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gantry.runtime",
            str(missing),
            "--input=x:float32:4",
            "--exit-on-load-error",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 1
    assert f"model path {missing} does not exist" in result.stderr
