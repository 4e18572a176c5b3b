"""The objects the bench creates, edits and deletes, and the waits for the operator's answer.

Every wait has a deadline; every connection goes to the local API server (loopback).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from bench.operator.cluster import RUN_LABEL
from gantry.api.spec import API_VERSION, KIND
from gantry.kube import ClusterConfig, KubeClient, Manifest
from gantry.kube import resources as kinds

T = TypeVar("T")
R = TypeVar("R")
MANAGED = "app.kubernetes.io/managed-by=gantry"
EDIT_ENV = "BENCH_EDIT"


class BenchError(RuntimeError):
    """A phase did not finish within its deadline, or the cluster refused something."""


def model_deployment(name: str, namespace: str, run: str, *, canary: bool = False) -> Manifest:
    """A CPU-only ModelDeployment with one fixed replica, placed on the bench's own node.

    Children: a Service and a Deployment (no HPA, PDB or HTTPRoute). ``canary`` gives it a
    canary rollout (set weight 50, pause 10 s) for the churn soak.
    """
    spec: dict[str, Any] = {
        "model": {"name": "tiny", "uri": "https://models.example/tiny.tar.gz", "version": "1"},
        "resources": {"cpu": "10m", "memory": "64Mi"},
        "placement": {
            "nodeSelector": {RUN_LABEL: run},
            "tolerations": [{"key": RUN_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        },
        "replicas": 1,
    }
    if canary:
        spec["rollout"] = {
            "strategy": "canary",
            "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]},
        }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def noise_pod(name: str, namespace: str, node: str, run: str) -> Manifest:
    """A bare pod bound to the bench node (no scheduler work; kwok marks it Running)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "noise"}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": RUN_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}],
        },
    }


