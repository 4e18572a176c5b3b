"""PromQL building and the Prometheus provider's response handling.

The provider talks to a loopback aiohttp server that answers what each test scripts (a
real Prometheus cannot be told to answer a 502 page); tests/analysis/
test_analysis_prometheus_real.py runs it against a real one.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from gantry.analysis.measurement import AnalysisTarget
from gantry.analysis.prometheus import PrometheusProvider, QueryError, parse_result
from gantry.analysis.promql import (
    builtin_queries,
    canary_selector,
    duration,
    pod_regex,
    quote,
    render_custom,
)
from gantry.analysis.verdict import evaluate
from gantry.api.spec import AnalysisSpec, CustomCheck
from gantry.api.status import Verdict
from tests.reconciler.fake_apiserver import serve_loopback
from tests.support.loopback import refused_port

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TARGET = AnalysisTarget(
    namespace="ml",
    name="resnet",
    deployment="resnet-bbbbbbbbbb",
    revision="bbbbbbbbbb",
    model="resnet50",
    model_version="3",
)
SPEC = AnalysisSpec.model_validate(
    {
        "interval": "1m30s",
        "successRate": {"min": 0.99},
        "latency": {"maxMs": 100, "quantile": 0.99},
        "provider": {"type": "prometheus", "address": "http://prom.test:9090"},
        "custom": [
            {
                "name": "queue-ms",
                "query": "sum(rate(nv_inference_queue_duration_us{ {{selector}} }[{{interval}}]))"
                " / 1000",
                "max": 5,
            }
        ],
    }
)


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (90, "90s"), (0.5, "500ms"), (1.25, "1250ms")], ids=str
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_quote_escapes() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'


def test_pod_regex_matches_only_the_canary_pods() -> None:
    rx = re.compile(pod_regex("resnet-bbbbbbbbbb"))
    assert rx.fullmatch("resnet-bbbbbbbbbb-7d9f8c6b5-x2x9z")
    assert not rx.fullmatch("resnet-6f7d8c9b-abcde")  # the stable Deployment "resnet"
    assert not rx.fullmatch("resnet-bbbbbbbbbb-extra-7d9f8c6b5-x2x9z")
    assert pod_regex("a.b") == "a\\.b-[a-z0-9]+-[a-z0-9]+"


def test_builtin_queries() -> None:
    q = builtin_queries(TARGET, SPEC)
    sel = 'namespace="ml",pod=~"resnet-bbbbbbbbbb-[a-z0-9]+-[a-z0-9]+",model="resnet50",version="3"'
    assert q.successes == f"sum(increase(nv_inference_request_success{{{sel}}}[90s]))"
    assert q.failures == f"sum(increase(nv_inference_request_failure{{{sel}}}[90s]))"
    assert q.duration_us == f"sum(increase(nv_inference_request_duration_us{{{sel}}}[90s]))"
    assert q.quantile_us == (
        f'max(max_over_time(nv_inference_request_summary_us{{{sel},quantile=~"0\\\\.990*"}}[90s]))'
    )


def test_a_custom_selector_replaces_the_pod_regex() -> None:
    t = AnalysisTarget(**{**TARGET.__dict__, "selector": 'revision="bbbbbbbbbb"'})
    assert canary_selector(t) == 'revision="bbbbbbbbbb"'
    assert builtin_queries(t, SPEC).successes.startswith(
        'sum(increase(nv_inference_request_success{revision="bbbbbbbbbb",model="resnet50"'
    )


def test_custom_templates_are_filled() -> None:
    check = CustomCheck(
        name="x", query="f({{ namespace }}, {{model}}, {{interval}}) + g({{selector}})"
    )
    assert render_custom(check, TARGET, SPEC) == (
        f"f(ml, resnet50, 90s) + g({canary_selector(TARGET)})"
    )


def vector(*values: str) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [1.0, v]} for v in values],
        },
    }


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (vector("12.5"), 12.5),
        (vector(), None),  # empty vector: no data, never 0
        (vector("NaN"), None),
        (vector("+Inf"), float("inf")),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}, 3.0),
    ],
    ids=["value", "empty", "nan", "inf", "scalar"],
)
def test_parse_result(payload: dict[str, Any], value: float | None) -> None:
    assert parse_result(payload) == value


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (vector("1", "2"), "2 series; aggregate"),
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "bad_data"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "matrix"),
        (vector("abc"), "bad sample value"),
        ([1, 2], "not a JSON object"),
    ],
    ids=["several-series", "error", "matrix", "bad-value", "not-object"],
)
def test_parse_result_errors(payload: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_result(payload)


@dataclass
class FakePrometheus:
    """Answers ``/api/v1/query`` by the metric name in the query: a JSON body, or a
    ``(status, text)`` pair; an empty vector when no name matches. Records every request."""

    answers: dict[str, Any] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def __call__(self, request: web.BaseRequest) -> web.Response:
        self.seen.append((request.path, dict(request.query)))
        query = request.query["query"]
        for key, answer in self.answers.items():
            if key in query:
                if isinstance(answer, tuple):
                    return web.Response(status=answer[0], text=answer[1])
                return web.json_response(answer)
        return web.json_response(vector())


@dataclass
class Served:
    fake: FakePrometheus
    url: str
    session: aiohttp.ClientSession

    def provider(self, answers: dict[str, Any]) -> PrometheusProvider:
        self.fake.answers = answers
        return PrometheusProvider(self.url, client=self.session)


@pytest_asyncio.fixture(loop_scope="function")
async def prom() -> AsyncIterator[Served]:
    fake = FakePrometheus()
    async with serve_loopback(fake) as url, aiohttp.ClientSession() as session:
        yield Served(fake, url, session)
    assert fake.seen
    for path, params in fake.seen:
        assert path == "/api/v1/query"
        assert params["time"] == f"{T0.timestamp():.3f}"


async def test_measure_assembles_every_value(prom: Served) -> None:
    p = prom.provider(
        {
            "request_success": vector("990"),
            "request_failure": vector("10"),
            "request_duration": vector("29700000"),
            "summary_us": vector("45000"),
            "queue_duration": vector("2.5"),
        }
    )
    m = await p.measure(TARGET, SPEC, T0)
    assert (m.successes.value, m.failures.value, m.requests) == (990, 10, 1000)
    assert m.latency_mean_ms.value == pytest.approx(30.0)
    assert m.latency_quantile_ms is not None
    assert m.latency_quantile_ms.value == 45.0
    assert m.custom["queue-ms"].value == 2.5
    assert "nv_inference_queue_duration_us{ namespace=" in m.custom["queue-ms"].query
    assert evaluate(m, SPEC).verdict is Verdict.SUCCESSFUL


async def test_no_failure_series_means_no_failures(prom: Served) -> None:
    p = prom.provider({"request_success": vector("500")})
    m = await p.measure(TARGET, AnalysisSpec(), T0)
    assert (m.failures.value, m.requests) == (None, 500)


async def test_unknown_model_is_no_data_and_inconclusive(prom: Served) -> None:
    m = await prom.provider({}).measure(TARGET, SPEC, T0)
    assert m.requests is None
    assert m.error is None
    assert evaluate(m, SPEC).verdict is Verdict.INCONCLUSIVE


async def test_unreachable_prometheus_is_an_error_measurement() -> None:
    with refused_port() as port:
        p = PrometheusProvider(f"http://127.0.0.1:{port}")  # its own session, closed here
        try:
            m = await p.measure(TARGET, SPEC, T0)
        finally:
            await p.close()
    assert m.error is not None
    assert "unreachable" in m.error
    assert evaluate(m, SPEC).verdict is Verdict.ERROR


async def test_a_bad_custom_query_is_an_error_for_that_metric_only(prom: Served) -> None:
    bad = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}
    p = prom.provider(
        {
            "request_success": vector("1000"),
            "request_duration": vector("1000000"),
            "summary_us": vector("1000"),
            "queue_duration": (400, json.dumps(bad)),
        }
    )
    m = await p.measure(TARGET, SPEC, T0)
    run = evaluate(m, SPEC)
    assert run.verdict is Verdict.ERROR
    queue = next(r for r in run.metrics if r.name == "queue-ms")
    assert queue.message == "bad_data: 1:5: parse error"
    assert next(r for r in run.metrics if r.name == "success-rate").verdict is Verdict.SUCCESSFUL


async def test_a_non_json_answer_is_an_error(prom: Served) -> None:
    m = await prom.provider({"request_success": (502, "<html>bad gateway</html>")}).measure(
        TARGET, SPEC, T0
    )
    assert m.error is not None
    assert "HTTP 502" in m.error
