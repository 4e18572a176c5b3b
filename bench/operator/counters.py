"""Request and reconcile counters read from ``/metrics`` texts (pure: text in, numbers out).

Both expositions are parsed by the operator's own parser
(:mod:`gantry.analysis.textformat`): the API server's, for ``apiserver_request_total`` and
the flow-control counters, and the operator's (:mod:`gantry.metrics`).

Why the API server's flow-control counters: ``apiserver_request_total`` has no user-agent or
user label (v1.36: ``code, component, dry_run, group, resource, scope, subresource, verb,
version``), so on a shared cluster it sums every client. The bench runs the operator and the
bare client each under its own ServiceAccount, matched by its own FlowSchema (see
:mod:`bench.operator.cluster`), and ``apiserver_flowcontrol_dispatched_requests_total`` counts
each one's requests exactly, by ``flow_schema``. The per-verb breakdown still comes from
``apiserver_request_total`` and is labelled "whole server".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gantry.analysis.textformat import MetricSample, parse

REQUESTS = "apiserver_request_total"
DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"
#: Resources whose requests the breakdown shows (what Gantry reads or writes).
COUNTED = frozenset(
    {
        "modeldeployments",
        "services",
        "deployments",
        "pods",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "httproutes",
        "events",
    }
)


def request_key(labels: Mapping[str, str]) -> str | None:
    """``VERB resource[/sub]`` of one ``apiserver_request_total`` series; None when not counted.

    Cluster-scoped requests (the controllers' informers) get a `` (cluster)`` suffix, refused
    ones their status code, so that a 404 on every pass shows as such.
    """
    resource = labels.get("resource", "")
    if resource not in COUNTED:
        return None
    if labels.get("group") == "events.k8s.io":
        resource = "events.k8s.io/events"
    key = f"{labels.get('verb', '?')} {resource}"
    if labels.get("subresource"):
        key += "/" + labels["subresource"]
    if labels.get("scope") == "cluster":
        key += " (cluster)"
    code = labels.get("code", "200")
    if not code.startswith("2"):
        key += f" [{code}]"
    return key


def _minus(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    out = {k: v - b.get(k, 0.0) for k, v in a.items()}
    return {k: v for k, v in out.items() if v > 0}


@dataclass(frozen=True)
class ApiCounts:
    """The API server's counters at one instant (or a difference of two).

    Attributes:
        requests: ``apiserver_request_total`` summed to :func:`request_key` keys.
        by_flow: ``apiserver_flowcontrol_dispatched_requests_total`` by flow schema.
    """

    requests: Mapping[str, float] = field(default_factory=dict)
    by_flow: Mapping[str, float] = field(default_factory=dict)

    def __sub__(self, other: ApiCounts) -> ApiCounts:
        return ApiCounts(_minus(self.requests, other.requests), _minus(self.by_flow, other.by_flow))

    def flow(self, schema: str) -> float:
        return self.by_flow.get(schema, 0.0)

    def non_watch(self) -> dict[str, float]:
        """Namespaced requests other than watches: what per-object work costs."""
        return {
            k: v
            for k, v in self.requests.items()
            if not k.startswith("WATCH") and "(cluster)" not in k
        }


def api_counts(text: str) -> ApiCounts:
    """Read an API server ``/metrics`` body."""
    requests: dict[str, float] = {}
    flows: dict[str, float] = {}
    for sample in parse(text).samples:
        if sample.name == REQUESTS:
            key = request_key(sample.labels)
            if key is not None:
                requests[key] = requests.get(key, 0.0) + sample.value
        elif sample.name == DISPATCHED:
            schema = sample.labels.get("flow_schema", "")
            flows[schema] = flows.get(schema, 0.0) + sample.value
    return ApiCounts(requests, flows)


@dataclass(frozen=True)
class OperatorCounts:
    """What the operator's own ``/metrics`` says (:mod:`gantry.metrics`).

    Attributes:
        reconciles: ``gantry_reconcile_total`` by outcome.
        reconcile_seconds: ``gantry_reconcile_duration_seconds_sum``.
        extra: Every other unlabelled gauge or counter (e.g. a task count, should the
            operator export one), by name.
    """

    reconciles: Mapping[str, float] = field(default_factory=dict)
    reconcile_seconds: float = 0.0
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.reconciles.values())

    def __sub__(self, other: OperatorCounts) -> OperatorCounts:
        return OperatorCounts(
            _minus(self.reconciles, other.reconciles),
            self.reconcile_seconds - other.reconcile_seconds,
            self.extra,  # gauges: the later reading
        )


def _unlabelled(sample: MetricSample) -> bool:
    # The reconcile histogram's _count/_sum/_created are read above or not wanted.
    name = sample.name
    return not sample.labels and name.startswith("gantry_") and not name.startswith("gantry_rec")


def operator_counts(text: str) -> OperatorCounts:
    """Read the operator's ``/metrics`` body."""
    reconciles: dict[str, float] = {}
    seconds = 0.0
    extra: dict[str, float] = {}
    for sample in parse(text).samples:
        if sample.name == "gantry_reconcile_total":
            outcome = sample.labels.get("outcome", "")
            reconciles[outcome] = reconciles.get(outcome, 0.0) + sample.value
        elif sample.name == "gantry_reconcile_duration_seconds_sum":
            seconds = sample.value
        elif _unlabelled(sample):
            extra[sample.name] = sample.value
    return OperatorCounts(reconciles, seconds, extra)