async def bounded(
    items: Sequence[T], work: Callable[[T], Awaitable[R]], concurrency: int, deadline: float
) -> list[R]:
    """``work(item)`` for every item, ``concurrency`` at a time, all within ``deadline`` s."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    async with asyncio.timeout(deadline):
        return await asyncio.gather(*(one(i) for i in items))


@dataclass
class Created:
    """The objects as the API server returned them, and when each POST returned (monotonic)."""

    objects: list[Manifest]
    done_at: dict[str, float]
    seconds: float


async def create_all(
    kube: KubeClient, manifests: Sequence[Manifest], concurrency: int, deadline: float
) -> Created:
    done_at: dict[str, float] = {}

    async def create(manifest: Manifest) -> Manifest:
        obj = await kube.create(manifest)
        done_at[manifest["metadata"]["name"]] = time.monotonic()
        return obj

    started = time.monotonic()
    objects = await bounded(manifests, create, concurrency, deadline)
    return Created(objects, done_at, time.monotonic() - started)


def reconciled(md: Mapping[str, Any]) -> bool:
    """The status describes the current generation and names a stable revision.

    The operator writes the status after it applied the children, so such a CR has them.
    """
    meta, status = md["metadata"], md.get("status") or {}
    return bool(status.get("observedGeneration") == meta.get("generation") and status.get("stable"))


async def wait_reconciled(
    kube: KubeClient, namespace: str, names: set[str], deadline: float
) -> dict[str, float]:
    """Poll until every CR in ``names`` is :func:`reconciled`; when each was first seen so."""
    done: dict[str, float] = {}
    until = time.monotonic() + deadline
    while True:
        started = time.monotonic()
        for md in await kube.list(kinds.MODEL_DEPLOYMENT, namespace):
            name = md["metadata"]["name"]
            if name in names and name not in done and reconciled(md):
                done[name] = time.monotonic()
        if names <= done.keys():
            return done
        if time.monotonic() > until:
            left = sorted(names - done.keys())
            raise BenchError(f"{len(left)} of {len(names)} not reconciled in time: {left[:5]}")
        # A list of 1,000 CRs costs CPU on this shared machine: poll at most half the time.
        await asyncio.sleep(max(0.3, time.monotonic() - started))


def pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def wait_pods_ready(kube: KubeClient, namespace: str, count: int, deadline: float) -> int:
    """Wait until ``count`` Gantry pods of ``namespace`` are Ready (kwok's doing).

    Returns how many are Ready when they all are or ``deadline`` s have passed: on a busy
    shared cluster kwok and the controllers lag, and the table says how many were up
    rather than losing the run.
    """
    started = time.monotonic()
    ready = 0
    while True:
        pods = await kube.list(kinds.POD, namespace, selector=MANAGED)
        ready = sum(pod_ready(p) for p in pods if not p["metadata"].get("deletionTimestamp"))
        if ready >= count or time.monotonic() - started > deadline:
            return ready
        await asyncio.sleep(2.0)


async def delete_all(kube: KubeClient, namespace: str, deadline: float) -> float:
    """Delete every CR of ``namespace``; wait until they and their children are gone."""
    started = time.monotonic()
    mds = await kube.list(kinds.MODEL_DEPLOYMENT, namespace)

    async def delete(md: Manifest) -> bool:
        return await kube.delete(kinds.MODEL_DEPLOYMENT, md["metadata"]["name"], namespace)

    await bounded(mds, delete, 32, deadline)
    left: dict[str, int] = {}
    while time.monotonic() - started < deadline:
        left = {}
        for res in (kinds.MODEL_DEPLOYMENT, kinds.DEPLOYMENT, kinds.SERVICE, kinds.POD):
            selector = None if res is kinds.MODEL_DEPLOYMENT else MANAGED
            if items := await kube.list(res, namespace, selector=selector):
                left[res.plural] = len(items)
        if not left:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    raise BenchError(f"deletion and garbage collection not done in {deadline:.0f}s: {left}")


def edit_patch(marker: str) -> Manifest:
    """A spec edit that reaches the pod template (a new revision)."""
    return {"spec": {"runtime": {"env": [{"name": EDIT_ENV, "value": marker}]}}}


def template_marker(deployment: Mapping[str, Any]) -> str | None:
    """The :data:`EDIT_ENV` value of a Deployment's first container, if any."""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    for env in (containers or [{}])[0].get("env") or []:
        if env.get("name") == EDIT_ENV:
            return str(env.get("value"))
    return None


def owner_name(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("controller"):
            return str(ref.get("name"))
    return None


async def watch(
    config: ClusterConfig, path: str, *, selector: str, seconds: float, ready: asyncio.Event
) -> AsyncIterator[Manifest]:
    """Objects of a watch (current state first, then changes) for at most ``seconds``.

    Watches are not part of :class:`KubeClient` (the operator gets its own from kopf).
    """
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    params = {
        "watch": "true",
        "labelSelector": selector,
        "allowWatchBookmarks": "false",
        "timeoutSeconds": str(max(1, int(seconds))),
    }
    async with (
        httpx.AsyncClient(
            base_url=config.server, verify=config.ssl_context(), headers=headers, timeout=None
        ) as http,
        http.stream("GET", path, params=params) as response,
    ):
        response.raise_for_status()
        ready.set()
        async for line in response.aiter_lines():
            if line:
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    raise BenchError(f"watch of {path} failed: {event.get('object')}")
                yield event["object"]


@dataclass
class EditTracker:
    """When each (CR, marker) first appeared in a Deployment's template, fed by a watch."""

    seen: dict[tuple[str, str], float]
    changed: asyncio.Event

    @classmethod
    def new(cls) -> EditTracker:
        return cls({}, asyncio.Event())

    async def follow(
        self, config: ClusterConfig, namespace: str, seconds: float, ready: asyncio.Event
    ) -> None:
        """Feed :attr:`seen` from a watch; ``ready`` is set once the watch is established.

        Without a resourceVersion the watch starts with the current Deployments (their
        markers are older than any edit still to come) and goes on from there.
        """
        path = kinds.DEPLOYMENT.path(namespace)
        async for dep in watch(config, path, selector=MANAGED, seconds=seconds, ready=ready):
            owner, marker = owner_name(dep), template_marker(dep)
            if owner is not None and marker is not None:
                self.seen.setdefault((owner, marker), time.monotonic())
                self.changed.set()

    async def wait(self, name: str, marker: str, deadline: float) -> float:
        """When the Deployment of ``name`` got ``marker``, waiting at most ``deadline`` s."""
        async with asyncio.timeout(deadline):
            while (name, marker) not in self.seen:
                self.changed.clear()
                await self.changed.wait()
        return self.seen[(name, marker)]


async def get_text(config: ClusterConfig, path: str) -> str:
    """A non-resource GET (``/metrics``) as this config's user."""
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    async with httpx.AsyncClient(
        base_url=config.server, verify=config.ssl_context(), headers=headers, timeout=30
    ) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.text
