"""The PromQL provider against a real Prometheus (Debian's ``prometheus`` package).

A stdlib HTTP server plays two Triton pods whose counters grow with time: the
canary (10 successes and 1 failure per second, 15 ms each) and the stable
(20 successes per second, no failures). Prometheus scrapes both every second on
loopback, with ``namespace``/``pod`` labels as a PodMonitor would attach them.
Skipped, with the reason, only when no ``prometheus`` binary exists
(``make system-deps`` installs it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from triton_text import MODEL, VERSION, triton_metrics

from gantry.analysis.measurement import AnalysisTarget
from gantry.analysis.prometheus import PrometheusProvider
from gantry.analysis.verdict import evaluate
from gantry.api.spec import AnalysisSpec
from gantry.api.status import Verdict
from tests.support.loopback import refused_port

PROMETHEUS = shutil.which("prometheus") or (
    "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
)
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="no prometheus binary (Debian package 'prometheus'; `make system-deps` installs it)",
)

CANARY_POD = "resnet-bbbbbbbbbb-7d9f8c6b5-x2x9z"
STABLE_POD = "resnet-6f7d8c9b5-abcde"
WAIT_S = 45.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def triton_pods() -> Iterator[int]:
    """Serves /canary and /stable: Triton text with counters that grow with time."""
    start = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            t = 100 + time.monotonic() - start
            if self.path == "/canary":
                text = triton_metrics(success=10 * t, failure_backend=1 * t)
            else:
                text = triton_metrics(success=20 * t, duration_us=20 * t * 5000)
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _config(pods_port: int) -> str:
    def job(name: str, pod: str) -> str:
        return f"""
  - job_name: {name}
    metrics_path: /{name}
    static_configs:
      - targets: ["127.0.0.1:{pods_port}"]
        labels: {{namespace: ml, pod: {pod}}}"""

    return (
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:" + job("canary", CANARY_POD) + job("stable", STABLE_POD) + "\n"
    )


def _wait(url: str, ok: Callable[[bytes], bool], what: str, log: Path) -> None:
    """Poll until a 2xx answer's body is ``ok``; bounded by WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        # OSError: refused connections, timeouts and non-2xx answers (urllib's HTTPError).
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2.0) as r:
            if ok(r.read()):
                return
        time.sleep(0.3)
    pytest.fail(f"prometheus: {what} not within {WAIT_S}s; log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def prometheus(triton_pods: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert PROMETHEUS is not None
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(_config(triton_pods))
    port = _free_port()
    address = f"http://127.0.0.1:{port}"
    log = work / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(f"{address}/-/ready", lambda _: True, "ready", log)
        # Enough samples that a 5 s increase() is well covered for both pods.
        query = "min(count_over_time(nv_inference_request_success[6s]))"

        def covered(body: bytes) -> bool:
            result: list[Any] = json.loads(body)["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= 6

        query_url = f"{address}/api/v1/query?{urlencode({'query': query})}"
        _wait(query_url, covered, "6 s of samples", log)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def target(**kw: str) -> AnalysisTarget:
    fields = {
        "namespace": "ml",
        "name": "resnet",
        "deployment": "resnet-bbbbbbbbbb",
        "revision": "bbbbbbbbbb",
        "model": MODEL,
        "model_version": VERSION,
        **kw,
    }
    return AnalysisTarget(**fields)  # type: ignore[arg-type]


def spec(min_rate: float = 0.99, **extra: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "interval": "5s",
            "minRequestCount": 10,
            "successRate": {"min": min_rate},
            "latency": {"maxMs": 100},
            "provider": {"type": "prometheus"},
            **extra,
        }
    )


async def test_success_rate_latency_and_request_count(prometheus: str) -> None:
    async with aiohttp.ClientSession() as client:
        provider = PrometheusProvider(prometheus, client=client)
        m = await provider.measure(target(), spec(), datetime.now(UTC))
    assert m.error is None
    assert m.requests is not None
    # 11 requests/s over 5 s; increase() extrapolates, so not exactly 55.
    assert 40 <= m.requests <= 70
    assert m.successes.value is not None
    rate = m.successes.value / m.requests
    assert rate == pytest.approx(10 / 11, rel=1e-3)
    assert m.latency_mean_ms.value == pytest.approx(15.0, rel=1e-3)
    run = evaluate(m, spec())
    assert run.verdict is Verdict.FAILED  # 0.909 < 0.99
    assert evaluate(m, spec(min_rate=0.9)).verdict is Verdict.SUCCESSFUL


async def test_the_quantile_comes_from_the_summary(prometheus: str) -> None:
    s = spec(latency={"maxMs": 30, "quantile": 0.99})
    provider = PrometheusProvider(prometheus)
    try:
        m = await provider.measure(target(), s, datetime.now(UTC))
    finally:
        await provider.close()
    assert m.latency_quantile_ms is not None
    assert m.latency_quantile_ms.value == 31.0
    assert evaluate(m, s).verdict is Verdict.FAILED  # p99 31 ms > 30 ms


async def test_the_stable_pods_are_not_counted(prometheus: str) -> None:
    everything = "sum(increase(nv_inference_request_success{ {{selector}} }[{{interval}}]))"
    all_pods = (
        'sum(increase(nv_inference_request_success{namespace="{{namespace}}"}[{{interval}}]))'
    )
    s = spec(
        custom=[
            {"name": "canary-successes", "query": everything},
            {"name": "all-successes", "query": all_pods},
        ]
    )
    async with aiohttp.ClientSession() as client:
        m = await PrometheusProvider(prometheus, client=client).measure(
            target(), s, datetime.now(UTC)
        )
    canary = m.custom["canary-successes"].value
    total = m.custom["all-successes"].value
    assert canary is not None
    assert total is not None
    # The other model's counter does not grow: the canary selector sees only the
    # canary pod (10/s); without it the stable pod (20/s) is counted too.
    assert canary == pytest.approx(m.successes.value or 0, rel=1e-6)
    assert total == pytest.approx(3 * canary, rel=0.05)


@pytest.mark.parametrize(
    "kw",
    [{"model": "bert"}, {"deployment": "resnet-cccccccccc"}, {"model_version": "9"}],
    ids=["unknown-model", "unknown-deployment", "unknown-version"],
)
async def test_no_series_is_no_data_and_inconclusive(prometheus: str, kw: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as client:
        m = await PrometheusProvider(prometheus, client=client).measure(
            target(**kw), spec(), datetime.now(UTC)
        )
    assert m.error is None
    assert m.successes.value is None
    assert m.requests is None
    assert evaluate(m, spec()).verdict is Verdict.INCONCLUSIVE


async def test_an_unreachable_prometheus_is_an_error() -> None:
    with refused_port() as port:
        provider = PrometheusProvider(f"http://127.0.0.1:{port}", timeout=2.0)
        try:
            m = await provider.measure(target(), spec(), datetime.now(UTC))
        finally:
            await provider.close()
    assert m.error is not None
    assert evaluate(m, spec()).verdict is Verdict.ERROR
