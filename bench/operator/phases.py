"""The measured phases, in the order one size N runs them (I/O: this module only orders steps).

Per N: the bare baseline; then a fresh operator process: create -> every CR reconciled, a
steady window, spec edits, and (at the largest N) RSS with unrelated pods; then deletion.
The churn soak runs after all sizes with another fresh operator.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.operator import procfs
from bench.operator.bare import run_bare
from bench.operator.cluster import BenchCluster
from bench.operator.counters import ApiCounts, OperatorCounts, api_counts, operator_counts
from bench.operator.report import fmt, percentile, ratio
from bench.operator.workload import (
    BenchError,
    EditTracker,
    create_all,
    delete_all,
    edit_patch,
    get_text,
    model_deployment,
    noise_pod,
    wait_pods_ready,
    wait_reconciled,
)
from e2e.operator_proc import OperatorProcess
from gantry.kube import ClusterConfig, KubeClient, Manifest, load
from gantry.kube import resources as kinds

Log = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    concurrency: int = 32
    steady_seconds: float = 300.0
    settle_seconds: float = 20.0
    edits: int = 50
    noise_pods: int = 5000
    noise_namespaces: int = 10
    operator_env: Mapping[str, str] = field(default_factory=dict)
    seed: int = 10


class Operator:
    """``gantry run`` in its own process as the ``operator`` identity, watching the run only."""

    def __init__(self, bench: BenchCluster, env: Mapping[str, str], label: str) -> None:
        identity = bench.identities["operator"]
        self.proc = OperatorProcess(
            bench.workdir / f"operator-{label}.log",
            kubeconfig=identity.kubeconfig,
            env=env,
            namespaces=[bench.watch_glob],
        )
        self.flow_schema = identity.flow_schema

    def start(self) -> None:
        self.proc.start()

    @property
    def pid(self) -> int:
        assert self.proc._proc is not None  # started
        return self.proc._proc.pid

    def sample(self) -> procfs.ProcSample:
        reading = procfs.sample(self.pid)
        if reading is None:
            raise BenchError(f"operator exited:\n{self.proc.tail()}")
        return reading

    def counts(self) -> OperatorCounts:
        return operator_counts(httpx.get(self.proc.metrics_url, timeout=10).text)

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class Meter:
    """Readings at the start of a window, for deltas at its end."""

    admin: ClusterConfig
    operator: Operator
    started: float = 0.0
    api: ApiCounts = field(default_factory=ApiCounts)
    cpu_s: float = 0.0
    machine: procfs.MachineCpu | None = None
    reconciles: OperatorCounts = field(default_factory=OperatorCounts)

    async def mark(self) -> None:
        self.api = api_counts(await get_text(self.admin, "/metrics"))
        self.cpu_s = self.operator.sample().cpu_s
        self.machine = procfs.MachineCpu.now()
        self.reconciles = self.operator.counts()
        self.started = time.monotonic()

    async def window(self) -> Window:
        seconds = time.monotonic() - self.started
        api = api_counts(await get_text(self.admin, "/metrics")) - self.api
        assert self.machine is not None
        return Window(
            seconds=seconds,
            api=api,
            operator_requests=api.flow(self.operator.flow_schema),
            cpu_s=self.operator.sample().cpu_s - self.cpu_s,
            machine_busy=procfs.MachineCpu.now().busy_since(self.machine),
            reconciles=self.operator.counts() - self.reconciles,
        )


@dataclass(frozen=True)
class Window:
    seconds: float
    api: ApiCounts
    operator_requests: float  # exact: the operator's FlowSchema
    cpu_s: float
    machine_busy: float
    reconciles: OperatorCounts


@dataclass
class SizeResult:
    n: int
    bare_seconds: float = math.nan
    bare_requests: float = math.nan  # the API server's count for the bare identity
    bare_busy: float = math.nan
    create_seconds: float = math.nan
    create_requests: float = math.nan
    create_busy: float = math.nan
    latencies: list[float] = field(default_factory=list)
    pods_ready: int = 0  # at the start of the steady window
    steady: Window | None = None
    edit_latencies: list[float] = field(default_factory=list)
    edit_timeouts: int = 0
    rss_idle_kib: int = 0
    rss_loaded_kib: int = 0
    rss_noise_kib: int | None = None
    hwm_kib: int = 0
    sockets: int = 0
    threads: int = 0
    delete_seconds: float = math.nan

    def steady_by_request(self) -> dict[str, str]:
        """Whole-server requests per object per minute in the steady window, by request.

        ``apiserver_request_total`` has no user label: this includes the controllers, kwok
        and any other session's clients; the exact operator total is in the main table.
        """
        if self.steady is None:
            return {}
        minutes = self.steady.seconds / 60
        return {
            key: fmt(ratio(count / self.n, minutes))
            for key, count in sorted(self.steady.api.non_watch().items())
        }

    def figures(self) -> dict[str, str]:
        """The table's rows for this N."""
        steady = self.steady
        per_min = (
            ratio(steady.operator_requests / self.n, steady.seconds / 60) if steady else math.nan
        )
        rows = {
            "bare: first-reconcile writes, s": fmt(self.bare_seconds),
            "bare: requests per CR (API server)": fmt(ratio(self.bare_requests, self.n)),
            "operator: create -> all reconciled, s": fmt(self.create_seconds),
            "operator: requests per CR in create (API server)": fmt(
                ratio(self.create_requests, self.n)
            ),
            "RATIO create: operator / bare (target <= 2x)": fmt(
                ratio(self.create_seconds, self.bare_seconds), "x"
            ),
            "per-CR create -> reconciled p50 / p95, s": (
                f"{fmt(percentile(self.latencies, 0.5))} / {fmt(percentile(self.latencies, 0.95))}"
            ),
            "steady: window, s (pods Ready at its start)": (
                f"{fmt(steady.seconds if steady else None, digits=0)} ({self.pods_ready}/{self.n})"
            ),
            "steady: API requests / object / min (target ~0)": fmt(per_min),
            "steady: reconciles / object / min": fmt(
                ratio(steady.reconciles.total / self.n, steady.seconds / 60) if steady else None
            ),
            "steady: operator CPU s / min": fmt(
                ratio(steady.cpu_s, steady.seconds / 60) if steady else None
            ),
            "steady: machine CPU busy (all cores)": fmt(
                100 * steady.machine_busy if steady else None, "%", 0
            ),
            "edit -> Deployment updated p50 / p95, s": (
                f"{fmt(percentile(self.edit_latencies, 0.5))} / "
                f"{fmt(percentile(self.edit_latencies, 0.95))}"
                f" (n={len(self.edit_latencies)}, {self.edit_timeouts} timed out)"
            ),
            "operator RSS idle / after create, MiB": (
                f"{fmt(self.rss_idle_kib / 1024, digits=1)} / "
                f"{fmt(self.rss_loaded_kib / 1024, digits=1)}"
            ),
            "operator RSS with noise pods, MiB (target <= 150)": fmt(
                self.rss_noise_kib / 1024 if self.rss_noise_kib is not None else None, digits=1
            ),
            "operator VmHWM, MiB": fmt(self.hwm_kib / 1024, digits=1),
            "operator sockets / threads at end": f"{self.sockets} / {self.threads}",
            "machine CPU busy: bare / operator create": (
                f"{fmt(100 * self.bare_busy, '%', 0)} / {fmt(100 * self.create_busy, '%', 0)}"
            ),
            "delete N CRs + GC (operator running), s": fmt(self.delete_seconds),
        }
        return rows


