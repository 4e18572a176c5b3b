"""Triton /metrics to per-pod values, GPUs held and GPU-seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gantry.analysis.textformat import parse
from gantry.api.spec import ScalingMetricType
from gantry.scaling import accrued, allocation, gpu_status
from gantry.scaling.readings import PodValue, pod_value, triton_sample

T0 = datetime(2025, 1, 1, tzinfo=UTC)
Q = ScalingMetricType.QUEUE_TIME_MS


def exposition(
    success: float, queue_us: float, pending: float = 0, gpu: float | None = None
) -> str:
    lines = [
        f'nv_inference_request_success{{model="m",version="1"}} {success}',
        f'nv_inference_queue_duration_us{{model="m",version="1"}} {queue_us}',
        f'nv_inference_pending_request_count{{model="m",version="1"}} {pending}',
        'nv_inference_request_success{model="other",version="1"} 999',
    ]
    if gpu is not None:
        lines += [f'nv_gpu_utilization{{gpu_uuid="GPU-{i}"}} {gpu}' for i in range(2)]
    return "\n".join(lines) + "\n"


def sample(text: str, at: float = 0) -> Any:
    return triton_sample(parse(text).samples, model="m", now=T0 + timedelta(seconds=at))


@pytest.mark.parametrize(
    ("metric", "before", "after", "want"),
    [
        # 20 requests waited 2 s in all: 100 ms each
        (Q, exposition(10, 1_000_000), exposition(30, 3_000_000), PodValue(value=100.0)),
        # idle: no request, none waiting
        (Q, exposition(10, 1_000), exposition(10, 1_000), PodValue(value=0.0)),
        # nothing finished while 4 wait: at least the 15 s interval
        (Q, exposition(10, 1_000), exposition(10, 1_000, pending=4), PodValue(value=15000.0)),
        # the server restarted (counters went down): the current values are the increase
        (Q, exposition(100, 9_000_000), exposition(5, 250_000), PodValue(value=50.0)),
        # first scrape: warming, not missing
        (Q, None, exposition(10, 1_000), PodValue(warming=True)),
        (ScalingMetricType.INFLIGHT, None, exposition(1, 1, pending=3), PodValue(value=3.0)),
        (ScalingMetricType.GPU_UTILIZATION, None, exposition(1, 1, gpu=0.5), PodValue(value=50.0)),
    ],
)
def test_pod_value(
    metric: ScalingMetricType, before: str | None, after: str, want: PodValue
) -> None:
    previous = sample(before) if before is not None else None
    assert pod_value(metric, previous, sample(after, at=15)) == want


def test_a_pod_without_the_metric_says_which() -> None:
    got = pod_value(ScalingMetricType.GPU_UTILIZATION, None, sample(exposition(1, 1)))
    assert got.value is None
    assert "nv_gpu_utilization" in got.problem
    got = pod_value(Q, None, sample("up 1\n"))
    assert "nv_inference_queue_duration_us" in got.problem


def pod(
    name: str, limits: dict[str, str], *, phase: str = "Running", rev: str = "r1"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"serving.gantry.dev/revision": rev}},
        "spec": {"containers": [{"resources": {"limits": limits}}, {"resources": {}}]},
        "status": {"phase": phase},
    }


def test_gpus_held_and_gpu_seconds() -> None:
    pods = [
        pod("a", {"nvidia.com/gpu": "2", "cpu": "4"}),
        pod("b", {"nvidia.com/gpu": "1"}, rev="r2"),
        pod("c", {"nvidia.com/gpu": "1"}, phase="Pending"),  # holds nothing yet
        pod("d", {"nvidia.com/mig-1g.10gb": "1"}),
    ]
    first = allocation(pods, T0)
    assert first.held == {
        ("r1", "nvidia.com/gpu"): 2,
        ("r2", "nvidia.com/gpu"): 1,
        ("r1", "nvidia.com/mig-1g.10gb"): 1,
    }
    status = gpu_status(first)
    assert (status.allocated, status.resource) == (4, "nvidia.com/gpu,nvidia.com/mig-1g.10gb")
    later = allocation(pods[1:2], T0 + timedelta(seconds=30))
    assert accrued(first, later) == {
        ("r1", "nvidia.com/gpu"): 60.0,
        ("r2", "nvidia.com/gpu"): 30.0,
        ("r1", "nvidia.com/mig-1g.10gb"): 30.0,
    }
    assert accrued(None, later) == {}
    assert gpu_status(allocation([], T0)).allocated == 0


def counters(success: float, compute_us: float, executions: float, pending: float = 0) -> str:
    m = 'model="m",version="1"'
    return (
        f"nv_inference_request_success{{{m}}} {success}\n"
        f"nv_inference_queue_duration_us{{{m}}} 0\n"
        f"nv_inference_pending_request_count{{{m}}} {pending}\n"
        f"nv_inference_compute_infer_duration_us{{{m}}} {compute_us}\n"
        f"nv_inference_exec_count{{{m}}} {executions}\n"
    )


@pytest.mark.parametrize(
    ("before", "after", "busy"),
    [
        # 40 requests of 300 ms in 15 s, one at a time: 80% busy
        (counters(10, 3e6, 10), counters(50, 15e6, 50), 0.8),
        # batches of 4: Triton counts each batch's 300 ms once per request in it
        (counters(0, 0, 0), counters(40, 12e6, 10), 0.2),
        # idle
        (counters(10, 3e6, 10), counters(10, 3e6, 10), 0.0),
        # nothing finished while requests wait: busy, by how much unknown
        (counters(10, 3e6, 10), counters(10, 3e6, 10, pending=3), None),
        # a restart: the current counters are the increase
        (counters(900, 270e6, 900), counters(20, 6e6, 20), 0.4),
        # first scrape
        (None, counters(10, 3e6, 10), None),
        # a server that does not export the counters
        (exposition(1, 1), exposition(5, 1), None),
    ],
)
def test_busy_fraction(before: str | None, after: str, busy: float | None) -> None:
    previous = sample(before) if before is not None else None
    got = pod_value(Q, previous, sample(after, at=15)).busy
    assert got == (pytest.approx(busy) if busy is not None else None)
