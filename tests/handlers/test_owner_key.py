"""Which ModelDeployment a child's event concerns (owner_key), and what track() queues."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.api.spec import API_VERSION, KIND
from gantry.handlers.modeldeployment import owner_key
from gantry.kube import resources as kinds
from gantry.kube.store import Store
from gantry.render.labels import DEPLOYMENT as DEPLOYMENT_LABEL
from tests.handlers.handler_env import KEY, handler_env
from tests.health.kserve_fake import Fake
from tests.reconciler.reconcile_env import NAME, NS

Obj = dict[str, Any]


def ref(**overrides: Any) -> Obj:
    base = {"apiVersion": API_VERSION, "kind": KIND, "name": "md", "uid": "u", "controller": True}
    return {**base, **overrides}


def child(name: str, *refs: Obj, ns: str = "ns", labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": ns, "ownerReferences": list(refs)}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta}


def deployments() -> Store:
    store = Store()
    store.put(child("md", ref()))
    store.put(child("md-canary", ref()))
    store.put(child("users", ref(kind="ReplicaSet", apiVersion="apps/v1", name="x")))
    return store


def pod(deployment: str | None, ns: str = "ns") -> Obj:
    labels = {DEPLOYMENT_LABEL: deployment} if deployment is not None else {}
    return child("p", ref(kind="ReplicaSet", apiVersion="apps/v1", name="rs"), ns=ns, labels=labels)


@pytest.mark.parametrize(
    ("res", "obj", "key"),
    [
        (kinds.DEPLOYMENT, child("md", ref()), ("ns", "md")),
        (kinds.SERVICE, child("md", ref()), ("ns", "md")),
        (kinds.HPA, child("md", ref(name="other")), ("ns", "other")),
        (kinds.HTTPROUTE, child("r", ref(), ns="team"), ("team", "md")),
        # Owned, but not as controller, or by something else: not ours to reconcile.
        (kinds.DEPLOYMENT, child("md", ref(controller=False)), None),
        (kinds.DEPLOYMENT, child("md", ref(controller=None)), None),
        (kinds.DEPLOYMENT, child("md", ref(kind="InferenceService")), None),
        (kinds.DEPLOYMENT, child("md", ref(apiVersion="serving.kserve.io/v1beta1")), None),
        (kinds.DEPLOYMENT, child("md"), None),
        (kinds.DEPLOYMENT, {"metadata": {"name": "bare"}}, None),
        # The first controller reference decides, among several references.
        (kinds.SERVICE, child("s", ref(controller=False, name="a"), ref(name="b")), ("ns", "b")),
        # Pods: through the Deployment their label names, in their own namespace.
        (kinds.POD, pod("md"), ("ns", "md")),
        (kinds.POD, pod("md-canary"), ("ns", "md")),
        (kinds.POD, pod("users"), None),  # a Deployment not controlled by a ModelDeployment
        (kinds.POD, pod("unknown"), None),
        (kinds.POD, pod(None), None),
        (kinds.POD, pod("md", ns="elsewhere"), None),
    ],
)
def test_owner_key(res: kinds.Resource, obj: Obj, key: tuple[str, str] | None) -> None:
    assert owner_key(res, obj, deployments()) == key


async def test_track_queues_on_spec_and_gate_changes_only_and_forgets_deleted(fake: Fake) -> None:
    async with handler_env(fake) as env:
        queue = env.queue
        await env.kopf_sees("ADDED")
        assert (queue.stats.added, len(queue)) == (1, 1)
        assert env.memo["bodies"].get(*KEY) is not None
        await env.run_queued()
        # The watch's echo of the first reconcile's /scale is a new Deployment version
        # (its answer is a Scale, not the Deployment): it queues the owner once more.
        await env.caught_up()
        await env.run_queued()
        base = queue.stats.added

        await env.kopf_sees()  # our own status write: nothing new
        assert queue.stats.added == base
        await env.user.patch_merge(
            kinds.MODEL_DEPLOYMENT, NAME, NS, {"metadata": {"labels": {"team": "x"}}}
        )
        await env.kopf_sees()  # a label: neither spec nor gate
        assert queue.stats.added == base
        await env.user.patch_merge(
            kinds.MODEL_DEPLOYMENT,
            NAME,
            NS,
            {"metadata": {"annotations": {"serving.gantry.dev/pause": "true"}}},
        )
        await env.kopf_sees()  # a gate
        assert queue.stats.added == base + 1
        await env.user.patch_merge(
            kinds.MODEL_DEPLOYMENT, NAME, NS, {"spec": {"model": {"version": "9"}}}
        )
        await env.kopf_sees()  # the spec (a new generation)
        assert queue.stats.added == base + 2

        await env.kopf_sees("DELETED")
        assert env.memo["bodies"].get(*KEY) is None
        assert len(queue) == 0  # dropped while queued
        assert env.memo["seen"] == {}


async def test_child_events_queue_their_owner_through_the_watch(fake: Fake) -> None:
    async with handler_env(fake) as env:
        await env.kopf_sees("ADDED")
        await env.run_queued()
        await env.caught_up()
        added = env.queue.stats.added

        env.play_controllers()  # a Deployment status and a Pod: both trace to the owner
        await env.caught_up()
        assert env.queue.stats.added > added
        assert len(env.queue) == 1  # coalesced into one reconcile
