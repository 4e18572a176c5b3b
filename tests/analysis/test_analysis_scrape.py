"""The scrape provider: canary pods' /metrics from a loopback aiohttp server that answers what
each test scripts, and one real server for timeouts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from triton_text import MODEL, VERSION, triton_metrics

from gantry.analysis.measurement import AnalysisTarget, PodEndpoint
from gantry.analysis.providers import AnalysisProviders
from gantry.analysis.scrape import ScrapeProvider
from gantry.analysis.verdict import evaluate
from gantry.api.spec import AnalysisSpec
from gantry.api.status import Verdict
from tests.reconciler.fake_apiserver import serve_loopback
from tests.support.loopback import refused_port

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REV = "bbbbbbbbbb"
SPEC = AnalysisSpec.model_validate(
    {"successRate": {"min": 0.99}, "latency": {"maxMs": 100, "quantile": 0.99}}
)


@dataclass
class FakePods:
    """Pods served at ``/<pod>/metrics`` on one loopback port: per-pod counters or a body;
    a pod that is down has a URL where connections are refused."""

    url: str = ""
    refused: str = ""
    success: dict[str, float] = field(default_factory=dict)
    failure: dict[str, float] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    body: dict[str, str] = field(default_factory=dict)

    async def __call__(self, request: web.BaseRequest) -> web.Response:
        pod = request.path.split("/")[1]
        if pod in self.body:
            return web.Response(text=self.body[pod])
        text = triton_metrics(success=self.success[pod], failure_backend=self.failure.get(pod, 0))
        return web.Response(text=text)

    def target(self, *pods: str, revision: str = REV) -> AnalysisTarget:
        def url(pod: str) -> str:
            return f"{self.refused if pod in self.down else self.url}/{pod}/metrics"

        return AnalysisTarget(
            namespace="ml",
            name="resnet",
            deployment=f"resnet-{revision}",
            revision=revision,
            model=MODEL,
            model_version=VERSION,
            pods=tuple(PodEndpoint(name=p, url=url(p)) for p in pods),
        )


@dataclass
class Served:
    pods: FakePods
    session: aiohttp.ClientSession


@pytest_asyncio.fixture(loop_scope="function")
async def served() -> AsyncIterator[Served]:
    pods = FakePods()
    with refused_port() as port:
        async with serve_loopback(pods) as url, aiohttp.ClientSession() as session:
            pods.url, pods.refused = url, f"http://127.0.0.1:{port}"
            yield Served(pods, session)


@pytest.fixture
def pods(served: Served) -> FakePods:
    return served.pods


@pytest.fixture
def provider(served: Served) -> ScrapeProvider:
    return ScrapeProvider(client=served.session, timeout=2.0)


async def test_first_scrape_warms_then_deltas_are_measured(
    pods: FakePods, provider: ScrapeProvider
) -> None:
    pods.success.update(a=100, b=200)
    first = await provider.measure(pods.target("a", "b"), SPEC, T0)
    assert first.warming
    pods.success.update(a=160, b=230)
    pods.failure.update(a=1)
    second = await provider.measure(pods.target("a", "b"), SPEC, T0 + timedelta(seconds=30))
    assert not second.warming
    assert (second.successes.value, second.failures.value) == (90, 1)
    assert second.latency_mean_ms.value == pytest.approx(15.0)
    assert second.latency_quantile_ms is not None
    assert second.latency_quantile_ms.value == 31.0
    run = evaluate(second, SPEC)
    assert run.verdict is Verdict.FAILED  # one failure in 91 requests: 0.989 < 0.99
    assert run.metrics[1].value == pytest.approx(90 / 91)


async def test_a_pod_that_does_not_answer_is_counted_on_its_next_scrape(
    pods: FakePods, provider: ScrapeProvider
) -> None:
    pods.success.update(a=100, b=100)
    await provider.measure(pods.target("a", "b"), SPEC, T0)
    pods.success.update(a=110, b=150)
    pods.down.add("b")
    partial = await provider.measure(pods.target("a", "b"), SPEC, T0 + timedelta(seconds=30))
    assert partial.successes.value == 10
    assert "1 did not answer" in partial.source
    pods.down.clear()
    pods.success.update(a=120, b=160)
    later = await provider.measure(pods.target("a", "b"), SPEC, T0 + timedelta(seconds=60))
    assert later.successes.value == 10 + 60  # b: both intervals at once, never lost


async def test_no_pod_answering_is_an_error_and_keeps_the_snapshot(
    pods: FakePods, provider: ScrapeProvider
) -> None:
    pods.success.update(a=100)
    await provider.measure(pods.target("a"), SPEC, T0)
    pods.down.add("a")
    failed = await provider.measure(pods.target("a"), SPEC, T0 + timedelta(seconds=30))
    assert failed.error is not None
    assert "Cannot connect to host 127.0.0.1" in failed.error  # aiohttp's refused connect
    assert evaluate(failed, SPEC).verdict is Verdict.ERROR
    pods.down.clear()
    pods.success.update(a=130)
    back = await provider.measure(pods.target("a"), SPEC, T0 + timedelta(seconds=60))
    assert back.successes.value == 30


async def test_no_canary_pods_is_no_data(pods: FakePods, provider: ScrapeProvider) -> None:
    m = await provider.measure(pods.target(), SPEC, T0)
    assert (m.requests, m.error, m.warming) == (None, None, False)
    assert evaluate(m, SPEC).verdict is Verdict.INCONCLUSIVE


async def test_an_unknown_model_is_no_data_not_zero(
    pods: FakePods, provider: ScrapeProvider
) -> None:
    pods.success.update(a=100)
    other = replace(pods.target("a"), model="bert", model_version=None)
    await provider.measure(other, SPEC, T0)
    m = await provider.measure(other, SPEC, T0 + timedelta(seconds=30))
    assert m.requests is None
    assert evaluate(m, SPEC).verdict is Verdict.INCONCLUSIVE


async def test_a_new_revision_starts_warming_again(
    pods: FakePods, provider: ScrapeProvider
) -> None:
    pods.success.update(a=100)
    await provider.measure(pods.target("a"), SPEC, T0)
    m = await provider.measure(
        pods.target("a", revision="cccccccccc"), SPEC, T0 + timedelta(seconds=30)
    )
    assert m.warming


async def test_forget_drops_the_snapshot(pods: FakePods, provider: ScrapeProvider) -> None:
    pods.success.update(a=100)
    await provider.measure(pods.target("a"), SPEC, T0)
    assert provider.snapshot("ml/resnet") is not None
    provider.forget("ml/resnet")
    assert provider.snapshot("ml/resnet") is None


async def test_an_oversized_body_is_refused(served: Served) -> None:
    pods = served.pods
    pods.body["a"] = "x 1\n" * 1000
    small = ScrapeProvider(client=served.session, max_bytes=100)
    m = await small.measure(pods.target("a"), SPEC, T0)
    assert m.error is not None
    assert "larger than 100 bytes" in m.error


async def test_garbage_lines_do_not_blind_the_analysis(
    pods: FakePods, provider: ScrapeProvider
) -> None:
    pods.body["a"] = "garbage{{{ line\n" + triton_metrics(success=10)
    await provider.measure(pods.target("a"), SPEC, T0)
    pods.body["a"] = "garbage{{{ line\n" + triton_metrics(success=40)
    m = await provider.measure(pods.target("a"), SPEC, T0 + timedelta(seconds=30))
    assert m.successes.value == 30


async def test_dispatcher_picks_scrape_and_reports_a_missing_prometheus(pods: FakePods) -> None:
    pods.success.update(a=5)
    providers = AnalysisProviders()  # its own session, made on the first request
    try:
        first = await providers.measure(pods.target("a"), SPEC, T0)
        assert first.warming
        prom = AnalysisSpec.model_validate({"provider": {"type": "prometheus"}})
        m = await providers.measure(pods.target("a"), prom, T0)
    finally:
        await providers.close()
    assert m.error is not None
    assert "no Prometheus address" in m.error
    providers.forget("ml/resnet")
    assert providers.scrape.snapshot("ml/resnet") is None


# --- one real loopback server: timeouts and concurrency against real sockets -------------


@pytest.fixture
def slow_server() -> Iterator[Callable[[str], str]]:
    """A stdlib HTTP server: /fast answers, /slow answers after 3 s."""
    state = {"success": 100.0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/slow":
                threading.Event().wait(3.0)
            body = triton_metrics(success=state["success"]).encode()
            state["success"] += 50
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
    port = server.server_address[1]
    yield lambda path: f"http://127.0.0.1:{port}{path}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_a_slow_pod_times_out_within_the_bound(slow_server: Callable[[str], str]) -> None:
    provider = ScrapeProvider(timeout=0.5)
    try:
        t = AnalysisTarget(
            namespace="ml",
            name="resnet",
            deployment=f"resnet-{REV}",
            revision=REV,
            model=MODEL,
            pods=(
                PodEndpoint("fast", slow_server("/fast")),
                PodEndpoint("slow", slow_server("/slow")),
            ),
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        await provider.measure(t, SPEC, T0)
        m = await provider.measure(t, SPEC, T0 + timedelta(seconds=30))
        assert loop.time() - started < 2.5  # two rounds, each bounded by the 0.5 s timeout
        assert m.successes.value == 50
        assert "no answer within 0.5s" in m.source
    finally:
        await provider.close()
