"""A Reconciler wired to the fake API server, and ModelDeployment builders."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gantry.api.spec import API_VERSION, KIND
from gantry.kube import KubeClient
from gantry.kube import resources as kinds
from gantry.metrics import OperatorMetrics
from gantry.reconciler import Outcome, Reconciler, Settings, write_outcome
from tests.reconciler.fake_apiserver import FakeApiServer, Obj

NS = "ml"
NAME = "resnet"
MD_PATH = kinds.MODEL_DEPLOYMENT.path(NS, NAME)
DEPLOYMENTS = kinds.DEPLOYMENT.path(NS)
SERVICES = kinds.SERVICE.path(NS)
PODS = kinds.POD.path(NS)
EVENTS = kinds.EVENT.path(NS)
HTTPROUTES = kinds.HTTPROUTE.path(NS)
PDBS = kinds.PDB.path(NS)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SELECTOR = {
    "app.kubernetes.io/instance": NAME,
    "app.kubernetes.io/component": "predictor",
    "app.kubernetes.io/managed-by": "gantry",
}


def spec(**overrides: Any) -> Obj:
    """A valid rolling-update spec (one fixed replica, CPU only), with overrides."""
    base: Obj = {"model": {"name": "resnet50", "uri": "s3://models/resnet50", "version": "3"}}
    base.update(overrides)
    return base


def md(spec_: Obj | None = None, *, annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": NAME, "namespace": NS}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec_ or spec()}


def owner_ref(uid: str) -> Obj:
    return {"apiVersion": API_VERSION, "kind": KIND, "name": NAME, "uid": uid, "controller": True}


def child(api_version: str, kind: str, name: str, *, owner_uid: str | None) -> Obj:
    """A child as a previous reconcile (or someone else) left it."""
    meta: Obj = {"name": name, "namespace": NS, "labels": dict(SELECTOR)}
    if owner_uid is not None:
        meta["ownerReferences"] = [owner_ref(owner_uid)]
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": {}}


def pending_pod(name: str, *, instance: str = NAME, message: str = "") -> Obj:
    """A pod with no podIP and no Running phase: never probed over the network."""
    conditions = []
    if message:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        )
    labels = {**SELECTOR, "app.kubernetes.io/instance": instance}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "status": {"phase": "Pending", "conditions": conditions},
    }


def settle(fake: FakeApiServer, name: str) -> None:
    """Play the Deployment controller: every replica of ``name`` updated and available."""
    dep = fake.objects[f"{DEPLOYMENTS}/{name}"]
    n = int(dep["spec"].get("replicas", 1))
    dep["status"] = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": n,
        "updatedReplicas": n,
        "readyReplicas": n,
        "availableReplicas": n,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


@dataclass
class Env:
    fake: FakeApiServer
    kube: KubeClient
    reconciler: Reconciler
    tick: int = 0

    def body(self) -> Obj:
        """The ModelDeployment as the API server has it now (what kopf would pass)."""
        return copy.deepcopy(self.fake.objects[MD_PATH])

    def now(self) -> datetime:
        self.tick += 1
        return T0 + timedelta(seconds=30 * self.tick)

    async def reconcile(self, *, write: bool = True, at: datetime | None = None) -> Outcome:
        """One handler pass: reconcile the stored body, then write what it decided.

        Each pass is 30 s after the one before, unless ``at`` names the moment.
        """
        body, now = self.body(), at or self.now()
        outcome = await self.reconciler.reconcile(body, now=now)
        if write:
            await write_outcome(self.kube, body, outcome, now=now)
        return outcome


@asynccontextmanager
async def reconcile_env(
    body: Obj | None = None, *, settings: Settings | None = None
) -> AsyncIterator[Env]:
    fake = FakeApiServer()
    fake.put(MD_PATH, body or md())
    async with fake.serving() as config:
        kube = KubeClient(config, field_manager="gantry")
        reconciler = Reconciler(kube, settings or Settings(), OperatorMetrics())
        try:
            yield Env(fake, kube, reconciler)
        finally:
            await reconciler.close()
