"""Informer: list, then watch from the list's version; 410 relists, 404 means not served.

The fake API server (tests/reconciler/fake_apiserver.py) plays the API server: a
real one cannot be made to compact its history or drop a watch on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gantry.kube import KubeClient
from gantry.kube import resources as kinds
from gantry.kube.informer import Informer, InformerSettings
from tests.reconciler.fake_apiserver import FakeApiServer, Obj

pytestmark = pytest.mark.timeout(30)

SELECTOR = "app.kubernetes.io/managed-by=gantry"
GATEWAY_API = "gateway.networking.k8s.io/v1"


def dep(name: str, *, managed: bool = True, **spec: Any) -> Obj:
    labels = {"app.kubernetes.io/managed-by": "gantry"} if managed else {}
    meta = {"name": name, "namespace": "ns", "labels": labels}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


class Events:
    """What the informer passed to ``on_event``, awaited with a bound."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, kind: str, obj: Obj) -> None:
        self.seen.append((kind, obj["metadata"]["name"]))
        self._changed.set()

    async def until(self, n: int) -> list[tuple[str, str]]:
        async with asyncio.timeout(5):
            while len(self.seen) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.seen


@asynccontextmanager
async def running(
    fake: FakeApiServer, res: kinds.Resource = kinds.DEPLOYMENT, **kwargs: Any
) -> AsyncIterator[tuple[Informer, Events]]:
    events = Events()
    async with fake.serving() as config:
        kube = KubeClient(config)
        informer = Informer(
            kube,
            res,
            namespace="ns",
            selector=SELECTOR,
            on_event=events,
            settings=InformerSettings(error_backoff=0.01, recheck_after=60),
            **kwargs,
        )
        informer.start()
        try:
            async with asyncio.timeout(5):
                await informer.wait_synced()
            yield informer, events
        finally:
            await informer.stop()
            await kube.close()


async def test_list_then_watch_fills_the_store_and_reports_each_change() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "a"), dep("a"))
    fake.put(kinds.DEPLOYMENT.path("ns", "mine-not"), dep("mine-not", managed=False))
    async with running(fake) as (informer, events):
        assert (informer.served, informer.lists) == (True, 1)
        a = informer.store.get("ns", "a")
        assert a is not None
        assert (a["kind"], a["apiVersion"]) == ("Deployment", "apps/v1")  # list items lack them
        assert informer.store.get("ns", "mine-not") is None  # the server applied the selector

        await fake.until_watching()
        fake.put(kinds.DEPLOYMENT.path("ns", "b"), dep("b"))
        fake.put(kinds.DEPLOYMENT.path("ns", "a"), dep("a", paused=True))
        fake.put(kinds.DEPLOYMENT.path("ns", "other"), dep("other", managed=False))
        del fake.objects[kinds.DEPLOYMENT.path("ns", "b")]  # gone without an event: not seen
        fake.put(kinds.DEPLOYMENT.path("ns", "c"), dep("c"))
        assert await events.until(4) == [
            ("MODIFIED", "a"),  # from the list
            ("ADDED", "b"),
            ("MODIFIED", "a"),
            ("ADDED", "c"),
        ]
        stored = informer.store.get("ns", "a")
        assert stored is not None
        assert stored["spec"] == {"paused": True}
        assert informer.lists == 1
    (lst,) = fake.reads()
    (watch,) = fake.watches()
    assert (lst.params["labelSelector"], watch.params["labelSelector"]) == (SELECTOR, SELECTOR)
    assert int(watch.params["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    assert watch.params["allowWatchBookmarks"] == "true"


async def test_a_deletion_reaches_the_store_and_the_handler() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "a"), dep("a"))
    async with running(fake) as (informer, events):
        await fake.until_watching()
        kube = informer.kube
        await kube.delete(kinds.DEPLOYMENT, "a", "ns")
        assert await events.until(2) == [("MODIFIED", "a"), ("DELETED", "a")]
        assert len(informer.store) == 0


async def test_a_dropped_watch_resumes_from_the_last_version_without_a_list() -> None:
    fake = FakeApiServer()
    async with running(fake) as (informer, events):
        await fake.until_watching()
        last = fake.put(kinds.DEPLOYMENT.path("ns", "a"), dep("a"))
        await events.until(1)
        fake.end_watches()  # the server closes the stream, as at timeoutSeconds
        await fake.until_watching()
        fake.put(kinds.DEPLOYMENT.path("ns", "b"), dep("b"))
        assert await events.until(2) == [("ADDED", "a"), ("ADDED", "b")]
        assert informer.lists == 1
    _first, second = fake.watches()
    assert second.params["resourceVersion"] == last["metadata"]["resourceVersion"]
    assert len(fake.reads()) == 1


async def test_a_version_gone_from_the_history_lists_again() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "a"), dep("a"))
    fake.put(kinds.DEPLOYMENT.path("ns", "b"), dep("b"))
    async with running(fake) as (informer, events):
        await fake.until_watching()
        # While the watch is down, b goes and c comes, and the history is compacted.
        fake.end_watches()
        del fake.objects[kinds.DEPLOYMENT.path("ns", "b")]
        fake.put(kinds.DEPLOYMENT.path("ns", "c"), dep("c"))
        fake.compact()
        await events.until(4)
        assert sorted(events.seen[2:]) == [("DELETED", "b"), ("MODIFIED", "c")]
        assert sorted(o["metadata"]["name"] for o in informer.store) == ["a", "c"]
        assert informer.lists == 2
    assert len(fake.reads()) == 2


def route(name: str) -> Obj:
    labels = {"app.kubernetes.io/managed-by": "gantry"}
    meta = {"name": name, "namespace": "ns", "labels": labels}
    return {"apiVersion": f"{GATEWAY_API}", "kind": "HTTPRoute", "metadata": meta, "spec": {}}


async def test_a_kind_not_served_is_synced_and_known_until_rechecked() -> None:
    fake = FakeApiServer()
    fake.uninstall(GATEWAY_API)
    async with running(fake, kinds.HTTPROUTE) as (informer, events):
        assert (informer.synced, informer.served, informer.lists) == (True, False, 0)
        assert fake.watches() == []  # nothing to watch: no stream held open

        fake.install(GATEWAY_API)
        fake.put(kinds.HTTPROUTE.path("ns", "r"), route("r"))
        informer.recheck()
        assert await events.until(1) == [("MODIFIED", "r")]
        assert (informer.served, informer.lists) == (True, 1)
        await fake.until_watching()
    assert [str(r) for r in fake.reads()] == [f"GET {kinds.HTTPROUTE.path('ns')}"] * 2


async def test_a_kind_that_goes_away_empties_the_store() -> None:
    fake = FakeApiServer()
    fake.put(kinds.HTTPROUTE.path("ns", "r"), route("r"))
    async with running(fake, kinds.HTTPROUTE) as (informer, events):
        await fake.until_watching()
        fake.uninstall(GATEWAY_API)
        fake.end_watches()  # the re-watch answers 404: a failure, retried by listing
        assert await events.until(2) == [("MODIFIED", "r"), ("DELETED", "r")]
        assert (informer.served, len(informer.store)) == (False, 0)