async def _flow_count(admin: ClusterConfig, schema: str) -> float:
    return api_counts(await get_text(admin, "/metrics")).flow(schema)


async def bare_phase(
    bench: BenchCluster, admin: ClusterConfig, n: int, opts: Options, deadline: float, log: Log
) -> tuple[float, float, float]:
    """(seconds, requests counted by the API server, machine busy) of the bare baseline."""
    identity = bench.identities["bare"]
    ns, run = bench.namespace, bench.run
    async with KubeClient(admin) as kube:
        created = await create_all(
            kube,
            [model_deployment(f"b-{i:04d}", ns, run) for i in range(n)],
            opts.concurrency,
            deadline,
        )
        log(f"N={n} bare: {n} CRs created in {created.seconds:.1f}s; writing")
        before = await _flow_count(admin, identity.flow_schema)
        machine = procfs.MachineCpu.now()
        seconds, _ = await run_bare(
            load(str(identity.kubeconfig)), created.objects, opts.concurrency, deadline
        )
        busy = procfs.MachineCpu.now().busy_since(machine)
        requests = await _flow_count(admin, identity.flow_schema) - before
        log(f"N={n} bare: {seconds:.2f}s, {requests:.0f} requests; deleting")
        await delete_all(kube, ns, deadline)
    return seconds, requests, busy


