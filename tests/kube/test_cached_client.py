"""CachedKubeClient: a reconcile's reads come from watch-fed stores, writes feed them back.

Against the fake API server, whose request log shows exactly which reads reached
the server and which were answered from memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from gantry.kube import ApiError
from gantry.kube import resources as kinds
from gantry.kube.cached import CachedKubeClient, Watched, namespace_filter
from tests.reconciler.fake_apiserver import FakeApiServer, Obj

pytestmark = pytest.mark.timeout(30)

MANAGED = "app.kubernetes.io/managed-by=gantry"
INSTANCE = "app.kubernetes.io/instance=m"
GATEWAY_API = "gateway.networking.k8s.io/v1"
ROUTE_CRD = "httproutes.gateway.networking.k8s.io"
WATCHED = (
    Watched(kinds.DEPLOYMENT),
    Watched(kinds.POD),
    Watched(kinds.HTTPROUTE, crd=ROUTE_CRD),
)


def dep(name: str, ns: str = "ns", *, managed: bool = True, **spec: object) -> Obj:
    labels = {"app.kubernetes.io/instance": "m"}
    if managed:
        labels["app.kubernetes.io/managed-by"] = "gantry"
    meta = {"name": name, "namespace": ns, "labels": labels}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": dict(spec)}


class Relayed:
    """The changes the client passed to ``on_change``, awaited with a bound."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, res: kinds.Resource, kind: str, obj: Obj) -> None:
        self.seen.append((res.kind, kind, obj["metadata"]["name"]))
        self._changed.set()

    async def until(self, entry: tuple[str, str, str]) -> None:
        async with asyncio.timeout(5):
            while entry not in self.seen:
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def cached(
    fake: FakeApiServer, namespaces: Sequence[str] = ("ns",), relayed: Relayed | None = None
) -> AsyncIterator[CachedKubeClient]:
    async with fake.serving() as config:
        kube = CachedKubeClient(
            config,
            watched=WATCHED,
            namespaces=namespaces,
            selector=MANAGED,
            on_change=relayed,
        )
        await kube.start()
        try:
            async with asyncio.timeout(5):
                await kube.wait_synced()
            # The CRD watches too: over a socket their lists may land after the others'.
            await asyncio.gather(*(i.wait_synced() for i in kube.all_informers()))
            yield kube
        finally:
            await kube.close()


def sent_since(fake: FakeApiServer, mark: int) -> list[str]:
    return [str(r) for r in fake.log[mark:] if not r.watch]


async def test_label_lists_come_from_the_cache_once_synced() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "a"), dep("a"))
    async with cached(fake) as kube:
        mark = len(fake.log)
        got = await kube.list(kinds.DEPLOYMENT, "ns", selector=f"{INSTANCE},{MANAGED}")
        assert [d["metadata"]["name"] for d in got] == ["a"]
        assert await kube.list(kinds.POD, "ns", selector=f"{INSTANCE},{MANAGED}") == []
        assert sent_since(fake, mark) == []

        # The selector does not include the informer's: the cache could miss objects.
        unmanaged = fake.put(kinds.DEPLOYMENT.path("ns", "u"), dep("u", managed=False))
        got = await kube.list(kinds.DEPLOYMENT, "ns", selector=INSTANCE)
        assert sorted(d["metadata"]["name"] for d in got) == ["a", "u"]
        # Another namespace than the watched ones: the server.
        await kube.list(kinds.DEPLOYMENT, "elsewhere", selector=MANAGED)
        assert sent_since(fake, mark) == [
            f"GET {kinds.DEPLOYMENT.path('ns')}",
            f"GET {kinds.DEPLOYMENT.path('elsewhere')}",
        ]
        assert unmanaged["metadata"]["name"] == "u"


async def test_gets_of_cached_names_are_free_and_others_go_to_the_server() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "a"), dep("a"))
    fake.put(kinds.DEPLOYMENT.path("ns", "users"), dep("users", managed=False))
    async with cached(fake) as kube:
        mark = len(fake.log)
        cached_copy = await kube.get(kinds.DEPLOYMENT, "a", "ns")
        assert cached_copy is not None
        cached_copy["spec"]["mutated"] = True  # a copy: the store is not touched
        again = await kube.get(kinds.DEPLOYMENT, "a", "ns")
        assert again is not None
        assert "mutated" not in again["spec"]
        assert sent_since(fake, mark) == []

        # A user's object without Gantry's labels is invisible to the watch: only a GET sees it.
        users = await kube.get(kinds.DEPLOYMENT, "users", "ns")
        assert users is not None
        assert await kube.get(kinds.DEPLOYMENT, "absent", "ns") is None
        assert sent_since(fake, mark) == [
            f"GET {kinds.DEPLOYMENT.path('ns', 'users')}",
            f"GET {kinds.DEPLOYMENT.path('ns', 'absent')}",
        ]


async def test_the_first_write_into_an_empty_store_is_kept() -> None:
    fake = FakeApiServer()
    async with cached(fake) as kube:
        await kube.apply(dep("a"))
        assert kube.stores[kinds.DEPLOYMENT].get("ns", "a") is not None


