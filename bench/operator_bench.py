"""Benchmark of the Gantry operator against a bare API client measured in the same run.

    python bench/operator_bench.py [--count N] [--concurrency C] [--steady-passes P]
                                   [--profile PREFIX] [--keep-cluster]

Everything runs on the local control plane (``python -m e2e.cluster up``; reused when it is
already up and then left up, else taken down at the end) in a fresh namespace that is
deleted at the end. Every wait has a deadline; every connection is to loopback.

Each ModelDeployment is CPU-only with ``replicas: 1`` (children: a Service and a Deployment,
no PDB or HPA). Measured, in this order:

1. create: the N ModelDeployments created with ``C`` concurrent POSTs (no operator running);
2. bare: a bare client (``gantry.kube.KubeClient``, the operator's own client class and
   connection limits) doing the writes the operator does on a first reconcile, for each CR
   (server-side apply of the Service and Deployment rendered by ``gantry.render`` from the
   plan ``gantry.rollout.decide`` makes on an empty status, the ``/scale`` patch, and a
   ``/status`` merge patch with the status ``gantry.status`` builds), ``C`` CRs at a time;
3. bare+reads: the same on fresh CRs, plus the reads the reconciler makes on a first
   reconcile (list Deployments and Pods by selector before, one list per child kind for
   garbage collection after): the reconciler's request sequence without kopf;
4. operator: ``gantry run`` in its own process (``GANTRY_RESYNC_SECONDS=30``, watching the
   bench namespace only), the N CRs created the same way, timed from the first POST until
   every CR has a status with ``observedGeneration == generation`` and ``stable`` set (one
   ``kubectl get modeldeployments -o json`` per poll) and its Deployment (checked once at
   the end: the reconciler writes the status after applying the children); then a short
   settle; then, once every CR has had its first periodic resync (which still sees news: its
   pod came up), ``P`` more resync passes over all CRs (steady state: nothing changes);
   last, the deletion of the CRs with the operator still running.

The CRs are deleted and garbage collection is waited for between phases. Reported: wall times,
objects/s, the ratios operator / bare, per-CR time-to-reconciled percentiles, reconcile counts
and ``gantry_reconcile_duration_seconds`` percentiles (operator metrics endpoint), operator
RSS (``VmRSS``/``VmHWM``), CPU and run-queue wait (``/proc``), API-server CPU, machine CPU
use, and the requests of each phase: the bare client's as it sends them; the operator's
counted inside its process by a small wrapper (:data:`INSTRUMENT`) around httpx (the
reconciler's client) and aiohttp (kopf's, and the model-health probes), with TLS handshakes;
plus the API server's own ``apiserver_request_total`` deltas, which on a shared cluster also
hold other clients' traffic. ``--profile`` writes cProfiles of the operator, one per phase
(diagnostics).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import fnmatch
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/operator_bench.py` puts only bench/ on the path
    sys.path.insert(0, str(REPO))

from e2e.cluster import Cluster, Kubectl  # noqa: E402
from e2e.operator_proc import OperatorProcess  # noqa: E402
from gantry.api.plan import Owner  # noqa: E402
from gantry.api.spec import API_VERSION, KIND, ModelDeploymentSpec  # noqa: E402
from gantry.api.status import Endpoints, ModelDeploymentStatus  # noqa: E402
from gantry.kube import ApiError, ClusterConfig, KubeClient, Manifest, load  # noqa: E402
from gantry.kube import resources as kinds  # noqa: E402
from gantry.render import (  # noqa: E402
    CHILD_KINDS,
    render_children,
    revision,
    selector_string,
    service_name,
)
from gantry.rollout import Observations, decide  # noqa: E402
from gantry.status.conditions import StatusInputs, build_status  # noqa: E402

T = TypeVar("T")

CRD_PATH = REPO / "crds" / "serving.gantry.dev_modeldeployments.yaml"
MANAGED = "app.kubernetes.io/managed-by=gantry"
FIELD_MANAGER = "gantry"  # the operator's
SCALE_MANAGER = "gantry-scale"  # the reconciler's
RESYNC_SECONDS = 30.0
OPERATOR_ENV = {"GANTRY_RESYNC_SECONDS": f"{RESYNC_SECONDS:g}"}
POLL_INTERVAL = 0.2
#: Resources whose requests are tabulated per phase (the rest is controller noise).
COUNTED = {
    "modeldeployments",
    "services",
    "deployments",
    "pods",
    "horizontalpodautoscalers",
    "poddisruptionbudgets",
    "httproutes",
    "events",
}


class _Handshakes:
    """TLS handshakes completed in this process (the bare client's new connections)."""

    count = 0

    @classmethod
    def install(cls) -> None:
        original = ssl.SSLObject.do_handshake

        def do_handshake(self: ssl.SSLObject) -> None:
            original(self)  # raises until the handshake is complete
            cls.count += 1

        ssl.SSLObject.do_handshake = do_handshake  # type: ignore[method-assign]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A phase did not finish within its deadline, or the cluster refused something."""


# -- the ModelDeployments ----------------------------------------------------------------------


def model_deployment(name: str, namespace: str) -> Manifest:
    """A CPU-only ModelDeployment with one fixed replica: children are a Service + Deployment."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "tiny", "uri": "https://models.example/tiny.tar.gz", "version": "1"},
            "resources": {"cpu": "10m", "memory": "64Mi"},
            "replicas": 1,
        },
    }


async def gather_bounded(
    items: Sequence[T], work: Callable[[T], Any], concurrency: int, deadline: float
) -> list[Any]:
    """``work(item)`` for every item, ``concurrency`` at a time, all within ``deadline`` s."""
    sem = asyncio.Semaphore(concurrency)

    async def one(item: T) -> Any:
        async with sem:
            return await work(item)

    async with asyncio.timeout(deadline):
        return await asyncio.gather(*(one(i) for i in items))


@dataclass
class Created:
    """CRs as the API server returned them, and when each POST returned (monotonic)."""

    objects: list[Manifest]
    done_at: dict[str, float]
    seconds: float


async def create_all(
    config: ClusterConfig, names: Sequence[str], namespace: str, concurrency: int, deadline: float
) -> Created:
    done_at: dict[str, float] = {}
    async with KubeClient(config, field_manager=FIELD_MANAGER) as kube:

        async def create(name: str) -> Manifest:
            obj = await kube.create(model_deployment(name, namespace))
            done_at[name] = time.monotonic()
            return obj

        started = time.monotonic()
        objects = await gather_bounded(names, create, concurrency, deadline)
        return Created(objects, done_at, time.monotonic() - started)


# -- the bare client ---------------------------------------------------------------------------


def _endpoints(owner: Owner, spec: ModelDeploymentSpec) -> Endpoints:
    host = f"{service_name(owner)}.{owner.namespace}.svc.cluster.local"
    ports = spec.runtime.ports
    return Endpoints(
        http=f"http://{host}:{ports.http}",
        grpc=f"{host}:{ports.grpc}",
        metrics=f"http://{host}:{ports.metrics}/metrics",
    )


async def bare_reconcile(
    kube: KubeClient, md: Manifest, requests: Counter[str], *, reads: bool
) -> None:
    """The API calls of the operator's first reconcile of ``md``, without kopf.

    Writes always (apply of each rendered child, ``/scale``, ``/status``); with ``reads``
    also the reconciler's lists (Deployments and Pods before, one per child kind after).
    """
    meta = md["metadata"]
    owner = Owner(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=int(meta.get("generation", 1)),
    )
    spec = ModelDeploymentSpec.model_validate(md["spec"])
    selector = selector_string(owner)
    if reads:
        await kube.list(kinds.DEPLOYMENT, owner.namespace, selector=selector)
        await kube.list(kinds.POD, owner.namespace, selector=selector)
        requests.update(["LIST deployments", "LIST pods"])
    now = datetime.datetime.now(datetime.UTC)
    empty = ModelDeploymentStatus()
    decision = decide(
        spec, empty, Observations(), now, desired_revision=revision(spec), md_name=owner.name
    )
    for child in render_children(owner, spec, decision.plan):
        await kube.apply(child)
        requests[f"APPLY {kinds.resource_of(child).plural}"] += 1
    for dep in decision.plan.deployments:
        if dep.replicas is not None:
            await kube.scale(
                kinds.DEPLOYMENT, dep.name, owner.namespace, dep.replicas, manager=SCALE_MANAGER
            )
            requests["PATCH deployments/scale"] += 1
    if reads:
        for child_kind in CHILD_KINDS:
            res = kinds.KNOWN[(child_kind.api_version, child_kind.kind)]
            try:
                await kube.list(res, owner.namespace, selector=selector)
                requests[f"LIST {res.plural}"] += 1
            except ApiError as exc:
                if not exc.not_found:  # HTTPRoute without Gateway API CRDs, as the operator
                    raise
                requests[f"LIST {res.plural} [404]"] += 1
    status = build_status(
        StatusInputs(
            generation=owner.generation,
            stable=decision.stable,
            canary=decision.canary,
            deployments={},
            endpoints=_endpoints(owner, spec),
            selector=selector,
        ),
        empty,
        now,
    )
    body = {"status": status.model_dump(mode="json", by_alias=True)}
    await kube.patch_merge(kinds.MODEL_DEPLOYMENT, owner.name, owner.namespace, body, sub="status")
    requests["PATCH modeldeployments/status"] += 1


async def run_bare(
    config: ClusterConfig,
    mds: Sequence[Manifest],
    concurrency: int,
    deadline: float,
    requests: Counter[str],
    *,
    reads: bool,
) -> float:
    async with KubeClient(config, field_manager=FIELD_MANAGER) as kube:

        async def one(md: Manifest) -> None:
            await bare_reconcile(kube, md, requests, reads=reads)

        started = time.monotonic()
        await gather_bounded(mds, one, concurrency, deadline)
        return time.monotonic() - started


# -- cluster helpers ---------------------------------------------------------------------------


async def delete_all_and_wait_gc(config: ClusterConfig, namespace: str, deadline: float) -> float:
    """Delete every ModelDeployment of ``namespace``; wait until they and their children are gone.

    With the operator running this includes whatever it does on deletion (a finalizer, if it
    sets one, is removed by it).
    """
    started = time.monotonic()
    async with KubeClient(config, field_manager=FIELD_MANAGER) as kube:
        mds = await kube.list(kinds.MODEL_DEPLOYMENT, namespace)
        await gather_bounded(
            mds,
            lambda md: kube.delete(kinds.MODEL_DEPLOYMENT, md["metadata"]["name"], namespace),
            32,
            deadline,
        )
        left: dict[str, int] = {}
        while time.monotonic() - started < deadline:
            left = {}
            for res in (kinds.MODEL_DEPLOYMENT, kinds.DEPLOYMENT, kinds.SERVICE, kinds.POD):
                selector = None if res is kinds.MODEL_DEPLOYMENT else MANAGED
                items = await kube.list(res, namespace, selector=selector)
                if items:
                    left[res.plural] = len(items)
            if not left:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
    raise BenchError(f"deletion/garbage collection not done within {deadline:.0f}s; left: {left}")


def strip_finalizers(kubectl: Kubectl, namespace: str) -> int:
    """Remove finalizers from CRs left behind once the operator is gone (failure paths: a
    finalizer, e.g. the one kopf puts on objects that a kopf timer serves, would otherwise
    block deleting the namespace forever)."""
    result = kubectl("get", "modeldeployments", "-n", namespace, "-o", "name", check=False)
    names = result.stdout.split() if result.returncode == 0 else []
    for name in names:
        kubectl(
            "patch",
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
            timeout=30,
        )
    return len(names)


def install_crd(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=CRD_PATH.read_text())
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/modeldeployments.serving.gantry.dev",
        "--timeout=60s",
        timeout=90,
    )


_METRIC_LINE = re.compile(
    r"^apiserver_request_(?P<what>total|duration_seconds_sum|duration_seconds_count)"
    r"\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$"
)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _request_key(labels: Mapping[str, str], *, code: bool) -> str | None:
    resource = labels.get("resource", "")
    if resource not in COUNTED:
        return None
    if labels.get("group") == "events.k8s.io":
        resource = "events.k8s.io/events"
    key = f"{labels.get('verb', '?')} {resource}"
    if labels.get("subresource"):
        key += "/" + labels["subresource"]
    if labels.get("scope") == "cluster":
        key += " (cluster)"  # informers of the controllers, not per-object work
    if code and not labels.get("code", "200").startswith("2"):
        key += f" [{labels['code']}]"
    return key


@dataclass
class ApiSnapshot:
    """The API server's request counters, summed to ``VERB resource[/sub]`` keys."""

    counts: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # server-side time, by key
    observed: dict[str, float] = field(default_factory=dict)  # requests timed, by key

    def __sub__(self, other: ApiSnapshot) -> ApiSnapshot:
        def minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
            out = {k: v - b.get(k, 0.0) for k, v in a.items()}
            return {k: v for k, v in out.items() if v > 0}

        return ApiSnapshot(
            minus(self.counts, other.counts),
            minus(self.seconds, other.seconds),
            minus(self.observed, other.observed),
        )

    def mean_ms(self, key: str) -> float | None:
        base = key.split(" [")[0]
        n = self.observed.get(base, 0.0)
        return self.seconds.get(base, 0.0) / n * 1000 if n else None


def api_snapshot(kubectl: Kubectl) -> ApiSnapshot:
    text = kubectl("get", "--raw", "/metrics", timeout=30).stdout
    snap = ApiSnapshot()
    for line in text.splitlines():
        m = _METRIC_LINE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        what = m["what"]
        key = _request_key(labels, code=what == "total")
        if key is None:
            continue
        target = {
            "total": snap.counts,
            "duration_seconds_sum": snap.seconds,
            "duration_seconds_count": snap.observed,
        }[what]
        target[key] = target.get(key, 0.0) + float(m["value"])
    return snap


def md_events(kubectl: Kubectl, namespace: str) -> Counter[str]:
    """Events about ModelDeployments (only the operator posts them), by type and reason."""
    counts: Counter[str] = Counter()
    for event in kubectl.json("get", "events", "-n", namespace)["items"]:
        if event.get("involvedObject", {}).get("kind") != KIND:
            continue
        message = re.sub(r"\d+", "#", event.get("message") or "")[:48]
        key = f"{event.get('type', '')} {event.get('reason', '')}: {message}"
        counts[key] += int(event.get("count") or 1)
    return counts


# -- /proc -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    rss_kib: int
    hwm_kib: int
    cpu_s: float
    runqueue_s: float  # all threads: time runnable but waiting for a CPU (schedstat)


def proc_sample(pid: int) -> ProcSample | None:
    """RSS, peak RSS and CPU time (user+system) of ``pid``; None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = {k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())}

    def kib(key: str) -> int:
        return int(fields.get(key, "0 kB").split()[0])

    # After the parenthesised command name, utime and stime are the 12th and 13th fields.
    after = stat.rsplit(")", 1)[1].split()
    ticks = int(after[11]) + int(after[12])
    waited_ns = 0
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            waited_ns += int(task.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return ProcSample(kib("VmRSS"), kib("VmHWM"), ticks / os.sysconf("SC_CLK_TCK"), waited_ns / 1e9)


def cpu_seconds(pid: int | None) -> float:
    sample = proc_sample(pid) if pid is not None else None
    return sample.cpu_s if sample is not None else float("nan")


def runqueue_seconds(pid: int | None) -> float:
    sample = proc_sample(pid) if pid is not None else None
    return sample.runqueue_s if sample is not None else float("nan")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def children_cpu_seconds() -> float:
    """CPU time of this process's reaped children (kubectl calls)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _watched_namespaces(words: Sequence[str]) -> list[str]:
    """The ``--namespace``/``-n`` values of a ``gantry run`` command line (kopf globs)."""
    found = []
    for i, word in enumerate(words):
        if word.startswith("--namespace="):
            found.append(word.split("=", 1)[1])
        elif word in ("--namespace", "-n") and i + 1 < len(words):
            found.append(words[i + 1])
    return found


def other_operators(namespace: str) -> tuple[list[int], list[int]]:
    """Pids of other ``gantry run`` processes: (watching ``namespace``, watching others only).

    The first kind reconciles the bench's CRs too; the second only shares the machine.
    """
    seeing, elsewhere = [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        direct = "gantry.cli" in words and "run" in words  # python -m gantry.cli run
        script = any(
            w.endswith("gantry") and words[i + 1 : i + 2] == ["run"]
            for i, w in enumerate(words[:2])
        )
        if not (direct or script):
            continue
        scopes = _watched_namespaces(words)
        if not scopes or any(fnmatch.fnmatchcase(namespace, glob) for glob in scopes):
            seeing.append(int(entry.name))
        else:
            elsewhere.append(int(entry.name))
    return seeing, elsewhere


# -- attributing API requests to the operator --------------------------------------------------

#: Started instead of ``python -m gantry.cli``: counts the operator's HTTP requests by client
#: (kopf's aiohttp session, the reconciler's httpx client, probes), verb, resource and status,
#: with client-side time, and dumps them to $GANTRY_BENCH_COUNTS every 0.2 s. The operator code
#: runs unchanged (``runpy``); the API server's own counters cannot tell its clients apart on a
#: shared cluster.
INSTRUMENT = r"""
import atexit, json, os, runpy, ssl, sys, threading, time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx

OUT = os.environ["GANTRY_BENCH_COUNTS"]
APISERVER = os.environ["GANTRY_BENCH_APISERVER"]  # host:port
counts, seconds, failures = {}, {}, []
lock = threading.Lock()


def key(client, method, url, content_type, status):
    parts = urlsplit(str(url))
    if parts.netloc.rsplit("@", 1)[-1] != APISERVER:  # tritonclient's model-health probes
        return f"reconciler {method} (pod probe)"
    segs = [p for p in parts.path.split("/") if p]
    rest = segs[2:] if segs[:1] == ["api"] else segs[3:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    resource = (rest[0] if rest else parts.path) + (f"/{rest[2]}" if len(rest) > 2 else "")
    verb = method
    if method == "GET":
        query = parse_qs(parts.query)
        verb = "WATCH" if query.get("watch") == ["true"] else ("LIST" if len(rest) == 1 else "GET")
    elif method == "PATCH" and "apply-patch" in (content_type or ""):
        verb = "APPLY"
    tail = "" if 200 <= status < 300 else f" [{status}]"
    return f"{client} {verb} {resource}{tail}"


def record(k, elapsed):
    with lock:
        counts[k] = counts.get(k, 0) + 1
        seconds[k] = seconds.get(k, 0.0) + elapsed


_send = httpx.AsyncClient.send


async def send(self, request, **kwargs):
    t0, status = time.perf_counter(), 0
    try:
        response = await _send(self, request, **kwargs)
        status = response.status_code
        return response
    finally:
        ctype = request.headers.get("content-type")
        k = key("reconciler", request.method, request.url, ctype, status)
        record(k, time.perf_counter() - t0)


_request = aiohttp.ClientSession._request


async def request(self, method, str_or_url, **kwargs):
    t0, status = time.perf_counter(), 0
    try:
        response = await _request(self, method, str_or_url, **kwargs)
        status = response.status
        if status >= 400 and len(failures) < 5 and "watch=" not in str(str_or_url):
            failures.append(f"{method} {str_or_url} -> {status}: {(await response.text())[:300]}")
        return response
    finally:
        headers = {k.lower(): v for k, v in (kwargs.get("headers") or {}).items()}
        k = key("kopf", method.upper(), str_or_url, headers.get("content-type", ""), status)
        record(k, time.perf_counter() - t0)


httpx.AsyncClient.send = send
aiohttp.ClientSession._request = request

_handshake = ssl.SSLObject.do_handshake


def do_handshake(self):
    _handshake(self)  # raises until the handshake is complete
    record("tls handshakes", 0.0)


ssl.SSLObject.do_handshake = do_handshake  # httpx (anyio) and aiohttp (asyncio) both use it


def dump():
    with lock:
        data = {"counts": dict(counts), "seconds": dict(seconds), "failures": list(failures)}
    with open(OUT + ".tmp", "w") as fh:
        json.dump(data, fh)
    os.replace(OUT + ".tmp", OUT)


def dumper():
    while True:
        time.sleep(0.2)
        dump()


threading.Thread(target=dumper, daemon=True).start()
atexit.register(dump)
if os.environ.get("GANTRY_BENCH_PROFILE"):  # the event loop's thread, i.e. all operator code
    import cProfile, signal

    PREFIX = os.environ["GANTRY_BENCH_PROFILE"]
    SEGMENTS = os.environ.get("GANTRY_BENCH_PROFILE_SEGMENTS", "").split(",")
    state = {"profile": cProfile.Profile(), "index": 0}

    def save_segment():
        state["profile"].disable()
        i = state["index"]
        name = SEGMENTS[i] if i < len(SEGMENTS) and SEGMENTS[i] else str(i)
        state["profile"].dump_stats(f"{PREFIX}.{name}")
        state["index"] = i + 1

    def cut(*_):  # SIGUSR1: one profile per phase of the bench
        try:  # an exception here would surface in whatever the event loop was running
            save_segment()
        except Exception as exc:
            print(f"bench profile: {exc!r}", file=sys.stderr)
        state["profile"] = cProfile.Profile()
        state["profile"].enable()

    signal.signal(signal.SIGUSR1, cut)
    atexit.register(save_segment)
    state["profile"].enable()
sys.argv = ["gantry", *sys.argv[1:]]
runpy.run_module("gantry.cli", run_name="__main__", alter_sys=True)
"""


@dataclass
class ClientCounts:
    """The operator's own requests (from the instrumentation), by ``client VERB resource``."""

    counts: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def __sub__(self, other: ClientCounts) -> ClientCounts:
        def minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
            return {k: v - b.get(k, 0.0) for k, v in a.items() if v - b.get(k, 0.0) > 0}

        return ClientCounts(
            minus(self.counts, other.counts), minus(self.seconds, other.seconds), self.failures
        )

    @property
    def handshakes(self) -> float:
        return self.counts.get("tls handshakes", 0.0)

    def total(self, client: str | None = None) -> float:
        return sum(
            v
            for k, v in self.counts.items()
            if "(pod probe)" not in k
            and " WATCH " not in k
            and k != "tls handshakes"
            and (client is None or k.startswith(client + " "))
        )


class BenchOperator(OperatorProcess):
    """``gantry run`` as :class:`OperatorProcess` starts it, but watching one namespace only
    (the local cluster is shared with other sessions' e2e runs, whose objects it must not
    touch) and with its HTTP requests counted (:data:`INSTRUMENT`)."""

    def __init__(
        self,
        workdir: Path,
        *,
        kubeconfig: Path,
        env: Mapping[str, str],
        namespace: str,
        apiserver: str,
    ) -> None:
        self.counts_path = workdir / "requests.json"
        self.script = workdir / "instrumented_gantry.py"
        self.script.write_text(INSTRUMENT)
        super().__init__(
            workdir / "operator.log",
            kubeconfig=kubeconfig,
            env={
                **env,
                "GANTRY_BENCH_COUNTS": str(self.counts_path),
                "GANTRY_BENCH_APISERVER": apiserver,
            },
        )
        self.namespace = namespace

    def command(self) -> list[str]:
        """The instrumented entry point, limited to the bench namespace."""
        return [
            sys.executable,
            str(self.script),
            "run",
            f"--namespace={self.namespace}",
            f"--metrics-port={self.metrics_port}",
            f"--liveness-port={self.liveness_port}",
        ]

    def cut_profile(self) -> None:
        """End the current profile segment (``--profile``) and start the next."""
        if self._proc is not None and "GANTRY_BENCH_PROFILE" in self._env:
            os.kill(self._proc.pid, signal.SIGUSR1)

    def requests(self) -> ClientCounts:
        """The counts as last dumped (at most 0.2 s old; wait that long before reading)."""
        try:
            data = json.loads(self.counts_path.read_text())
        except (OSError, ValueError):
            return ClientCounts()
        return ClientCounts(data["counts"], data["seconds"], data.get("failures", []))


# -- the operator's metrics --------------------------------------------------------------------


@dataclass(frozen=True)
class Histogram:
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count), +Inf last
    count: float = 0.0
    total: float = 0.0

    def __sub__(self, other: Histogram) -> Histogram:
        before = dict(other.buckets)
        return Histogram(
            tuple((le, c - before.get(le, 0.0)) for le, c in self.buckets),
            self.count - other.count,
            self.total - other.total,
        )

    def quantile(self, q: float) -> float:
        """Like PromQL's ``histogram_quantile``: linear inside the bucket."""
        if self.count <= 0:
            return float("nan")
        rank = q * self.count
        lower, below = 0.0, 0.0
        for upper, cumulative in self.buckets:
            if cumulative >= rank:
                if upper == float("inf"):
                    return upper  # beyond the last finite bound
                inside = cumulative - below
                return lower + (upper - lower) * ((rank - below) / inside if inside else 0)
            lower, below = upper, cumulative
        return lower

    def summary(self) -> str:
        if self.count <= 0:
            return "n/a"
        finite = [le for le, _ in self.buckets if le != float("inf")]
        top = f">{max(finite) * 1000:.0f}" if finite else "inf"
        ps = " / ".join(
            f"{v * 1000:.0f}" if v != float("inf") else top
            for v in (self.quantile(q) for q in (0.5, 0.9, 0.99))
        )
        return f"{ps} ms, mean {self.total / self.count * 1000:.0f} ms ({self.count:.0f} calls)"


@dataclass(frozen=True)
class OperatorMetrics:
    reconcile: Histogram
    outcomes: dict[str, float]

    @property
    def reconciles(self) -> float:
        return sum(self.outcomes.values())


def operator_metrics(url: str) -> OperatorMetrics:
    """The reconcile-duration histogram and ``gantry_reconcile_total`` by outcome."""
    text = httpx.get(url, timeout=5).text
    buckets: list[tuple[float, float]] = []
    count = total = 0.0
    outcomes: dict[str, float] = {}
    for line in text.splitlines():
        value = line.rsplit(" ", 1)[-1]
        if line.startswith("gantry_reconcile_duration_seconds_bucket{"):
            le = re.search(r'le="([^"]+)"', line)
            if le:
                buckets.append((float(le[1]), float(value)))
        elif line.startswith("gantry_reconcile_duration_seconds_count"):
            count = float(value)
        elif line.startswith("gantry_reconcile_duration_seconds_sum"):
            total = float(value)
        elif line.startswith("gantry_reconcile_total{"):
            outcome = re.search(r'outcome="([^"]+)"', line)
            if outcome:
                outcomes[outcome[1]] = float(value)
    return OperatorMetrics(Histogram(tuple(sorted(buckets)), count, total), outcomes)


# -- the operator phase ------------------------------------------------------------------------


def reconciled_names(mds: Mapping[str, Any]) -> dict[str, str]:
    """Name -> uid of the CRs whose status is current and names a stable revision.

    The reconciler writes the status after it applied the children, so such a CR has its
    Deployment; :func:`owners_of_deployments` checks that once at the end.
    """
    done = {}
    for md in mds.get("items", []):
        meta, status = md["metadata"], md.get("status") or {}
        if status.get("observedGeneration") == meta.get("generation") and status.get("stable"):
            done[meta["name"]] = meta["uid"]
    return done


def owners_of_deployments(deployments: Mapping[str, Any]) -> set[str]:
    """UIDs of the ModelDeployments that control a Deployment in ``deployments``."""
    return {
        ref["uid"]
        for item in deployments.get("items", [])
        for ref in item["metadata"].get("ownerReferences") or []
        if ref.get("kind") == KIND and ref.get("controller")
    }


@dataclass
class Window:
    """What the operator and the API server did between two instants."""

    seconds: float
    requests: ApiSnapshot
    operator_cpu_s: float
    apiserver_cpu_s: float
    metrics: OperatorMetrics  # deltas
    own: ClientCounts  # the operator's own requests
    operator_runqueue_s: float
    machine_busy: float  # fraction of all CPUs busy


@dataclass
class OperatorRun:
    seconds: float = 0.0
    create_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    polls: int = 0
    poll_seconds: float = 0.0
    poll_cpu_s: float = 0.0
    idle: ProcSample | None = None
    peak_rss_kib: int = 0
    end: ProcSample | None = None
    first: Window | None = None  # creates until all reconciled
    settled: Window | None = None  # the same plus a short settle (trailing events)
    steady: Window | None = None  # afterwards: periodic resyncs only
    steady_pass_seconds: float = 0.0  # first to last reconcile of one resync pass
    events_first: Counter[str] = field(default_factory=Counter)
    events_steady: Counter[str] = field(default_factory=Counter)
    delete_seconds: float = 0.0


def _busy_since(before: tuple[float, float]) -> float:
    busy, total = machine_busy()
    return (busy - before[0]) / max(total - before[1], 1e-9)


class Meter:
    """Takes before/after readings of the API server, both processes and the operator."""

    def __init__(
        self, kubectl: Kubectl, operator: BenchOperator, apiserver_pid: int | None
    ) -> None:
        assert operator._proc is not None
        self.operator = operator
        self.kubectl = kubectl
        self.url = operator.metrics_url
        self.pid = operator._proc.pid
        self.apiserver_pid = apiserver_pid
        self.mark()

    def mark(self) -> None:
        self.t0 = time.monotonic()
        self.api0 = api_snapshot(self.kubectl)
        self.cpu0 = cpu_seconds(self.pid)
        self.api_cpu0 = cpu_seconds(self.apiserver_pid)
        self.wait0 = runqueue_seconds(self.pid)
        self.busy0 = machine_busy()
        self.metrics0 = operator_metrics(self.url)
        self.own0 = self.operator.requests()

    def window(self, end: float | None = None) -> Window:
        at = time.monotonic()
        metrics = operator_metrics(self.url)
        time.sleep(0.25)  # the instrumentation dumps every 0.2 s
        outcomes = {k: v - self.metrics0.outcomes.get(k, 0.0) for k, v in metrics.outcomes.items()}
        return Window(
            seconds=(end if end is not None else at) - self.t0,
            requests=api_snapshot(self.kubectl) - self.api0,
            operator_cpu_s=cpu_seconds(self.pid) - self.cpu0,
            apiserver_cpu_s=cpu_seconds(self.apiserver_pid) - self.api_cpu0,
            metrics=OperatorMetrics(metrics.reconcile - self.metrics0.reconcile, outcomes),
            own=self.operator.requests() - self.own0,
            operator_runqueue_s=runqueue_seconds(self.pid) - self.wait0,
            machine_busy=_busy_since(self.busy0),
        )


async def watch_until_reconciled(
    kubectl: Kubectl,
    namespace: str,
    names: set[str],
    pid: int,
    run: OperatorRun,
    first_done: dict[str, float],
    deadline_at: float,
) -> None:
    done: dict[str, str] = {}
    while True:
        t0, cpu0 = time.monotonic(), children_cpu_seconds()
        result = await asyncio.to_thread(
            kubectl.run,
            "get",
            "modeldeployments",
            "-n",
            namespace,
            "-o",
            "json",
            timeout=max(5.0, deadline_at - t0),
        )
        now = time.monotonic()
        run.polls += 1
        run.poll_seconds += now - t0
        run.poll_cpu_s += children_cpu_seconds() - cpu0
        for name, uid in reconciled_names(json.loads(result.stdout)).items():
            if name in names and name not in done:
                first_done[name] = now
                done[name] = uid
        sample = proc_sample(pid)
        if sample is not None:
            run.peak_rss_kib = max(run.peak_rss_kib, sample.rss_kib)
        if names <= done.keys():
            deployments = await asyncio.to_thread(
                kubectl.json, "get", "deployments", "-n", namespace, timeout=60
            )
            missing = set(done.values()) - owners_of_deployments(deployments)
            if missing:
                raise BenchError(f"{len(missing)} reconciled CRs have no Deployment: {missing}")
            return
        if now >= deadline_at:
            left = sorted(names - done.keys())
            raise BenchError(
                f"{len(left)} of {len(names)} ModelDeployments not reconciled in time "
                f"(e.g. {left[:5]})"
            )
        # Polling costs CPU on the same machine: never more than about half of the time.
        await asyncio.sleep(max(POLL_INTERVAL, now - t0))


async def _wait_for_reconciles(operator: BenchOperator, target: float, until: float) -> float:
    """Poll the operator's reconcile counter until it reaches ``target``; return when."""
    while True:
        metrics = await asyncio.to_thread(operator_metrics, operator.metrics_url)
        now = time.monotonic()
        if metrics.reconciles >= target:
            return now
        if now > until:
            raise BenchError(
                f"operator reconciled {metrics.reconciles:.0f} of {target:.0f} in time"
            )
        await asyncio.sleep(0.25)


async def operator_phase(
    config: ClusterConfig,
    kubectl: Kubectl,
    operator: BenchOperator,
    namespace: str,
    names: Sequence[str],
    concurrency: int,
    deadline: float,
    steady_passes: int,
    apiserver_pid: int | None,
) -> OperatorRun:
    assert operator._proc is not None
    pid = operator._proc.pid
    run = OperatorRun(idle=proc_sample(pid))
    first_done: dict[str, float] = {}
    meter = Meter(kubectl, operator, apiserver_pid)
    started = time.monotonic()
    # Watch from the first POST: the operator starts reconciling while the rest are created.
    watcher = asyncio.create_task(
        watch_until_reconciled(
            kubectl, namespace, set(names), pid, run, first_done, started + deadline
        )
    )
    try:
        created = await create_all(config, names, namespace, concurrency, deadline)
        await watcher
    finally:
        if not watcher.done():
            watcher.cancel()
    finished = max(first_done.values())
    run.seconds = finished - started
    run.create_seconds = created.seconds
    run.latencies = sorted(first_done[n] - created.done_at[n] for n in names)
    run.first = meter.window(finished)
    operator.cut_profile()
    log(f"operator: all {len(names)} reconciled in {run.seconds:.2f}s")
    # What trails the status writes (events, a reconcile caused by the operator's own patch).
    await asyncio.sleep(3.0)
    run.settled = meter.window()
    run.events_first = md_events(kubectl, namespace)
    if steady_passes > 0:
        # The first periodic resync of a CR still sees news (its pod came up since the first
        # reconcile); steady state is what the resyncs after that one cost.
        n = len(names)
        wait_until = time.monotonic() + (1 + steady_passes) * (RESYNC_SECONDS + deadline)
        log(f"operator: waiting for every CR's first periodic resync ({2 * n} reconciles)")
        await _wait_for_reconciles(operator, 2 * n, wait_until)
        log(f"operator: measuring {steady_passes} more resync pass(es) (steady state)")
        events_before = md_events(kubectl, namespace)
        operator.cut_profile()
        meter.mark()
        started_at = meter.metrics0.reconciles
        first_at = await _wait_for_reconciles(operator, started_at + 1, wait_until)
        last_at = await _wait_for_reconciles(operator, started_at + steady_passes * n, wait_until)
        run.steady = meter.window()
        operator.cut_profile()
        run.steady_pass_seconds = (last_at - first_at) / steady_passes
        run.events_steady = md_events(kubectl, namespace) - events_before
    sample = proc_sample(pid)
    run.end = sample
    if sample is not None:
        run.peak_rss_kib = max(run.peak_rss_kib, sample.rss_kib)
    log("operator: deleting the CRs with the operator running")
    run.delete_seconds = await delete_all_and_wait_gc(config, namespace, deadline)
    return run


# -- report ------------------------------------------------------------------------------------


@dataclass
class BarePhase:
    label: str
    create_seconds: float
    seconds: float
    gc_seconds: float
    apiserver_cpu_s: float
    requests: ApiSnapshot
    own: Counter[str]
    machine_busy: float


def code_fingerprint() -> str:
    """Which operator code was measured (the tree may be uncommitted)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "operator" / "gantry").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def _table(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _split_own(own: ClientCounts, client: str) -> dict[str, float]:
    """``client VERB resource`` counts of one client, keyed ``VERB resource``."""
    prefix = client + " "
    return {
        k[len(prefix) :]: v
        for k, v in own.counts.items()
        if k.startswith(prefix) and " WATCH " not in k
    }


def _mean_ms(own: ClientCounts, key: str) -> float | None:
    n = own.counts.get(key, 0.0)
    return own.seconds.get(key, 0.0) / n * 1000 if n else None


def print_report(
    count: int, concurrency: int, bare: list[BarePhase], op: OperatorRun, warnings: list[str]
) -> None:
    writes, reads = bare[0], bare[1]
    first, settled, steady = op.first, op.settled, op.steady
    assert first is not None
    assert settled is not None
    lat = op.latencies
    rows: list[tuple[str, str]] = [
        ("ModelDeployments (N), CPU-only, replicas 1", str(count)),
        ("CRs in flight (bare client and creates)", str(concurrency)),
        ("machine", f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}"),
        ("operator code (sha256 of operator/gantry/**/*.py)", code_fingerprint()),
    ]
    for phase in bare:
        rows += [
            (f"{phase.label}: create N CRs", f"{phase.create_seconds:.2f} s"),
            (
                f"{phase.label}: API work",
                f"{phase.seconds:.2f} s  ({count / phase.seconds:.1f} objects/s, "
                f"{phase.own.total() - phase.own['tls handshakes']:.0f} requests, "
                f"{phase.own['tls handshakes']} TLS handshakes)",
            ),
            (f"{phase.label}: kube-apiserver CPU", f"{phase.apiserver_cpu_s:.2f} s"),
            (f"{phase.label}: machine CPU busy", f"{phase.machine_busy:.0%} of all cores"),
            (f"{phase.label}: delete N CRs + GC", f"{phase.gc_seconds:.2f} s"),
        ]
    first_own = first.own.total()
    rows += [
        ("operator: create N CRs (inside its window)", f"{op.create_seconds:.2f} s"),
        (
            "operator: first POST -> all reconciled",
            f"{op.seconds:.2f} s  ({count / op.seconds:.1f} objects/s, "
            f"{first_own:.0f} requests, {first.own.handshakes:.0f} TLS handshakes)",
        ),
        (
            "operator: per CR create -> reconciled p50/p90/p99/max",
            " / ".join(f"{percentile(lat, q):.2f}" for q in (0.5, 0.9, 0.99, 1.0)) + " s",
        ),
        (
            "operator: polls (bench side)",
            f"{op.poll_seconds / max(op.polls, 1):.2f} s each, {op.polls} polls, "
            f"kubectl CPU {op.poll_cpu_s:.2f} s",
        ),
        ("operator: reconcile() p50/p90/p99", first.metrics.reconcile.summary()),
        (
            "operator: reconciles by outcome at done / +3 s",
            f"{first.metrics.outcomes} / {settled.metrics.outcomes}",
        ),
        (
            "operator: sum of reconcile() time / wall",
            f"{first.metrics.reconcile.total:.1f} s / {op.seconds:.1f} s",
        ),
        (
            "operator: operator CPU in window",
            f"{first.operator_cpu_s:.2f} s ({first.operator_cpu_s / op.seconds:.0%} of one core)",
        ),
        (
            "operator: operator runqueue wait in window",
            f"{first.operator_runqueue_s:.2f} s (runnable, no CPU free)",
        ),
        ("operator: kube-apiserver CPU in window", f"{first.apiserver_cpu_s:.2f} s"),
        ("operator: machine CPU busy in window", f"{first.machine_busy:.0%} of all cores"),
        (
            "operator RSS: idle / peak sampled / end (VmRSS)",
            f"{mib(op.idle.rss_kib if op.idle else None)} / {mib(op.peak_rss_kib)} / "
            f"{mib(op.end.rss_kib if op.end else None)}",
        ),
        ("operator VmHWM at end", mib(op.end.hwm_kib if op.end else None)),
        ("operator: delete N CRs + GC (operator running)", f"{op.delete_seconds:.2f} s"),
    ]
    if steady is not None:
        n = steady.metrics.reconciles
        per = max(n, 1.0)
        rows += [
            (
                "steady: reconciles measured",
                f"{n:.0f} ({steady.metrics.outcomes}) in {steady.seconds:.0f} s",
            ),
            (
                "steady: one resync pass over all CRs",
                f"{op.steady_pass_seconds:.1f} s first to last reconcile "
                f"({count / max(op.steady_pass_seconds, 1e-9):.1f} reconciles/s)",
            ),
            ("steady: reconcile() p50/p90/p99", steady.metrics.reconcile.summary()),
            (
                "steady: API requests per reconcile",
                f"{steady.own.total() / per:.2f} "
                f"(gantry/httpx {steady.own.total('reconciler') / per:.2f}, "
                f"kopf/aiohttp {steady.own.total('kopf') / per:.2f}); "
                f"{steady.own.handshakes / per:.2f} TLS handshakes",
            ),
            (
                "steady: operator CPU per reconcile",
                f"{steady.operator_cpu_s / per * 1000:.1f} ms",
            ),
            (
                "steady: kube-apiserver CPU per reconcile (whole server)",
                f"{steady.apiserver_cpu_s / per * 1000:.1f} ms",
            ),
            ("steady: machine CPU busy", f"{steady.machine_busy:.0%} of all cores"),
        ]
    rows += [
        ("ratio operator / bare", f"{op.seconds / writes.seconds:.2f}x"),
        (
            "ratio operator / (bare + its creates)",
            f"{op.seconds / (writes.seconds + writes.create_seconds):.2f}x",
        ),
        ("ratio operator / bare+reads", f"{op.seconds / reads.seconds:.2f}x"),
        ("ratio bare+reads / bare", f"{reads.seconds / writes.seconds:.2f}x"),
        (
            "ratio API requests operator / bare",
            f"{first_own / max(writes.own.total() - writes.own['tls handshakes'], 1):.2f}x",
        ),
        (
            "ratio apiserver CPU operator / bare",
            f"{first.apiserver_cpu_s / max(writes.apiserver_cpu_s, 1e-9):.2f}x",
        ),
    ]
    print()
    print(f"Operator benchmark (N={count})")
    print("-" * 100)
    _table(rows)

    print()
    print(
        "Requests sent, per CR (first reconcile windows) or per reconcile (steady); the "
        "operator's are counted inside its process by HTTP client (gantry: httpx, i.e. "
        "KubeClient, plus the model probes; kopf: aiohttp), with mean client-side ms"
    )
    columns: list[tuple[str, dict[str, float], float, ClientCounts | None, str]] = [
        (p.label, {k: v for k, v in p.own.items() if k != "tls handshakes"}, count, None, "")
        for p in bare
    ]
    names = {"reconciler": "gantry (httpx)", "kopf": "kopf (aiohttp)"}
    for client in ("reconciler", "kopf"):
        columns.append(
            (names[client], _split_own(first.own, client), float(count), first.own, client)
        )
    if steady is not None:
        per = max(steady.metrics.reconciles, 1.0)
        for client in ("reconciler", "kopf"):
            columns.append(
                (
                    f"steady {names[client].split()[0]}",
                    _split_own(steady.own, client),
                    per,
                    steady.own,
                    client,
                )
            )
    keys = sorted(set().union(*(c[1].keys() for c in columns)))
    kw = max([len(k) for k in keys] + [10])
    print(f"{'request':<{kw}}" + "".join(f"  {c[0]:>18}" for c in columns))
    for key in keys:
        cells = ""
        for _, counts, div, own, client in columns:
            v = counts.get(key, 0.0)
            ms = _mean_ms(own, f"{client} {key}") if own is not None else None
            text = f"{v / div:.2f}" + (f" ({ms:.0f}ms)" if ms is not None else "")
            cells += f"  {text:>18}" if v else f"  {'':>18}"
        print(f"{key:<{kw}}{cells}")
    totals = "".join(
        f"  {sum(v for k, v in c[1].items() if '(pod probe)' not in k) / c[2]:>18.2f}"
        for c in columns
    )
    print(f"{'total (API server)':<{kw}}{totals}")
    shakes = [f"{p.label} {p.own['tls handshakes'] / count:.2f}" for p in bare]
    shakes.append(f"operator {first.own.handshakes / count:.2f}")
    if steady is not None:
        shakes.append(f"steady {steady.own.handshakes / max(steady.metrics.reconciles, 1):.2f}")
    print(f"{'TLS handshakes (new connections)':<{kw}}  " + ", ".join(shakes))
    if first.own.failures:
        print("first failed kopf requests:")
        for failure in first.own.failures:
            print(f"  {failure}")

    print()
    print(
        "Whole API server, per CR (apiserver_request_total deltas; includes controllers, "
        "the bench's creates and polls, and any other client of a shared cluster)"
    )
    acols = [(p.label, p.requests) for p in bare] + [
        ("operator", first.requests),
        ("op +3s", settled.requests),
    ]
    akeys = sorted(set().union(*(c.counts.keys() for _, c in acols)))
    akeys = [k for k in akeys if "(cluster)" not in k and not k.startswith("WATCH")]
    aw = max([len(k) for k in akeys] + [10])
    print(f"{'request':<{aw}}" + "".join(f"  {label:>18}" for label, _ in acols))
    for key in akeys:
        cells = ""
        for _, snap in acols:
            v = snap.counts.get(key, 0.0)
            ms = snap.mean_ms(key)
            text = f"{v / count:.2f}" + (f" ({ms:.0f}ms)" if ms is not None else "")
            cells += f"  {text:>18}" if v else f"  {'':>18}"
        print(f"{key:<{aw}}{cells}")

    print()
    print("Events about ModelDeployments, per CR")
    events = [("first", op.events_first), ("steady", op.events_steady)]
    ew = max([len(k) for _, e in events for k in e] + [10])
    for label, counter in events:
        for key, value in sorted(counter.items()):
            print(f"  {label:<7} {key:<{ew}}  {value / count:.2f}")
    for warning in warnings:
        print(f"WARNING: {warning}")


# -- main --------------------------------------------------------------------------------------


async def bare_phase(
    label: str,
    config: ClusterConfig,
    kubectl: Kubectl,
    namespace: str,
    names: Sequence[str],
    concurrency: int,
    deadline: float,
    apiserver_pid: int | None,
    *,
    reads: bool,
) -> BarePhase:
    log(f"{label}: creating {len(names)} CRs")
    created = await create_all(config, names, namespace, concurrency, deadline)
    before = api_snapshot(kubectl)
    cpu_before = cpu_seconds(apiserver_pid)
    busy_before = machine_busy()
    log(f"{label}: created in {created.seconds:.2f}s; running the bare client")
    own: Counter[str] = Counter()
    handshakes = _Handshakes.count
    seconds = await run_bare(config, created.objects, concurrency, deadline, own, reads=reads)
    own["tls handshakes"] = _Handshakes.count - handshakes
    api_cpu = cpu_seconds(apiserver_pid) - cpu_before
    busy = _busy_since(busy_before)
    requests = api_snapshot(kubectl) - before
    log(f"{label}: {seconds:.2f}s; deleting and waiting for garbage collection")
    gc_seconds = await delete_all_and_wait_gc(config, namespace, deadline)
    log(f"{label}: garbage collected in {gc_seconds:.1f}s")
    return BarePhase(label, created.seconds, seconds, gc_seconds, api_cpu, requests, own, busy)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="ModelDeployments (default 100)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="CRs in flight for the bare client and the creates (the operator's KubeClient "
        "allows 32 connections; default 32)",
    )
    parser.add_argument(
        "--steady-passes",
        type=int,
        default=1,
        help="periodic resync passes over all CRs to measure after each CR's first resync "
        "(steady state: nothing changes); 0 skips (default 1)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="seconds allowed per phase (default: 120 + 0.5 s per CR)",
    )
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        type=Path,
        default=None,
        help="write cProfiles of the operator process to PREFIX.first (start until all CRs "
        "are reconciled), .settle, .steady (the measured resync passes) and .delete "
        "(slows the operator: diagnostics only)",
    )
    parser.add_argument(
        "--keep-cluster",
        action="store_true",
        help="leave the local cluster running even when this run started it",
    )
    args = parser.parse_args(argv)
    count: int = args.count
    if count < 1 or args.concurrency < 1 or args.steady_passes < 0:
        parser.error("--count and --concurrency must be positive, --steady-passes not negative")
    deadline: float = args.deadline or 120.0 + 0.5 * count

    namespace = f"bench-operator-{uuid.uuid4().hex[:6]}"
    warnings: list[str] = []
    seeing, elsewhere = other_operators(namespace)
    if seeing:
        warnings.append(
            f"other gantry operators watch this namespace too (pids {seeing}); they reconcile "
            "the bench's CRs and skew every phase"
        )
        log(warnings[-1])
    if elsewhere:
        warnings.append(
            f"other gantry operators run on this machine (pids {elsewhere}, other namespaces): "
            "they share its CPUs and API server"
        )

    _Handshakes.install()
    cluster = Cluster.up(REPO, log=log)
    kubectl = cluster.kubectl
    config = load(str(cluster.kubeconfig))
    apiserver_pid = next((p.pid for p in cluster.processes if p.name == "kube-apiserver"), None)
    operator: BenchOperator | None = None
    succeeded = False
    log_dir = Path(tempfile.mkdtemp(prefix="gantry-operator-bench-"))
    try:
        install_crd(kubectl)
        kubectl("create", "namespace", namespace)
        log(f"namespace {namespace}, N={count}, deadline {deadline:.0f}s per phase")

        bare = [
            asyncio.run(
                bare_phase(
                    label,
                    config,
                    kubectl,
                    namespace,
                    [f"{prefix}-{i:04d}" for i in range(count)],
                    args.concurrency,
                    deadline,
                    apiserver_pid,
                    reads=reads,
                )
            )
            for label, prefix, reads in (("bare", "bw", False), ("bare+reads", "br", True))
        ]

        if args.profile:
            args.profile.parent.mkdir(parents=True, exist_ok=True)
        profile_env = (
            {
                "GANTRY_BENCH_PROFILE": str(args.profile.resolve()),
                "GANTRY_BENCH_PROFILE_SEGMENTS": "first,settle,steady,delete",
            }
            if args.profile
            else {}
        )
        operator = BenchOperator(
            log_dir,
            kubeconfig=cluster.kubeconfig,
            env={**OPERATOR_ENV, **profile_env},
            namespace=namespace,
            apiserver=urlsplit(config.server).netloc,
        )
        operator.start()
        assert operator._proc is not None
        log(f"operator up (pid {operator._proc.pid}, log {operator.log_path}); creating CRs")
        op = asyncio.run(
            operator_phase(
                config,
                kubectl,
                operator,
                namespace,
                [f"op-{i:04d}" for i in range(count)],
                args.concurrency,
                deadline,
                args.steady_passes,
                apiserver_pid,
            )
        )
        if op.seconds > RESYNC_SECONDS:
            warnings.append(
                "the operator phase outlasted GANTRY_RESYNC_SECONDS: periodic resyncs ran inside it"
            )
        print_report(count, args.concurrency, bare, op, warnings)
        succeeded = True
        return 0
    except BenchError as exc:
        log(f"FAILED: {exc}")
        if operator is not None:
            log("operator log tail:\n" + operator.tail())
        return 1
    finally:
        if operator is not None:
            if operator._proc is not None and operator._proc.poll() is None:
                try:  # while it runs, the operator removes any finalizer itself
                    asyncio.run(delete_all_and_wait_gc(config, namespace, 60.0))
                except (BenchError, ApiError, TimeoutError) as exc:
                    log(f"cleanup: {exc}")
            try:
                code = operator.stop()
            except AssertionError as exc:  # it ignored SIGTERM and was killed
                log(f"cleanup: {exc}")
                code = -1
            if code != 0:
                log(f"operator exited with {code}; log: {operator.log_path}")
        if stripped := strip_finalizers(kubectl, namespace):
            log(f"cleanup: removed finalizers from {stripped} leftover CRs")
        kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        kubectl(
            "wait",
            "--for=delete",
            f"namespace/{namespace}",
            "--timeout=120s",
            check=False,
            timeout=150,
        )
        if succeeded:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            log(f"operator log kept in {log_dir}")
        if cluster.started and not args.keep_cluster:
            cluster.down()


if __name__ == "__main__":
    sys.exit(main())
