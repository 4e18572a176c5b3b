"""Gantry's KubeClient (``kubernetes.aio``) against httpx and typed ``kubernetes.aio``, on the
operator's four calls.

    python -m bench.client_bench [--quick] [-n 300] [--concurrency 16] [--rounds 4]
                                 [--kubeconfig PATH] [--json out.json]

Runs on the local control plane (KUBECONFIG, default ``.cluster/kubeconfig``), in a namespace of
its own (``clientbench-<hex>``, deleted at the end) holding one ModelDeployment
(``examples/cpu-runtime.yaml``, no operator runs for it), its Deployment as rendered by Gantry's
renderer, and 200 more Deployments (renamed copies, ``replicas: 0`` so no pod is ever made) in
groups of 10. Each client makes, ``-n`` times sequentially and again ``-n`` times with
``--concurrency`` in flight:

* ``get``: GET the Deployment;
* ``list``: LIST Deployments by one group's label selector (10 of the 201);
* ``apply``: server-side apply of the unchanged rendered Deployment (``force``, the operator's
  field manager): the server writes nothing, so this is the steady-state reconcile;
* ``status``: merge patch of the ModelDeployment's ``/status`` subresource, the shape the
  reconciler writes, with a message that changes each time (a real write).

Clients, all in this one process on one event loop, one after another, never at once:

* ``gantry``: :class:`gantry.kube.KubeClient`, which since issue #11 sends through
  ``kubernetes.aio`` (aiohttp) unread (``call_api(..., _preload_content=False)``) and
  ``json.loads`` the body, so no model is built (credentials from :func:`gantry.kube.load`);
* ``httpx``: the baseline the move was decided against: a minimal ``httpx.AsyncClient`` making
  the same four requests the way KubeClient did before (same headers, 32 kept-alive
  connections, ``response.json()``), same credentials;
* ``aio-typed``: the generated ``AppsV1Api`` / ``CustomObjectsApi`` methods returning models
  (``V1Deployment``, ``V1DeploymentList``: pydantic); ``CustomObjectsApi`` returns plain dicts
  either way. Measured because it is how the package is documented and used, so the cost of
  building models shows apart from the transport's (credentials from
  ``kubernetes.aio.config.load_kube_config``).

Every op and concurrency is split into ``--rounds`` batches; within a round the clients run in
ABC order, the next round CBA, and so on, so drift on the shared machine hits each client alike.
Per client and op: median and p95 latency, throughput, and this process's CPU seconds per 1,000
requests (``time.process_time`` around each batch: the client's own cost, the API server runs
elsewhere), then each client divided by httpx, from the same run. Nothing here asserts a
timing; figures move run to run, the ratios less so.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from bench.operator.report import Table, fmt, percentile, ratio
from gantry import __version__, kube
from gantry.kube import ClusterConfig, KubeClient, Manifest
from gantry.kube.resources import DEPLOYMENT, MODEL_DEPLOYMENT, NAMESPACE
from gantry.preview import PREVIEW_UID, preview_children

# Run as a module (python -m bench.client_bench): as a script, bench/ would come first on
# sys.path and bench/operator/ would shadow the standard library's operator module.
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "cpu-runtime.yaml"
DEFAULT_KUBECONFIG = REPO / ".cluster" / "kubeconfig"

OPS = ("get", "list", "apply", "status")
CLIENTS = ("gantry", "httpx", "aio-typed")
BASELINE = "httpx"
FIELD_MANAGER = "gantry"
FILLERS = 200
GROUP_SIZE = 10
GROUP_LABEL = "app.kubernetes.io/instance"
DEPLOYMENT_LABEL = "serving.gantry.dev/deployment"
WARMUP = 5
#: The whole measurement, setup excluded: a stuck API server ends the run, not the session.
DEADLINE_S = 900.0
GROUP, VERSION = MODEL_DEPLOYMENT.api_version.split("/")


# --- pure: manifests, the schedule, the figures ------------------------------------------------


def owned_by(manifest: Manifest, uid: str) -> Manifest:
    """``manifest`` with the preview's placeholder owner uid replaced by ``uid``.

    The garbage collector deletes a child whose owner uid does not exist, so the rendered
    children must point at the real ModelDeployment.
    """
    out = copy.deepcopy(manifest)
    for ref in out["metadata"].get("ownerReferences") or []:
        if ref.get("uid") == PREVIEW_UID:
            ref["uid"] = uid
    return out


def apply_form(deployment: Manifest) -> Manifest:
    """The Deployment as the operator applies it: without ``spec.replicas``.

    The operator sets the size through ``/scale`` under another field manager, so its applied
    configuration never holds replicas (see :meth:`KubeClient.scale`).
    """
    out = copy.deepcopy(deployment)
    out["spec"].pop("replicas", None)
    return out


def group_name(group: int) -> str:
    return f"fill-g{group:02d}"


def filler(deployment: Manifest, index: int, *, group_size: int = GROUP_SIZE) -> Manifest:
    """A renamed copy of ``deployment``, sized 0, in group ``index // group_size``.

    Its own ``serving.gantry.dev/deployment`` label in the selector keeps the fillers'
    selectors disjoint (and apart from the measured Deployment's), as distinct models' are.
    """
    if index < 0 or group_size < 1:
        raise ValueError(f"index must be >= 0 and group_size >= 1, got {index}, {group_size}")
    name = f"fill-{index:03d}"
    labels = {GROUP_LABEL: group_name(index // group_size), DEPLOYMENT_LABEL: name}
    out = copy.deepcopy(deployment)
    out["metadata"]["name"] = name
    out["metadata"]["labels"] = {**out["metadata"].get("labels", {}), **labels}
    spec = out["spec"]
    spec["replicas"] = 0
    spec["selector"]["matchLabels"] = {**spec["selector"]["matchLabels"], **labels}
    template_meta = spec["template"]["metadata"]
    template_meta["labels"] = {**template_meta.get("labels", {}), **labels}
    return out


def status_patch(index: int) -> Manifest:
    """What the reconciler's status write looks like; ``index`` makes each one a real write."""
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "ModelReady",
        "message": f"1/1 model servers ready (bench write {index})",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    return {
        "status": {
            "observedGeneration": 1,
            "phase": "Ready",
            "conditions": [condition],
            "replicas": 1,
            "readyReplicas": 1,
            "modelReadyReplicas": 1,
            "servers": "1/1",
            "message": f"serving (bench write {index})",
        }
    }


def order(round_index: int, clients: Sequence[str]) -> list[str]:
    """The clients of one round: as given in even rounds, reversed in odd (ABC, CBA, ...)."""
    return list(clients) if round_index % 2 == 0 else list(reversed(clients))


def split(n: int, rounds: int) -> list[int]:
    """``n`` requests as ``rounds`` batch sizes differing by at most one, none empty."""
    if n < 1 or rounds < 1:
        raise ValueError(f"n and rounds must be >= 1, got n={n}, rounds={rounds}")
    rounds = min(rounds, n)
    base, extra = divmod(n, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


@dataclass
class Batch:
    """Requests of one client, op and concurrency, accumulated over rounds."""

    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def add(self, latencies_s: Sequence[float], wall_s: float, cpu_s: float) -> None:
        self.latencies_s.extend(latencies_s)
        self.wall_s += wall_s
        self.cpu_s += cpu_s


@dataclass(frozen=True)
class Figures:
    requests: int
    p50_ms: float
    p95_ms: float
    rps: float
    cpu_per_1k_s: float


def figures(batch: Batch) -> Figures:
    n = len(batch.latencies_s)
    ms = [s * 1000.0 for s in batch.latencies_s]
    return Figures(
        requests=n,
        p50_ms=percentile(ms, 0.5),
        p95_ms=percentile(ms, 0.95),
        rps=ratio(n, batch.wall_s),
        cpu_per_1k_s=ratio(batch.cpu_s * 1000.0, n),
    )


def row_label(op: str, concurrency: int) -> str:
    return f"{op} c={concurrency}"


def report(results: Mapping[str, Mapping[str, Figures]], clients: Sequence[str]) -> str:
    """One table per client (rows: op and concurrency), then the ratios to httpx.

    ``results[client][row]``; a row missing for a client shows ``-``.
    """
    blocks: list[str] = []
    for client in clients:
        table = Table()
        for row, f in results.get(client, {}).items():
            table.put("p50 ms", row, fmt(f.p50_ms))
            table.put("p95 ms", row, fmt(f.p95_ms))
            table.put("req/s", row, fmt(f.rps, digits=0))
            table.put("cpu s/1k", row, fmt(f.cpu_per_1k_s))
        blocks.append(f"{client}\n{table.render()}")
    base = results.get(BASELINE, {})
    ratios = Table()
    for client in clients:
        if client == BASELINE:
            continue
        for row, f in results.get(client, {}).items():
            b = base.get(row)
            if b is None:
                continue
            ratios.put(f"{client} p50", row, fmt(ratio(f.p50_ms, b.p50_ms)))
            ratios.put(f"{client} req/s", row, fmt(ratio(f.rps, b.rps)))
            ratios.put(f"{client} cpu", row, fmt(ratio(f.cpu_per_1k_s, b.cpu_per_1k_s)))
    if ratios.rows:
        blocks.append(
            f"ratio to {BASELINE} (same run; >1 is slower/more cpu, except req/s)\n"
            f"{ratios.render()}"
        )
    return "\n\n".join(blocks)


# --- the clients -------------------------------------------------------------------------------


class Ops(Protocol):
    """The four measured calls of one client; each returns something to check, then drops."""

    async def get(self) -> Any: ...
    async def list(self) -> Any: ...
    async def apply(self) -> Any: ...
    async def status(self, index: int) -> Any: ...


@dataclass(frozen=True)
class Target:
    namespace: str
    deployment: str
    model_deployment: str
    selector: str
    manifest: Manifest  # the apply form of the Deployment


class GantryOps:
    def __init__(self, client: KubeClient, target: Target) -> None:
        self.client, self.t = client, target

    async def get(self) -> Any:
        return await self.client.get(DEPLOYMENT, self.t.deployment, self.t.namespace)

    async def list(self) -> Any:
        return await self.client.list(DEPLOYMENT, self.t.namespace, selector=self.t.selector)

    async def apply(self) -> Any:
        return await self.client.apply(self.t.manifest)

    async def status(self, index: int) -> Any:
        return await self.client.patch_merge(
            MODEL_DEPLOYMENT,
            self.t.model_deployment,
            self.t.namespace,
            status_patch(index),
            sub="status",
        )


def httpx_client(config: ClusterConfig) -> httpx.AsyncClient:
    """The transport of KubeClient before issue #11, as it was configured."""
    headers = {"Accept": "application/json", "User-Agent": f"gantry/{__version__} (bench)"}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    return httpx.AsyncClient(
        base_url=config.server,
        headers=headers,
        verify=config.ssl_context(),
        timeout=10.0,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
    )


class HttpxOps:
    """The four requests as the httpx KubeClient sent them: JSON bodies, ``response.json()``."""

    def __init__(self, client: httpx.AsyncClient, target: Target) -> None:
        self.http, self.t = client, target

    async def _send(
        self, method: str, path: str, *, params: Any = None, body: Any = None, ctype: str = ""
    ) -> Any:
        content = None if body is None else json.dumps(body).encode()
        response = await self.http.request(
            method,
            path,
            params=params,
            content=content,
            headers={"Content-Type": ctype or "application/json"},
        )
        response.raise_for_status()
        return response.json()

    async def get(self) -> Any:
        return await self._send("GET", DEPLOYMENT.path(self.t.namespace, self.t.deployment))

    async def list(self) -> Any:
        path = DEPLOYMENT.path(self.t.namespace)
        return (await self._send("GET", path, params={"labelSelector": self.t.selector}))["items"]

    async def apply(self) -> Any:
        return await self._send(
            "PATCH",
            DEPLOYMENT.path(self.t.namespace, self.t.deployment),
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=self.t.manifest,
            ctype="application/apply-patch+yaml",
        )

    async def status(self, index: int) -> Any:
        return await self._send(
            "PATCH",
            MODEL_DEPLOYMENT.path(self.t.namespace, self.t.model_deployment) + "/status",
            params={"fieldManager": FIELD_MANAGER},
            body=status_patch(index),
            ctype="application/merge-patch+json",
        )


class _AioOps:
    """The generated ``AppsV1Api`` / ``CustomObjectsApi`` calls, each with the operator's
    arguments; the subclass chooses the method variant and reads its answer."""

    def __init__(self, api_client: Any, target: Target) -> None:
        from kubernetes.aio import client as aio

        self.apps = aio.AppsV1Api(api_client)
        self.custom = aio.CustomObjectsApi(api_client)
        self.t = target

    async def _get(self, method: Callable[..., Awaitable[Any]]) -> Any:
        return await method(self.t.deployment, self.t.namespace)

    async def _list(self, method: Callable[..., Awaitable[Any]]) -> Any:
        return await method(self.t.namespace, label_selector=self.t.selector)

    async def _apply(self, method: Callable[..., Awaitable[Any]]) -> Any:
        return await method(
            self.t.deployment,
            self.t.namespace,
            self.t.manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    async def _status(self, method: Callable[..., Awaitable[Any]], index: int) -> Any:
        return await method(
            GROUP,
            VERSION,
            self.t.namespace,
            MODEL_DEPLOYMENT.plural,
            self.t.model_deployment,
            status_patch(index),
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )


class AioTypedOps(_AioOps):
    async def get(self) -> Any:
        return await self._get(self.apps.read_namespaced_deployment)

    async def list(self) -> Any:
        return (await self._list(self.apps.list_namespaced_deployment)).items

    async def apply(self) -> Any:
        return await self._apply(self.apps.patch_namespaced_deployment)

    async def status(self, index: int) -> Any:
        return await self._status(self.custom.patch_namespaced_custom_object_status, index)


def call(ops: Ops, op: str) -> Callable[[int], Awaitable[Any]]:
    if op == "get":
        return lambda _: ops.get()
    if op == "list":
        return lambda _: ops.list()
    if op == "apply":
        return lambda _: ops.apply()
    if op == "status":
        return ops.status
    raise ValueError(f"op must be one of {OPS}, got {op!r}")


async def measure(
    fn: Callable[[int], Awaitable[Any]], first: int, n: int, concurrency: int
) -> tuple[list[float], float, float]:
    """``n`` calls, ``concurrency`` in flight: (latency of each, wall seconds, cpu seconds)."""
    latencies: list[float] = []
    indices = iter(range(first, first + n))

    async def worker() -> None:
        for index in indices:
            start = time.perf_counter()
            await fn(index)
            latencies.append(time.perf_counter() - start)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return latencies, time.perf_counter() - wall0, time.process_time() - cpu0


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    n: int
    concurrency: int
    rounds: int
    kubeconfig: str


def log(message: str) -> None:
    print(f"[client-bench] {message}", file=sys.stderr, flush=True)


async def setup(client: KubeClient, namespace: str) -> Target:
    md = yaml.safe_load(EXAMPLE.read_text())
    md["metadata"]["namespace"] = namespace
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    created = await client.create(md)
    uid = created["metadata"]["uid"]
    rendered = [c for c in preview_children(md) if c["kind"] == "Deployment"]
    if len(rendered) != 1:
        raise RuntimeError(f"{EXAMPLE.name} rendered {len(rendered)} Deployments, expected 1")
    deployment = owned_by(rendered[0], uid)
    # Created at size 0 (no pod), then applied without replicas as the operator does: the
    # size stays the creator's field and the apply form stays the operator's.
    await client.create({**deployment, "spec": {**deployment["spec"], "replicas": 0}})
    manifest = apply_form(deployment)
    await client.apply(manifest)
    sem = asyncio.Semaphore(16)

    async def make(i: int) -> None:
        async with sem:
            await client.create(filler(deployment, i))

    await asyncio.gather(*(make(i) for i in range(FILLERS)))
    return Target(
        namespace=namespace,
        deployment=deployment["metadata"]["name"],
        model_deployment=md["metadata"]["name"],
        selector=f"{GROUP_LABEL}={group_name(0)}",
        manifest=manifest,
    )


def _version(body: Any) -> str:
    if isinstance(body, dict):
        return str(body["metadata"]["resourceVersion"])
    return str(body.metadata.resource_version)


async def check(clients: Mapping[str, Ops]) -> None:
    """Each client gets the same answers before any is timed; unchanged applies write nothing."""
    for name, ops in clients.items():
        got = await ops.get()
        listed = await ops.list()
        if len(listed) != GROUP_SIZE:
            raise RuntimeError(f"{name}: list returned {len(listed)} items, want {GROUP_SIZE}")
        applied = [await ops.apply() for _ in range(2)]
        if _version(applied[0]) != _version(applied[1]) or _version(got) != _version(applied[0]):
            raise RuntimeError(f"{name}: an unchanged apply wrote (resourceVersion moved)")
        patched = await ops.status(0)
        status = patched["status"] if isinstance(patched, dict) else None
        if not status or status.get("phase") != "Ready":
            raise RuntimeError(f"{name}: the status patch did not land: {patched!r:.300}")


async def run(opts: Options) -> dict[str, dict[str, Figures]]:
    from kubernetes.aio import client as aio
    from kubernetes.aio import config as aio_config

    namespace = f"clientbench-{uuid.uuid4().hex[:6]}"
    config = kube.load(opts.kubeconfig)
    gantry_client = KubeClient(config, field_manager=FIELD_MANAGER)
    http = httpx_client(config)
    configuration = aio.Configuration()
    await aio_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=opts.kubeconfig, client_configuration=configuration
    )
    api_client = aio.ApiClient(configuration)
    try:
        log(f"namespace {namespace}: 1 ModelDeployment, {FILLERS + 1} Deployments")
        target = await setup(gantry_client, namespace)
        clients: dict[str, Ops] = {
            "gantry": GantryOps(gantry_client, target),
            "httpx": HttpxOps(http, target),
            "aio-typed": AioTypedOps(api_client, target),
        }
        await check(clients)
        async with asyncio.timeout(DEADLINE_S):
            return await _measure_all(clients, opts)
    finally:
        await api_client.close()  # type: ignore[no-untyped-call]
        await http.aclose()
        try:
            await gantry_client.delete(NAMESPACE, namespace)
            log(f"namespace {namespace} deleted")
        finally:
            await gantry_client.close()


async def _measure_all(clients: Mapping[str, Ops], opts: Options) -> dict[str, dict[str, Figures]]:
    batches: dict[str, dict[str, Batch]] = {c: {} for c in clients}
    index = 1  # status writes carry a fresh index each, across clients and rounds
    for op in OPS:
        for ops in clients.values():  # connections, lazy model builds
            fn = call(ops, op)
            for _ in range(WARMUP):
                await fn(index)
                index += 1
        for concurrency in (1, opts.concurrency):
            row = row_label(op, concurrency)
            for r, size in enumerate(split(opts.n, opts.rounds)):
                for name in order(r, list(clients)):
                    lat, wall, cpu = await measure(
                        call(clients[name], op), index, size, concurrency
                    )
                    index += size
                    batches[name].setdefault(row, Batch()).add(lat, wall, cpu)
            log(f"{row}: done")
    return {c: {row: figures(b) for row, b in rows.items()} for c, rows in batches.items()}


def parse_args(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="requests per op, client, concurrency")
    parser.add_argument("--quick", action="store_true", help="CI size: -n 50")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved batches per figure")
    parser.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG", str(DEFAULT_KUBECONFIG))
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    n = 50 if args.quick else args.n
    for flag, value, most in (
        ("-n", n, 5000),
        ("--concurrency", args.concurrency, 64),
        ("--rounds", args.rounds, 50),
    ):
        if not 1 <= value <= most:
            parser.error(f"{flag} must be within 1..{most}, got {value}")
    opts = Options(
        n=n, concurrency=args.concurrency, rounds=args.rounds, kubeconfig=args.kubeconfig
    )
    return opts, args.json


def main(argv: Sequence[str] | None = None) -> int:
    opts, json_path = parse_args(argv)
    results = asyncio.run(run(opts))
    print(
        f"n={opts.n} per row and client, concurrency 1 and {opts.concurrency}, "
        f"{opts.rounds} interleaved rounds"
    )
    print(report(results, CLIENTS))
    if json_path is not None:
        json_path.write_text(
            json.dumps(
                {c: {r: asdict(f) for r, f in rows.items()} for c, rows in results.items()},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