async def test_writes_feed_the_store_before_the_watch_says_so() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "other"), dep("other"))
    relayed = Relayed()
    async with cached(fake, relayed=relayed) as kube:
        await relayed.until(("Deployment", "MODIFIED", "other"))  # from the list
        applied = await kube.apply(dep("a", paused=True))
        held = kube.stores[kinds.DEPLOYMENT].get("ns", "a")
        assert held is not None
        assert held["metadata"]["resourceVersion"] == applied["metadata"]["resourceVersion"]

        patched = await kube.patch_merge(kinds.DEPLOYMENT, "a", "ns", {"spec": {"paused": False}})
        held = kube.stores[kinds.DEPLOYMENT].get("ns", "a")
        assert held is not None
        assert held["spec"] == {"paused": False}
        assert held["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]

        # The watch's echoes of the apply and the patch arrive after their answers: they
        # are no change (the patched version is held) and are not relayed. Someone else's
        # write after them is, and in watch order, so by then the echoes have passed.
        held = kube.stores[kinds.DEPLOYMENT].get("ns", "a")
        assert held is not None
        fake.put(kinds.DEPLOYMENT.path("ns", "a"), {**held, "status": {"replicas": 1}})
        await relayed.until(("Deployment", "MODIFIED", "a"))
        assert relayed.seen.count(("Deployment", "MODIFIED", "a")) == 1
        held = kube.stores[kinds.DEPLOYMENT].get("ns", "a")
        assert held is not None
        assert held["spec"] == {"paused": False}
        assert held["status"] == {"replicas": 1}

        await kube.delete(kinds.DEPLOYMENT, "a", "ns")
        assert kube.stores[kinds.DEPLOYMENT].get("ns", "a") is None
        mark = len(fake.log)
        listed = await kube.list(kinds.DEPLOYMENT, "ns", selector=MANAGED)
        assert [d["metadata"]["name"] for d in listed] == ["other"]
        assert sent_since(fake, mark) == []


async def test_a_kind_not_served_answers_404_from_memory_until_its_crd_appears() -> None:
    fake = FakeApiServer()
    fake.uninstall(GATEWAY_API)
    async with cached(fake) as kube:
        mark = len(fake.log)
        with pytest.raises(ApiError) as caught:
            await kube.list(kinds.HTTPROUTE, "ns", selector=f"{INSTANCE},{MANAGED}")
        assert caught.value.not_found
        assert await kube.get(kinds.HTTPROUTE, "m", "ns") is None
        assert sent_since(fake, mark) == []

        # The CRD is installed: its watch (by name) makes the HTTPRoute informer list again.
        fake.install(GATEWAY_API)
        route = dep("m")
        route.update(apiVersion=GATEWAY_API, kind="HTTPRoute")
        fake.put(kinds.HTTPROUTE.path("ns", "m"), route)
        fake.put(kinds.CRD.path(None, ROUTE_CRD), {"metadata": {"name": ROUTE_CRD}})
        (informer,) = kube.informers[kinds.HTTPROUTE]
        async with asyncio.timeout(5):
            while informer.served is not True:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.01)
        mark = len(fake.log)
        got = await kube.list(kinds.HTTPROUTE, "ns", selector=f"{INSTANCE},{MANAGED}")
        assert [r["metadata"]["name"] for r in got] == ["m"]
        assert sent_since(fake, mark) == []
    crd_watches = [r for r in fake.log if r.path == kinds.CRD.path(None)]
    assert {r.params["fieldSelector"] for r in crd_watches} == {f"metadata.name={ROUTE_CRD}"}


async def test_namespace_patterns_watch_once_cluster_wide_and_keep_only_matches() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("team-a", "a"), dep("a", "team-a"))
    fake.put(kinds.DEPLOYMENT.path("kube-system", "k"), dep("k", "kube-system"))
    async with cached(fake, namespaces=["team-*", "!team-x"]) as kube:
        lists = {r.path for r in fake.reads()}
        assert kinds.DEPLOYMENT.path(None) in lists
        store = kube.stores[kinds.DEPLOYMENT]
        assert [o["metadata"]["name"] for o in store] == ["a"]
        mark = len(fake.log)
        await kube.list(kinds.DEPLOYMENT, "team-a", selector=MANAGED)
        assert sent_since(fake, mark) == []
        await kube.list(kinds.DEPLOYMENT, "kube-system", selector=MANAGED)
        assert sent_since(fake, mark) == [f"GET {kinds.DEPLOYMENT.path('kube-system')}"]


@pytest.mark.parametrize(
    ("patterns", "namespace", "accepted"),
    [
        ((), "any", None),
        (("ns",), "ns", True),
        (("ns",), "other", False),
        (("team-*",), "team-a", True),
        (("team-*", "!team-x"), "team-x", False),
        (("!kube-*",), "default", True),
        (("!kube-*",), "kube-system", False),
    ],
)
def test_namespace_filter(patterns: tuple[str, ...], namespace: str, accepted: bool | None) -> None:
    accept = namespace_filter(patterns)
    assert (accept(namespace) if accept is not None else None) is accepted