async def operator_phases(
    bench: BenchCluster,
    admin: ClusterConfig,
    operator: Operator,
    result: SizeResult,
    opts: Options,
    deadline: float,
    *,
    noise: bool,
    log: Log,
) -> None:
    n, ns, run = result.n, bench.namespace, bench.run
    meter = Meter(admin, operator)
    result.rss_idle_kib = operator.sample().rss_kib
    names = [f"op-{i:04d}" for i in range(n)]
    async with KubeClient(admin) as kube:
        await meter.mark()
        started = time.monotonic()
        watcher = asyncio.create_task(wait_reconciled(kube, ns, set(names), deadline))
        try:
            created = await create_all(
                kube, [model_deployment(x, ns, run) for x in names], opts.concurrency, deadline
            )
            done = await watcher
        finally:
            watcher.cancel()
        first = await meter.window()
        result.create_seconds = max(done.values()) - started
        result.create_requests = first.operator_requests
        result.create_busy = first.machine_busy
        result.latencies = [done[x] - created.done_at[x] for x in names]
        result.rss_loaded_kib = operator.sample().rss_kib
        log(f"N={n} operator: all reconciled in {result.create_seconds:.2f}s; settling")

        # Steady means nothing changes: every pod up, then time for the operator to see it.
        result.pods_ready = await wait_pods_ready(kube, ns, n, 60 + 0.2 * n)
        log(f"N={n}: {result.pods_ready} pods Ready; settling {opts.settle_seconds:.0f}s")
        await asyncio.sleep(opts.settle_seconds)
        await meter.mark()
        log(f"N={n} steady: measuring {opts.steady_seconds:.0f}s with nothing changing")
        await asyncio.sleep(opts.steady_seconds)
        result.steady = await meter.window()

        if opts.edits:
            await _edits(admin, kube, ns, names, result, opts, log)
        if noise and opts.noise_pods:
            result.rss_noise_kib = await _rss_with_noise(bench, kube, operator, opts, log)
        final = operator.sample()
        result.hwm_kib, result.sockets, result.threads = final.hwm_kib, final.sockets, final.threads
        log(f"N={n}: deleting the CRs with the operator running")
        result.delete_seconds = await delete_all(kube, ns, deadline)


