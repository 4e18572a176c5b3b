"""Triton counters per pod and interval deltas between two scrapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from triton_text import MODEL, triton_metrics

from gantry.analysis.counters import (
    CounterSnapshot,
    PodCounters,
    increase,
    measure_between,
    pod_counters,
)
from gantry.analysis.textformat import parse

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REV = "bbbbbbbbbb"


def counters(text: str, **kw: object) -> PodCounters | None:
    return pod_counters(parse(text).samples, model=MODEL, **kw)  # type: ignore[arg-type]


def test_pod_counters_sum_the_model_and_its_failure_reasons() -> None:
    c = counters(triton_metrics(success=1200, failure_backend=5, failure_rejected=2), version="3")
    assert c is not None
    assert (c.success, c.failure, c.duration_us) == (1200, 7, 1200 * 15000)
    assert c.quantiles == {0.5: 14000, 0.9: 22000, 0.95: 25000, 0.99: 31000}


@pytest.mark.parametrize(
    ("model", "version", "found"),
    [(MODEL, "3", True), (MODEL, None, True), (MODEL, "2", False), ("bert", None, False)],
    ids=["model-and-version", "any-version", "other-version", "unknown-model"],
)
def test_filters_by_model_and_version(model: str, version: str | None, found: bool) -> None:
    c = pod_counters(parse(triton_metrics(success=10)).samples, model=model, version=version)
    assert (c is not None) is found


def test_every_version_of_a_model_is_summed_when_no_version_is_given() -> None:
    text = triton_metrics(success=10) + triton_metrics(success=5, version="4").replace(
        "densenet_onnx", "other"
    )
    c = pod_counters(parse(text).samples, model=MODEL)
    assert c is not None
    assert c.success == 15


@pytest.mark.parametrize(
    ("before", "after", "delta"),
    [(None, 7.0, 7.0), (10.0, 15.0, 5.0), (10.0, 10.0, 0.0), (100.0, 4.0, 4.0)],
    ids=["new", "grew", "idle", "reset"],
)
def test_increase(before: float | None, after: float, delta: float) -> None:
    assert increase(before, after) == delta


def snap(seconds: float, pods: dict[str, PodCounters], revision: str = REV) -> CounterSnapshot:
    return CounterSnapshot(time=T0 + timedelta(seconds=seconds), revision=revision, pods=pods)


def test_first_snapshot_is_warming() -> None:
    m = measure_between(None, snap(0, {"a": PodCounters(success=5)}), model=MODEL)
    assert m.warming
    assert m.requests is None


def test_a_snapshot_of_another_revision_is_warming() -> None:
    prev = snap(0, {"a": PodCounters(success=5)}, revision="old")
    m = measure_between(prev, snap(30, {"a": PodCounters(success=9)}), model=MODEL)
    assert m.warming


def test_deltas_are_summed_over_pods_with_resets_and_new_pods() -> None:
    prev = snap(
        0,
        {
            "a": PodCounters(success=100, failure=1, duration_us=1_000_000),
            "b": PodCounters(success=500, failure=0, duration_us=5_000_000),
            "gone": PodCounters(success=9999),
        },
    )
    cur = snap(
        30,
        {
            "a": PodCounters(success=190, failure=3, duration_us=2_800_000),  # +90 ok +2 failed
            "b": PodCounters(success=6, failure=0, duration_us=60_000),  # restarted
            "new": PodCounters(success=4, failure=1, duration_us=40_000),  # scaled up
        },
    )
    m = measure_between(prev, cur, model=MODEL, version="3")
    assert not m.warming
    assert m.successes.value == 90 + 6 + 4
    assert m.failures.value == 2 + 0 + 1
    assert m.requests == 103
    # (1.8s + 0.06s + 0.04s) over 100 successes = 19ms
    assert m.latency_mean_ms.value == pytest.approx(19.0)
    assert 'model="resnet50",version="3"' in m.successes.query


def test_no_pod_exports_the_model_gives_no_data() -> None:
    m = measure_between(snap(0, {}), snap(30, {}), model=MODEL)
    assert m.requests is None
    assert m.successes.value is None


def test_quantile_is_the_worst_pod() -> None:
    prev = snap(0, {"a": PodCounters(success=1), "b": PodCounters(success=1)})
    cur = snap(
        30,
        {
            "a": PodCounters(success=50, quantiles={0.99: 30_000.0}),
            "b": PodCounters(success=50, quantiles={0.99: 45_000.0, 0.5: 9_000.0}),
        },
    )
    m = measure_between(prev, cur, model=MODEL, quantile=0.99)
    assert m.latency_quantile_ms is not None
    assert m.latency_quantile_ms.value == 45.0
    missing = measure_between(prev, cur, model=MODEL, quantile=0.75)
    assert missing.latency_quantile_ms is not None
    assert missing.latency_quantile_ms.value is None


def test_zero_successes_give_no_latency() -> None:
    prev = snap(0, {"a": PodCounters(success=10, failure=0)})
    cur = snap(30, {"a": PodCounters(success=10, failure=20)})
    m = measure_between(prev, cur, model=MODEL)
    assert (m.requests, m.latency_mean_ms.value) == (20, None)
