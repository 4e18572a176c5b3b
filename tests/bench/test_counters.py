"""Request keys and counters read from real-looking ``/metrics`` texts (pure)."""

from __future__ import annotations

import pytest

from bench.operator.counters import ApiCounts, api_counts, operator_counts, request_key


def labels(**kw: str) -> dict[str, str]:
    base = {"code": "200", "group": "", "scope": "namespace", "subresource": "", "verb": "GET"}
    return {**base, **kw}


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (labels(resource="pods", verb="LIST"), "LIST pods"),
        (labels(resource="deployments", group="apps", verb="APPLY"), "APPLY deployments"),
        (
            labels(resource="deployments", group="apps", verb="PATCH", subresource="scale"),
            "PATCH deployments/scale",
        ),
        (
            labels(resource="modeldeployments", verb="PATCH", subresource="status"),
            "PATCH modeldeployments/status",
        ),
        (labels(resource="pods", verb="WATCH", scope="cluster"), "WATCH pods (cluster)"),
        (
            labels(resource="httproutes", verb="LIST", code="404"),
            "LIST httproutes [404]",
        ),
        (
            labels(resource="events", group="events.k8s.io", verb="POST"),
            "POST events.k8s.io/events",
        ),
        (labels(resource="events", verb="POST", code="201"), "POST events"),
        (labels(resource="leases", verb="PUT"), None),  # not Gantry's work
        (labels(resource="", subresource="/healthz"), None),
    ],
)
def test_request_key(series: dict[str, str], expected: str | None) -> None:
    assert request_key(series) == expected


def series(name: str, value: float, **kw: str) -> str:
    """One exposition line, labels in the API server's order."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in kw.items()) + "}" + f" {value:g}"


def request(value: float, **kw: str) -> str:
    base = {"code": "200", "component": "apiserver", "dry_run": "", "group": ""}
    base.update({"resource": "", "scope": "namespace", "subresource": "", "verb": "GET"})
    return series("apiserver_request_total", value, **{**base, **kw, "version": "v1"})


APISERVER = "\n".join(
    [
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
        "# TYPE apiserver_request_total counter",
        request(7, group="apps", resource="deployments", verb="LIST"),
        request(5, resource="pods", verb="LIST"),
        request(1, dry_run="All", resource="pods", verb="LIST"),
        request(2, code="0", resource="pods", verb="WATCH"),
        request(900, group="coordination.k8s.io", resource="leases", verb="PUT"),
        "# TYPE apiserver_flowcontrol_dispatched_requests_total counter",
        series(
            "apiserver_flowcontrol_dispatched_requests_total",
            744,
            flow_schema="exempt",
            priority_level="exempt",
        ),
        series(
            "apiserver_flowcontrol_dispatched_requests_total",
            120,
            flow_schema="bench-abc-operator",
            priority_level="exempt",
        ),
    ]
)


def test_api_counts_sums_series_to_keys_and_reads_each_flow_schema() -> None:
    counts = api_counts(APISERVER)
    assert dict(counts.requests) == {
        "LIST deployments": 7.0,
        "LIST pods": 6.0,  # dry runs are requests too
        "WATCH pods [0]": 2.0,
    }
    assert counts.flow("bench-abc-operator") == 120.0
    assert counts.flow("exempt") == 744.0
    assert counts.flow("bench-abc-bare") == 0.0


def test_api_counts_difference_keeps_what_grew() -> None:
    before = ApiCounts({"LIST pods": 5.0, "GET pods": 3.0}, {"bench-operator": 10.0})
    after = ApiCounts(
        {"LIST pods": 9.0, "GET pods": 3.0, "POST events": 1.0}, {"bench-operator": 25.0}
    )
    delta = after - before
    assert dict(delta.requests) == {"LIST pods": 4.0, "POST events": 1.0}
    assert delta.flow("bench-operator") == 15.0


def test_non_watch_leaves_out_watches_and_cluster_scope() -> None:
    counts = ApiCounts({"LIST pods": 1.0, "WATCH pods": 2.0, "LIST pods (cluster)": 3.0})
    assert counts.non_watch() == {"LIST pods": 1.0}


OPERATOR = """\
# HELP gantry_reconcile_total Reconciles by outcome.
# TYPE gantry_reconcile_total counter
gantry_reconcile_total{outcome="ok"} 40.0
gantry_reconcile_total{outcome="error"} 2.0
gantry_reconcile_created{outcome="ok"} 1.7e+09
# TYPE gantry_reconcile_duration_seconds histogram
gantry_reconcile_duration_seconds_bucket{le="0.005"} 0.0
gantry_reconcile_duration_seconds_count 42.0
gantry_reconcile_duration_seconds_sum 3.5
gantry_asyncio_tasks 17.0
gantry_modeldeployment_phase{namespace="ns",name="a",phase="Ready"} 1.0
"""


def test_operator_counts_reads_reconciles_time_and_unlabelled_gauges() -> None:
    counts = operator_counts(OPERATOR)
    assert dict(counts.reconciles) == {"ok": 40.0, "error": 2.0}
    assert counts.total == 42.0
    assert counts.reconcile_seconds == 3.5
    assert dict(counts.extra) == {"gantry_asyncio_tasks": 17.0}


def test_operator_counts_difference() -> None:
    before = operator_counts(OPERATOR)
    after = operator_counts(
        OPERATOR.replace('outcome="ok"} 40.0', 'outcome="ok"} 50.0').replace("3.5", "4.0")
    )
    delta = after - before
    assert dict(delta.reconciles) == {"ok": 10.0}
    assert delta.reconcile_seconds == 0.5
