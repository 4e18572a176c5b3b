"""The operator's own Prometheus metrics (the only module that imports prometheus_client)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

PHASES = ("Progressing", "Ready", "Paused", "Degraded", "Failed")


@dataclass
class OperatorMetrics:
    """Every metric the operator exports, on its own registry (no global state)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.reconciles = Counter(
            "gantry_reconcile_total", "Reconciles by outcome.", ["outcome"], registry=r
        )
        self.reconcile_seconds = Histogram(
            "gantry_reconcile_duration_seconds",
            "Time spent in one reconcile.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.phase = Gauge(
            "gantry_modeldeployment_phase",
            "1 for the current phase of each ModelDeployment.",
            ["namespace", "name", "phase"],
            registry=r,
        )
        self.canary_weight = Gauge(
            "gantry_canary_weight_percent",
            "Desired canary traffic percent.",
            ["namespace", "name"],
            registry=r,
        )
        self.canary_step = Gauge(
            "gantry_canary_step", "Current canary step index.", ["namespace", "name"], registry=r
        )
        self.analysis_verdicts = Counter(
            "gantry_analysis_verdict_total",
            "Canary analysis verdicts per interval.",
            ["namespace", "name", "verdict"],
            registry=r,
        )
        self.rollout_events = Counter(
            "gantry_rollout_event_total",
            "Rollout transitions (step advanced, promoted, aborted...).",
            ["namespace", "name", "reason"],
            registry=r,
        )
        self.leader = Gauge(
            "gantry_leader",
            "1 while this replica holds the leader Lease and reconciles; 0 on a standby.",
            registry=r,
        )
        self.leader.set(1)
        self.probes = Counter(
            "gantry_model_probes_total",
            "Model-health probes: sent to a pod, or answered from a recent model-ready result.",
            ["outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "gantry_workqueue_depth", "ModelDeployments waiting in the work queue.", registry=r
        )
        self.queue_in_flight = Gauge(
            "gantry_workqueue_in_flight", "Reconciles running now.", registry=r
        )
        self.tasks = Gauge(
            "gantry_asyncio_tasks",
            "Asyncio tasks alive in the event loop: growth under a steady load is a leak.",
            registry=r,
        )
        self.queue_retries = Counter(
            "gantry_workqueue_retries_total",
            "Reconciles requeued with backoff after a failure.",
            registry=r,
        )

        # Every series of a metric with labels beyond (namespace, name), per ModelDeployment,
        # so ``forget`` can drop them all (``remove`` needs each label set). Without it a
        # cluster that creates and deletes models keeps one series per name ever seen.
        self._series: dict[tuple[str, str], set[tuple[Counter, tuple[str, ...]]]] = {}
        self.gpu_seconds = Counter(
            "gantry_gpu_seconds",
            "GPU-seconds (whole GPUs or MIG slices) held by running pods, integrated "
            "between reconciles.",
            ["namespace", "modeldeployment", "revision", "resource"],
            registry=r,
        )

    def _count(self, metric: Counter, namespace: str, name: str, *rest: str, by: float) -> None:
        metric.labels(namespace, name, *rest).inc(by)
        self._series.setdefault((namespace, name), set()).add((metric, rest))

    def add_gpu_seconds(
        self, namespace: str, name: str, accrued: dict[tuple[str, str], float]
    ) -> None:
        """Count GPU-seconds by (revision, resource) for one ModelDeployment."""
        for (rev, resource), seconds in accrued.items():
            self._count(self.gpu_seconds, namespace, name, rev, resource, by=seconds)

    def count_verdict(self, namespace: str, name: str, verdict: str) -> None:
        self._count(self.analysis_verdicts, namespace, name, verdict, by=1)

    def count_rollout_event(self, namespace: str, name: str, reason: str) -> None:
        self._count(self.rollout_events, namespace, name, reason, by=1)

    def count_tasks_of(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the task count of ``loop`` at each scrape (from the metrics server's thread:
        ``all_tasks`` takes a snapshot and retries when the set changes meanwhile)."""
        self.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))

    def set_leader(self, leading: bool) -> None:
        """1 while this replica holds the leader Lease (always 1 without leader election)."""
        self.leader.set(1 if leading else 0)

    def set_phase(self, namespace: str, name: str, phase: str) -> None:
        for candidate in PHASES:
            self.phase.labels(namespace, name, candidate).set(1 if candidate == phase else 0)

    def forget(self, namespace: str, name: str) -> None:
        """Drop the series of a deleted ModelDeployment."""
        with contextlib.suppress(KeyError):
            for candidate in PHASES:
                self.phase.remove(namespace, name, candidate)
        for gauge in (self.canary_weight, self.canary_step):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
        for metric, rest in self._series.pop((namespace, name), set()):
            with contextlib.suppress(KeyError):
                metric.remove(namespace, name, *rest)

    def serve(self, port: int, *, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
