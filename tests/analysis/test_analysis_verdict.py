"""Judging one interval: every verdict path, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gantry.analysis.measurement import Measurement, Reading
from gantry.analysis.verdict import evaluate, failing_metrics, latency_metric_name, summary, worst
from gantry.api.spec import AnalysisSpec
from gantry.api.status import Verdict

T0 = datetime(2025, 1, 1, tzinfo=UTC)
S, F, N, E = (
    Verdict.SUCCESSFUL,
    Verdict.FAILED,
    Verdict.INCONCLUSIVE,
    Verdict.ERROR,
)  # N: iNconclusive


def spec(**kw: Any) -> AnalysisSpec:
    body: dict[str, Any] = {"minRequestCount": 10, "successRate": {"min": 0.99}}
    body.update(kw)
    return AnalysisSpec.model_validate(body)


def m(
    ok: float | None = 1000,
    failed: float | None = 0,
    *,
    mean: float | None = 20.0,
    quantile: float | None = None,
    custom: dict[str, Reading] | None = None,
    error: str | None = None,
) -> Measurement:
    return Measurement(
        time=T0,
        revision="r",
        successes=Reading(ok, query="sum(increase(success))"),
        failures=Reading(failed, query="sum(increase(failure))"),
        latency_mean_ms=Reading(mean, query="mean"),
        latency_quantile_ms=Reading(quantile, query="q") if quantile is not None else None,
        custom=custom or {},
        error=error,
    )


PROM = {"provider": {"type": "prometheus"}}
GPU_CHECK = {"custom": [{"name": "gpu-mem", "query": "max(x{ {{selector}} })", "max": 0.9}], **PROM}

CASES = [
    ("all-good", spec(), m(), S, {"success-rate": S}),
    ("success-rate-at-the-threshold", spec(), m(990, 10), S, {"success-rate": S}),
    ("success-rate-below", spec(), m(980, 20), F, {"success-rate": F}),
    ("failures-without-a-failure-series", spec(), m(1000, None), S, {"success-rate": S}),
    ("no-request-data", spec(), m(None, None), N, {"success-rate": N, "request-count": N}),
    ("too-little-traffic", spec(), m(5, 4), N, {"success-rate": N}),
    ("zero-requests-with-min-0", spec(minRequestCount=0), m(0, 0), N, {"success-rate": N}),
    ("provider-error", spec(), m(error="connection refused"), E, {"success-rate": E}),
    ("mean-latency-ok", spec(latency={"maxMs": 50}), m(mean=20), S, {"latency-mean": S}),
    ("mean-latency-too-high", spec(latency={"maxMs": 50}), m(mean=51), F, {"latency-mean": F}),
    ("mean-latency-no-data", spec(latency={"maxMs": 50}), m(mean=None), N, {"latency-mean": N}),
    (
        "quantile-ok",
        spec(latency={"maxMs": 50, "quantile": 0.99}),
        m(quantile=31),
        S,
        {"latency-p99": S},
    ),
    (
        "quantile-too-high",
        spec(latency={"maxMs": 50, "quantile": 0.99}),
        m(quantile=80),
        F,
        {"latency-p99": F},
    ),
    (
        "quantile-not-measured",
        spec(latency={"maxMs": 50, "quantile": 0.99}),
        m(),
        E,
        {"latency-p99": E},
    ),
    (
        "failure-beats-no-data",
        spec(latency={"maxMs": 50}),
        m(900, 100, mean=None),
        F,
        {"success-rate": F, "latency-mean": N},
    ),
    (
        "custom-ok",
        spec(**GPU_CHECK),
        m(custom={"gpu-mem": Reading(0.5)}),
        S,
        {"gpu-mem": S},
    ),
    (
        "custom-above-max",
        spec(**GPU_CHECK),
        m(custom={"gpu-mem": Reading(0.95)}),
        F,
        {"gpu-mem": F},
    ),
    (
        "custom-query-error",
        spec(**GPU_CHECK),
        m(custom={"gpu-mem": Reading(None, error="bad_data: parse error")}),
        E,
        {"gpu-mem": E},
    ),
    ("custom-missing", spec(**GPU_CHECK), m(), N, {"gpu-mem": N}),
    (
        "custom-min-and-max",
        spec(custom=[{"name": "x", "query": "q", "min": 1, "max": 2}], **PROM),
        m(custom={"x": Reading(0.5)}),
        F,
        {"x": F},
    ),
    (
        "no-checks-enough-traffic",
        AnalysisSpec(min_request_count=10),
        m(),
        S,
        {"request-count": S},
    ),
    ("no-checks-no-traffic", AnalysisSpec(min_request_count=10), m(None), N, {"request-count": N}),
]


@pytest.mark.parametrize(
    ("analysis", "measurement", "verdict", "per_metric"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_verdict(
    analysis: AnalysisSpec,
    measurement: Measurement,
    verdict: Verdict,
    per_metric: dict[str, Verdict],
) -> None:
    run = evaluate(measurement, analysis)
    assert run.verdict is verdict
    got = {r.name: r.verdict for r in run.metrics}
    for name, expected in per_metric.items():
        assert got[name] is expected, run.metrics
    assert run.metrics[0].name == "request-count"
    assert run.time == T0


def test_results_explain_themselves() -> None:
    run = evaluate(m(980, 20), spec(latency={"maxMs": 50}))
    rate = next(r for r in run.metrics if r.name == "success-rate")
    assert (rate.value, rate.threshold) == (0.98, ">= 0.99")
    assert rate.message == "0.98 is not >= 0.99"
    assert rate.query == "sum(increase(success)) / sum(increase(failure))"
    assert run.request_count == 1000
    assert failing_metrics(run) == ["success-rate"]
    assert summary(run) == "Failed: success-rate 0.98 is not >= 0.99"


def test_inconclusive_says_how_little_traffic_there_was() -> None:
    run = evaluate(m(3, 0), spec())
    assert summary(run) == "Inconclusive: too little traffic to judge: 3 requests < 10"
    none = evaluate(m(None, None), spec())
    assert summary(none) == "Inconclusive: too little traffic to judge: no request data < 10"


def test_error_says_the_provider_failed() -> None:
    run = evaluate(m(error="prometheus:9090 unreachable"), spec())
    assert summary(run) == "Error: analysis provider error: prometheus:9090 unreachable"


@pytest.mark.parametrize(
    ("quantile", "name"),
    [(None, "latency-mean"), (0.99, "latency-p99"), (0.5, "latency-p50"), (0.999, "latency-p99.9")],
    ids=str,
)
def test_latency_metric_names(quantile: float | None, name: str) -> None:
    assert latency_metric_name(quantile) == name


def test_worst() -> None:
    assert worst([S, N, E]) is E
    assert worst([S, F, E]) is F
    assert worst([]) is S


def test_custom_checks_need_the_prometheus_provider() -> None:
    with pytest.raises(ValueError, match=r"need analysis\.provider\.type prometheus"):
        AnalysisSpec.model_validate({"custom": [{"name": "x", "query": "q"}]})
