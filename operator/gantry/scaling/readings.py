"""Per-pod values of the scaling metrics from Triton's ``/metrics`` (pure).

* ``queueTimeMs``: mean time a request waited in the queue over the interval
  between two scrapes of the same pod, ``delta(nv_inference_queue_duration_us) /
  delta(nv_inference_request_success) / 1000``, as the prometheus-adapter rule in
  ``gantry.render.hpa`` computes it from ``rate()``. A counter that went down was
  reset (the server restarted): its current value is the increase. An interval
  in which no request finished while some wait gives at least the interval
  itself (every waiting request has waited that long, at most), not 0: an
  overloaded server that completes nothing must not read as idle. The first
  scrape of a pod has no interval: the pod is *warming*, neither serving data
  nor missing it.
* ``inflight``: ``nv_inference_pending_request_count`` now.
* ``gpuUtilization``: ``nv_gpu_utilization`` (0..1 per GPU) averaged over the
  pod's GPUs, times 100.

Whatever the metric, each pod's *busy* fraction over the interval is read too:
the time its model spent executing per second, ``delta(compute_infer_duration) *
delta(exec_count) / delta(request_success) / elapsed`` (Triton counts a batch's
compute time once per request in it; scaled by executions per request it is
counted once per batch). It assumes one model instance per pod, so with more it
reads high, which only makes the scale-down floor built on it
(``builtin.capacity_floor``) more careful.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gantry.analysis.counters import SUCCESS, increase
from gantry.analysis.textformat import MetricSample, finite
from gantry.api.spec import ScalingMetricType

QUEUE = "nv_inference_queue_duration_us"
PENDING = "nv_inference_pending_request_count"
GPU_UTILIZATION = "nv_gpu_utilization"
COMPUTE = "nv_inference_compute_infer_duration_us"
EXECUTIONS = "nv_inference_exec_count"


@dataclass(frozen=True)
class TritonSample:
    """One pod's readings at one time (None: the pod does not export it)."""

    time: datetime
    success: float | None = None
    queue_us: float | None = None
    pending: float | None = None
    gpu_utilization: float | None = None
    compute_us: float | None = None
    executions: float | None = None


def _add(total: float | None, value: float) -> float:
    return value if total is None else total + value


def triton_sample(samples: Iterable[MetricSample], *, model: str, now: datetime) -> TritonSample:
    """Sum one pod's model counters (every version) and average its GPUs' utilization."""
    success = queue = pending = compute = executions = None
    gpus: list[float] = []
    for s in samples:
        value = finite(s.value)
        if value is None:
            continue
        if s.name == GPU_UTILIZATION:
            gpus.append(value)
        elif s.labels.get("model") != model:
            continue
        elif s.name == SUCCESS:
            success = _add(success, value)
        elif s.name == QUEUE:
            queue = _add(queue, value)
        elif s.name == PENDING:
            pending = _add(pending, value)
        elif s.name == COMPUTE:
            compute = _add(compute, value)
        elif s.name == EXECUTIONS:
            executions = _add(executions, value)
    return TritonSample(
        time=now,
        success=success,
        queue_us=queue,
        pending=pending,
        gpu_utilization=sum(gpus) / len(gpus) if gpus else None,
        compute_us=compute,
        executions=executions,
    )


@dataclass(frozen=True)
class PodValue:
    """One pod's metric value, or why there is none.

    Attributes:
        value: The value; None with ``warming`` or ``problem``.
        warming: First scrape of a rate metric: no interval yet (not an error).
        problem: Why the pod gave no value, for the status.
        busy: Fraction of the interval its model spent executing (see above), or
            None when it cannot be told (first scrape, counters not exported).
    """

    value: float | None = None
    warming: bool = False
    problem: str = ""
    busy: float | None = None


def busy_fraction(previous: TritonSample | None, current: TritonSample) -> float | None:
    """How busy the pod's model was between two samples (0: idle; 1: one instance always on)."""
    if previous is None:
        return None
    s0, c0, e0 = previous.success, previous.compute_us, previous.executions
    s1, c1, e1 = current.success, current.compute_us, current.executions
    if s0 is None or c0 is None or e0 is None or s1 is None or c1 is None or e1 is None:
        return None
    elapsed_us = (current.time - previous.time).total_seconds() * 1e6
    if elapsed_us <= 0:
        return None
    done = increase(s0, s1)
    if done <= 0:
        # Nothing finished: idle, unless requests wait (then busy, but by how much is unknown).
        return 0.0 if not current.pending else None
    return max(0.0, increase(c0, c1) * (increase(e0, e1) / done) / elapsed_us)


def pod_value(
    metric: ScalingMetricType, previous: TritonSample | None, current: TritonSample
) -> PodValue:
    """The pod's value of ``metric`` between its previous and current sample, and how busy."""
    value = _metric_value(metric, previous, current)
    return dataclasses.replace(value, busy=busy_fraction(previous, current))


def _metric_value(
    metric: ScalingMetricType, previous: TritonSample | None, current: TritonSample
) -> PodValue:
    if metric is ScalingMetricType.INFLIGHT:
        if current.pending is None:
            return PodValue(problem=f"exports no {PENDING} for the model")
        return PodValue(value=current.pending)
    if metric is ScalingMetricType.GPU_UTILIZATION:
        if current.gpu_utilization is None:
            return PodValue(problem=f"exports no {GPU_UTILIZATION}")
        return PodValue(value=current.gpu_utilization * 100)
    if metric is ScalingMetricType.QUEUE_TIME_MS:
        return _queue_time(previous, current)
    raise ValueError(f"the builtin scaler cannot read scaling.metric.type {metric.value}")


def _queue_time(previous: TritonSample | None, current: TritonSample) -> PodValue:
    if current.success is None or current.queue_us is None:
        return PodValue(problem=f"exports no {QUEUE} or {SUCCESS} for the model")
    if previous is None or previous.success is None or previous.queue_us is None:
        return PodValue(warming=True)
    done = increase(previous.success, current.success)
    waited_us = increase(previous.queue_us, current.queue_us)
    if done > 0:
        return PodValue(value=waited_us / done / 1000)
    if current.pending:
        elapsed_ms = (current.time - previous.time).total_seconds() * 1000
        return PodValue(value=max(elapsed_ms, 0.0))
    return PodValue(value=0.0)
