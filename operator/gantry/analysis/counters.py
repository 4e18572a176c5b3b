"""Triton counters of the canary pods, and interval deltas between two scrapes (pure).

The scrape provider reads each canary pod's ``/metrics`` and keeps the result
as a :class:`CounterSnapshot` in memory. One interval's measurement is the
difference between the previous snapshot and the current one, summed over pods:

* a pod in both snapshots contributes ``current - previous``;
* a counter that went down was reset (the pod's server restarted) and
  contributes its current value, as Prometheus' ``increase()`` would;
* a pod absent from the previous snapshot is new: its counters started at 0
  within the interval, so its current values count in full.

Snapshots live in memory only. When none exists for the canary revision (the
first measurement, or the operator restarted) the measurement is *warming*: it
only records the snapshot and starts an interval, it carries no verdict and the
rollout does not count it. Losing an interval on restart is the price of not
writing counter values into the CR status on every tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gantry.analysis.measurement import Measurement, Reading
from gantry.analysis.textformat import MetricSample

SUCCESS = "nv_inference_request_success"
FAILURE = "nv_inference_request_failure"
DURATION = "nv_inference_request_duration_us"
SUMMARY = "nv_inference_request_summary_us"


@dataclass(frozen=True)
class PodCounters:
    """One pod's cumulative counters for the model (summed over label variants).

    Attributes:
        success: ``nv_inference_request_success``.
        failure: ``nv_inference_request_failure`` summed over ``reason``.
        duration_us: ``nv_inference_request_duration_us``.
        quantiles: ``nv_inference_request_summary_us`` by quantile (current values
            over Triton's sliding window, not counters).
    """

    success: float
    failure: float = 0.0
    duration_us: float = 0.0
    quantiles: Mapping[float, float] | None = None


@dataclass(frozen=True)
class CounterSnapshot:
    """Counters of every canary pod that answered, at one time."""

    time: datetime
    revision: str
    pods: Mapping[str, PodCounters]


def _matches(sample: MetricSample, model: str, version: str | None) -> bool:
    labels = sample.labels
    return labels.get("model") == model and (version is None or labels.get("version") == version)


def pod_counters(
    samples: Iterable[MetricSample], *, model: str, version: str | None = None
) -> PodCounters | None:
    """Sum one pod's Triton counters for a model.

    Args:
        samples: The pod's parsed exposition.
        model: The ``model`` label to keep.
        version: The ``version`` label to keep; None keeps every version.

    Returns:
        The counters, or None when the pod exports no success counter for the model
        (model not loaded, or another model/version): no data, not zero.
    """
    success: float | None = None
    failure = duration = 0.0
    quantiles: dict[float, float] = {}
    for s in samples:
        if not _matches(s, model, version) or math.isnan(s.value):
            continue
        if s.name == SUCCESS:
            success = (success or 0.0) + s.value
        elif s.name == FAILURE:
            failure += s.value
        elif s.name == DURATION:
            duration += s.value
        elif s.name == SUMMARY and "quantile" in s.labels:
            try:
                q = float(s.labels["quantile"])
            except ValueError:
                continue
            # Several versions in one pod: the worst one speaks for the pod.
            quantiles[q] = max(quantiles.get(q, s.value), s.value)
    if success is None:
        return None
    return PodCounters(success=success, failure=failure, duration_us=duration, quantiles=quantiles)


def increase(previous: float | None, current: float) -> float:
    """Counter increase between two readings, treating a decrease as a reset."""
    if previous is None or current < previous:
        return current
    return current - previous


def _quantile(pods: Iterable[PodCounters], quantile: float) -> float | None:
    """The worst pod's quantile in µs: quantiles cannot be averaged across pods, and
    the slowest pod is what a fraction of the users sees."""
    values = [
        v
        for p in pods
        for q, v in (p.quantiles or {}).items()
        if math.isclose(q, quantile, rel_tol=1e-9)
    ]
    return max(values) if values else None


def measure_between(
    previous: CounterSnapshot | None,
    current: CounterSnapshot,
    *,
    model: str,
    version: str | None = None,
    quantile: float | None = None,
    source: str = "scrape",
) -> Measurement:
    """The canary's interval measurement from two snapshots.

    Args:
        previous: The snapshot that started the interval, or None.
        current: The snapshot that ends it.
        model: Model name, for the description of what was read.
        version: Model version, likewise.
        quantile: The latency quantile to report, when the spec asks for one.
        source: Where the snapshots came from.

    Returns:
        A warming measurement when there is no previous snapshot of this revision,
        else the deltas. No pod exporting the model gives "no data" readings.
    """
    if previous is None or previous.revision != current.revision:
        return Measurement(
            time=current.time, revision=current.revision, source=source, warming=True
        )
    selector = f'model="{model}"' + (f',version="{version}"' if version else "")
    pods = current.pods
    described = f"{len(pods)} pod(s)"
    if not pods:
        return Measurement(time=current.time, revision=current.revision, source=source)
    successes = failures = duration = 0.0
    for name, now in pods.items():
        before = previous.pods.get(name)
        successes += increase(before.success if before else None, now.success)
        failures += increase(before.failure if before else None, now.failure)
        duration += increase(before.duration_us if before else None, now.duration_us)

    def reading(metric: str, value: float | None) -> Reading:
        return Reading(value, query=f"scrape: increase of {metric}{{{selector}}} on {described}")

    mean = duration / successes / 1000.0 if successes > 0 else None
    quantile_reading = None
    if quantile is not None:
        value = _quantile(pods.values(), quantile)
        quantile_reading = Reading(
            value / 1000.0 if value is not None else None,
            query=f'scrape: max of {SUMMARY}{{{selector},quantile="{quantile:g}"}} on {described}',
        )
    return Measurement(
        time=current.time,
        revision=current.revision,
        source=source,
        successes=reading(SUCCESS, successes),
        failures=reading(FAILURE, failures),
        latency_mean_ms=reading(DURATION, mean),
        latency_quantile_ms=quantile_reading,
    )
