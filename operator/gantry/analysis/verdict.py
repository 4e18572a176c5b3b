"""Judging one analysis interval: a Measurement against the AnalysisSpec (pure).

Rules, in order:

1. The provider could not measure (``Measurement.error``) -> **Error**.
2. No request data, or fewer requests than ``minRequestCount`` -> **Inconclusive**
   for every check. Too little traffic is never a success (a canary nobody
   calls proves nothing) and never a failure (three requests are noise).
3. Otherwise each check is judged on its own: a value outside its threshold is
   **Failed**, a missing value is **Inconclusive**, a query error is **Error**.
   The interval's verdict is the worst of them: Failed > Error > Inconclusive
   > Successful.

Checks:

* ``successRate``: successes / (successes + failures) from the deltas of
  ``nv_inference_request_success`` and ``nv_inference_request_failure``.
* ``latency`` without ``quantile``: the mean, delta of
  ``nv_inference_request_duration_us`` / delta of successes (Triton adds to the
  duration counter for successful requests only), in ms.
* ``latency`` with ``quantile``: Triton's ``nv_inference_request_summary_us``
  at that quantile, in ms. Triton only exports summaries when started with
  ``--metrics-config summary_latencies=true``, and only for the quantiles in
  ``summary_quantiles`` (default 0.5, 0.9, 0.95, 0.99); any other quantile has
  no data and so stays Inconclusive, never passes.
* ``custom``: the value of the PromQL query within ``[min, max]``.
"""

from __future__ import annotations

from collections.abc import Iterable

from gantry.analysis.measurement import Measurement, Reading
from gantry.api.spec import AnalysisSpec
from gantry.api.status import AnalysisRun, MetricResult, Verdict

REQUEST_COUNT = "request-count"
SUCCESS_RATE = "success-rate"
LATENCY_MEAN = "latency-mean"

_SEVERITY = {
    Verdict.SUCCESSFUL: 0,
    Verdict.INCONCLUSIVE: 1,
    Verdict.ERROR: 2,
    Verdict.FAILED: 3,
}


def latency_metric_name(quantile: float | None) -> str:
    """``latency-mean``, or ``latency-p99`` for 0.99 (``latency-p99.9`` for 0.999)."""
    if quantile is None:
        return LATENCY_MEAN
    return f"latency-p{quantile * 100:g}"


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe verdict; Successful for none."""
    return max(verdicts, key=_SEVERITY.__getitem__, default=Verdict.SUCCESSFUL)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _range_text(low: float | None, high: float | None, unit: str = "") -> str:
    parts = []
    if low is not None:
        parts.append(f">= {_fmt(low)}{unit}")
    if high is not None:
        parts.append(f"<= {_fmt(high)}{unit}")
    return " and ".join(parts) or "any value"


def _judge(
    name: str,
    reading: Reading,
    *,
    low: float | None = None,
    high: float | None = None,
    unit: str = "",
) -> MetricResult:
    """One check: Error on a query error, Inconclusive without data, else the range test."""
    threshold = _range_text(low, high, unit)
    base = {"name": name, "query": reading.query, "value": reading.value, "threshold": threshold}
    if reading.error is not None:
        return MetricResult(**base, verdict=Verdict.ERROR, message=reading.error)
    value = reading.value
    if value is None:
        return MetricResult(**base, verdict=Verdict.INCONCLUSIVE, message="no data")
    if (low is not None and value < low) or (high is not None and value > high):
        message = f"{_fmt(value)}{unit} is not {threshold}"
        return MetricResult(**base, verdict=Verdict.FAILED, message=message)
    return MetricResult(**base, verdict=Verdict.SUCCESSFUL)


def _checks(m: Measurement, spec: AnalysisSpec) -> list[MetricResult]:
    """Every configured check, judged on the measured values."""
    results: list[MetricResult] = []
    if spec.success_rate is not None:
        requests = m.requests
        rate = None if not requests or m.successes.value is None else m.successes.value / requests
        query = " / ".join(q for q in (m.successes.query, m.failures.query) if q)
        error = m.successes.error or m.failures.error
        reading = Reading(rate, query=query, error=error)
        results.append(_judge(SUCCESS_RATE, reading, low=spec.success_rate.min))
    if spec.latency is not None:
        quantile = spec.latency.quantile
        if quantile is None:
            reading = m.latency_mean_ms
        else:
            reading = m.latency_quantile_ms or Reading(None, error="quantile not measured")
        name = latency_metric_name(quantile)
        results.append(_judge(name, reading, high=spec.latency.max_ms, unit="ms"))
    for check in spec.custom:
        reading = m.custom.get(check.name, Reading(None, query=check.query))
        results.append(_judge(check.name, reading, low=check.min, high=check.max))
    return results


def _not_judged(results: list[MetricResult], verdict: Verdict, why: str) -> list[MetricResult]:
    return [r.model_copy(update={"verdict": verdict, "message": why}) for r in results]


def evaluate(measurement: Measurement, spec: AnalysisSpec) -> AnalysisRun:
    """Judge one interval.

    Args:
        measurement: What the provider measured over the interval.
        spec: The thresholds.

    Returns:
        The interval's run: an overall verdict and one MetricResult per check,
        preceded by the request count that gates them.
    """
    requests = measurement.requests
    count = MetricResult(
        name=REQUEST_COUNT,
        query=measurement.successes.query,
        value=requests,
        threshold=f">= {spec.min_request_count}",
        verdict=Verdict.SUCCESSFUL,
    )
    checks = _checks(measurement, spec)
    if measurement.error is not None:
        why = f"analysis provider error: {measurement.error}"
        results = _not_judged([count, *checks], Verdict.ERROR, why)
        return _run(measurement, Verdict.ERROR, requests, results)
    if requests is None or requests < spec.min_request_count:
        seen = "no request data" if requests is None else f"{requests:g} requests"
        why = f"too little traffic to judge: {seen} < {spec.min_request_count}"
        results = _not_judged([count, *checks], Verdict.INCONCLUSIVE, why)
        return _run(measurement, Verdict.INCONCLUSIVE, requests, results)
    if not checks:
        # Nothing to judge but the traffic itself: enough requests were served.
        count = count.model_copy(update={"message": "no checks configured"})
    return _run(measurement, worst(r.verdict for r in checks), requests, [count, *checks])


def _run(
    m: Measurement, verdict: Verdict, requests: float | None, results: list[MetricResult]
) -> AnalysisRun:
    return AnalysisRun(time=m.time, verdict=verdict, request_count=requests, metrics=results)


def summary(run: AnalysisRun) -> str:
    """One line explaining a run: the metrics that decided it, with values and thresholds."""
    deciding = [r for r in run.metrics if r.verdict == run.verdict and r.message]
    if run.verdict is Verdict.SUCCESSFUL or not deciding:
        return f"{run.verdict.value}: " + ", ".join(
            f"{r.name}={_fmt(r.value) if r.value is not None else 'n/a'}" for r in run.metrics
        )
    if run.verdict in (Verdict.INCONCLUSIVE, Verdict.ERROR):
        # The same reason was copied onto every metric; say it once.
        return f"{run.verdict.value}: {deciding[0].message}"
    return f"{run.verdict.value}: " + "; ".join(f"{r.name} {r.message}" for r in deciding)


def failing_metrics(run: AnalysisRun) -> list[str]:
    """Names of the metrics that failed in a run."""
    return [r.name for r in run.metrics if r.verdict is Verdict.FAILED]