async def _edits(
    admin: ClusterConfig,
    kube: KubeClient,
    ns: str,
    names: list[str],
    result: SizeResult,
    opts: Options,
    log: Log,
) -> None:
    """Sequential spec edits of random CRs, each timed until its Deployment has it."""
    tracker = EditTracker.new()
    ready = asyncio.Event()
    per_edit = 60.0
    follow = asyncio.create_task(tracker.follow(admin, ns, opts.edits * per_edit + 60, ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        rng = random.Random(opts.seed)
        for k in range(opts.edits):
            name, marker = rng.choice(names), f"e{k}"
            sent = time.monotonic()
            await kube.patch_merge(kinds.MODEL_DEPLOYMENT, name, ns, edit_patch(marker))
            try:
                landed = await tracker.wait(name, marker, per_edit)
            except TimeoutError:
                result.edit_timeouts += 1
                continue
            result.edit_latencies.append(landed - sent)
        log(
            f"N={result.n} edits: p50 {percentile(result.edit_latencies, 0.5):.2f}s "
            f"p95 {percentile(result.edit_latencies, 0.95):.2f}s"
        )
    finally:
        follow.cancel()


async def _rss_with_noise(
    bench: BenchCluster, kube: KubeClient, operator: Operator, opts: Options, log: Log
) -> int:
    """Operator RSS once ``noise_pods`` unrelated pods exist in namespaces it watches."""
    per_ns = math.ceil(opts.noise_pods / opts.noise_namespaces)
    pods: list[Manifest] = []
    for k in range(opts.noise_namespaces):
        ns = bench.add_noise_namespace(k)
        pods += [
            noise_pod(f"noise-{i:04d}", ns, bench.node, bench.run)
            for i in range(min(per_ns, opts.noise_pods - len(pods)))
        ]
    log(f"noise: creating {len(pods)} pods in {opts.noise_namespaces} namespaces")
    created = await create_all(kube, pods, opts.concurrency, 60 + len(pods) * 0.1)
    log(f"noise: created in {created.seconds:.1f}s; settling {opts.settle_seconds:.0f}s")
    await asyncio.sleep(opts.settle_seconds)
    rss = operator.sample().rss_kib
    for ns in bench.noise_namespaces:  # gone by the end of the run (BenchCluster.close waits)
        bench.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return rss


@dataclass
class SoakResult:
    minutes: float
    cycles: int = 0
    rss_start_kib: int = 0
    rss_end_kib: int = 0
    sockets: tuple[int, int] = (0, 0)
    fds: tuple[int, int] = (0, 0)
    threads: tuple[int, int] = (0, 0)
    extra_start: Mapping[str, float] = field(default_factory=dict)
    extra_end: Mapping[str, float] = field(default_factory=dict)

    def figures(self) -> dict[str, str]:
        growth = ratio(self.rss_end_kib - self.rss_start_kib, self.rss_start_kib)
        rows = {
            "soak: minutes / cycles": f"{self.minutes:g} / {self.cycles}",
            "soak: RSS after 1st cycle -> end, MiB": (
                f"{self.rss_start_kib / 1024:.1f} -> {self.rss_end_kib / 1024:.1f}"
            ),
            "soak: RSS growth (target < 10%)": fmt(100 * growth, "%", 1),
            "soak: open sockets after 1st cycle -> end": f"{self.sockets[0]} -> {self.sockets[1]}",
            "soak: open fds after 1st cycle -> end": f"{self.fds[0]} -> {self.fds[1]}",
            "soak: threads after 1st cycle -> end": f"{self.threads[0]} -> {self.threads[1]}",
        }
        for name in sorted(set(self.extra_start) | set(self.extra_end)):
            rows[f"soak: {name} after 1st cycle -> end"] = (
                f"{self.extra_start.get(name, math.nan):g} -> "
                f"{self.extra_end.get(name, math.nan):g}"
            )
        return rows


async def soak(
    bench: BenchCluster,
    admin: ClusterConfig,
    operator: Operator,
    minutes: float,
    opts: Options,
    log: Log,
) -> SoakResult:
    """Create, edit (a canary for half of them), delete, in a loop for ``minutes``."""
    result = SoakResult(minutes)
    ns, run, batch = bench.namespace, bench.run, 10
    until = time.monotonic() + minutes * 60
    async with KubeClient(admin) as kube:
        while result.cycles == 0 or time.monotonic() < until:
            names = [f"s{result.cycles}-{i}" for i in range(batch)]
            mds = [model_deployment(x, ns, run, canary=i % 2 == 0) for i, x in enumerate(names)]
            await create_all(kube, mds, opts.concurrency, 120)
            await wait_reconciled(kube, ns, set(names), 120)
            for i, name in enumerate(names):  # a new revision: a canary for the even ones
                patch = edit_patch(f"c{result.cycles}")
                if i % 2 == 0:
                    patch["spec"]["model"] = {"version": "2"}
                await kube.patch_merge(kinds.MODEL_DEPLOYMENT, name, ns, patch)
            await wait_reconciled(kube, ns, set(names), 120)
            await asyncio.sleep(2)
            await delete_all(kube, ns, 120)
            result.cycles += 1
            reading, extra = operator.sample(), operator.counts().extra
            if result.cycles == 1:  # warm: the first cycle loads what stays loaded
                result.rss_start_kib = reading.rss_kib
                result.sockets = (reading.sockets, 0)
                result.fds = (reading.fds, 0)
                result.threads = (reading.threads, 0)
                result.extra_start = extra
                log(f"soak: warm RSS {reading.rss_kib / 1024:.1f} MiB; looping {minutes:g} min")
        result.rss_end_kib = reading.rss_kib
        result.sockets = (result.sockets[0], reading.sockets)
        result.fds = (result.fds[0], reading.fds)
        result.threads = (result.threads[0], reading.threads)
        result.extra_end = extra
    return result


def workdir_for(base: Path, run: str) -> Path:
    path = base / run
    path.mkdir(parents=True, exist_ok=True)
    return path
