"""Realistic Triton ``/metrics`` text for analysis tests (no Triton needed).

Shaped after what tritonserver 2.4x prints with ``--metrics-config
summary_latencies=true``: HELP/TYPE lines, labels sorted by name, failure
counters per ``reason``, summary quantiles, GPU gauges, and a second model so
filters are exercised.
"""

# Triton's HELP lines and labels are long; the fixture keeps them verbatim.
# ruff: noqa: E501

from __future__ import annotations

MODEL = "resnet50"
VERSION = "3"


def triton_metrics(
    *,
    success: float,
    failure_backend: float = 0,
    failure_rejected: float = 0,
    duration_us: float | None = None,
    p99_us: float = 31000,
    model: str = MODEL,
    version: str = VERSION,
    other_model_success: float = 777,
) -> str:
    """The text one Triton pod serves, with the given cumulative counters."""
    duration = success * 15000 if duration_us is None else duration_us
    m = f'model="{model}",version="{version}"'
    o = 'model="densenet_onnx",version="1"'
    return f"""\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{{{m}}} {success:g}
nv_inference_request_success{{{o}}} {other_model_success:g}
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{{model="{model}",reason="REJECTED",version="{version}"}} {failure_rejected:g}
nv_inference_request_failure{{model="{model}",reason="CANCELED",version="{version}"}} 0
nv_inference_request_failure{{model="{model}",reason="BACKEND",version="{version}"}} {failure_backend:g}
nv_inference_request_failure{{model="{model}",reason="OTHER",version="{version}"}} 0
nv_inference_request_failure{{model="densenet_onnx",reason="BACKEND",version="1"}} 50
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_count{{{m}}} {success * 4:g}
nv_inference_count{{{o}}} {other_model_success:g}
# HELP nv_inference_exec_count Number of model executions performed (does not include cached requests)
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{{{m}}} {success:g}
# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds (includes cached requests)
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{{{m}}} {duration:g}
nv_inference_request_duration_us{{{o}}} 99999999
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds (includes cached requests)
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{{{m}}} {success * 120:g}
# HELP nv_inference_compute_infer_duration_us Cumulative compute inference duration in microseconds (does not include cached requests)
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{{{m}}} {success * 9000:g}
# HELP nv_inference_request_summary_us Summary of inference request duration in microseconds (includes cached requests)
# TYPE nv_inference_request_summary_us summary
nv_inference_request_summary_us_count{{{m}}} {success:g}
nv_inference_request_summary_us_sum{{{m}}} {duration:g}
nv_inference_request_summary_us{{{m},quantile="0.5"}} 14000
nv_inference_request_summary_us{{{m},quantile="0.9"}} 22000
nv_inference_request_summary_us{{{m},quantile="0.95"}} 25000
nv_inference_request_summary_us{{{m},quantile="0.99"}} {p99_us:g}
nv_inference_request_summary_us{{{o},quantile="0.99"}} 900000
# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution per-model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{{{m}}} 3
# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{{gpu_uuid="GPU-3b2f1a0c-55e1-4d6b-9a7e-0f1e2d3c4b5a"}} 0.42
# HELP nv_gpu_memory_used_bytes GPU used memory, in bytes
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{{gpu_uuid="GPU-3b2f1a0c-55e1-4d6b-9a7e-0f1e2d3c4b5a"}} 2.3e+10
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.125
"""
