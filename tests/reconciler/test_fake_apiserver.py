"""The fake API server behaves as the real one does where the reconciler tests rely on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import pytest

from gantry.kube import ApiError, KubeClient
from gantry.kube import resources as kinds
from gantry.kube.client import WatchEvent
from tests.reconciler.fake_apiserver import FakeApiServer, Obj

pytestmark = pytest.mark.timeout(30)

DEP = kinds.DEPLOYMENT.path("ns", "d")


@contextlib.asynccontextmanager
async def client(fake: FakeApiServer) -> AsyncIterator[KubeClient]:
    async with fake.serving() as config, KubeClient(config) as kube:
        yield kube


def deployment(labels: dict[str, str] | None = None, **spec: object) -> Obj:
    meta: Obj = {"name": "d", "namespace": "ns", "labels": labels or {}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


async def test_apply_creates_then_merges_keeping_other_managers_fields() -> None:
    fake = FakeApiServer()
    async with client(fake) as kube:
        created = await kube.apply(deployment(paused=False))
        meta = created["metadata"]
        assert (meta["generation"], meta["uid"]) == (1, fake.objects[DEP]["metadata"]["uid"])

        await kube.scale(kinds.DEPLOYMENT, "d", "ns", 4, manager="gantry-scale")
        again = await kube.apply(deployment(paused=False))
        assert again["spec"] == {"paused": False, "replicas": 4}
        assert again["metadata"]["generation"] == 2  # the scale changed spec; the re-apply not
        assert again["metadata"]["uid"] == meta["uid"]
        assert int(again["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])


async def test_apply_refuses_a_body_naming_another_object() -> None:
    fake = FakeApiServer()
    async with client(fake) as kube:
        wrong = deployment()
        wrong["metadata"]["name"] = "e"
        with pytest.raises(ApiError) as caught:
            await kube._request(
                "PATCH",
                DEP,
                params={"fieldManager": "m"},
                body=wrong,
                content_type="application/apply-patch+yaml",
            )
        assert caught.value.status == 400


async def test_list_matches_equality_selectors_and_refuses_others() -> None:
    fake = FakeApiServer()
    fake.put(DEP, deployment({"a": "1", "b": "2"}))
    fake.put(kinds.DEPLOYMENT.path("ns", "x"), deployment({"a": "1"}))
    fake.put(kinds.DEPLOYMENT.path("other", "y"), deployment({"a": "1", "b": "2"}))
    async with client(fake) as kube:
        got = await kube.list(kinds.DEPLOYMENT, "ns", selector="a=1,b==2")
        assert [d["metadata"]["name"] for d in got] == ["d"]
        assert len(await kube.list(kinds.DEPLOYMENT, "ns")) == 2
        for unsupported in ("a!=1", "a in (1)", "a"):
            with pytest.raises(ApiError) as caught:
                await kube.list(kinds.DEPLOYMENT, "ns", selector=unsupported)
            assert caught.value.invalid


async def test_merge_patch_deletes_nulls_and_status_is_its_own_subresource() -> None:
    fake = FakeApiServer()
    md = kinds.MODEL_DEPLOYMENT
    path = md.path("ns", "m")
    fake.put(path, {"metadata": {"name": "m", "annotations": {"x": "1", "y": "2"}}, "spec": {}})
    async with client(fake) as kube:
        await kube.patch_merge(md, "m", "ns", {"metadata": {"annotations": {"x": None}}})
        await kube.patch_merge(
            md, "m", "ns", {"status": {"phase": "Ready", "canary": None}}, sub="status"
        )
        await kube.patch_merge(md, "m", "ns", {"status": {"phase": "Ignored"}})  # main resource
        stored = fake.objects[path]
        assert stored["metadata"]["annotations"] == {"y": "2"}
        assert stored["status"] == {"phase": "Ready"}
        assert stored["metadata"]["generation"] == 1


async def test_delete_honours_the_uid_precondition() -> None:
    fake = FakeApiServer()
    uid = fake.put(DEP, deployment())["metadata"]["uid"]
    async with client(fake) as kube:
        with pytest.raises(ApiError) as caught:
            await kube.delete(kinds.DEPLOYMENT, "d", "ns", uid="someone-else")
        assert caught.value.conflict
        assert await kube.delete(kinds.DEPLOYMENT, "d", "ns", uid=uid) is True
        assert await kube.delete(kinds.DEPLOYMENT, "d", "ns", uid=uid) is False


async def test_faults_are_counted_and_missing_groups_answer_404() -> None:
    fake = FakeApiServer()
    fake.put(DEP, deployment())
    fake.fail("GET", DEP, 503, times=2)
    fake.uninstall("gateway.networking.k8s.io/v1")
    async with client(fake) as kube:
        for _ in range(2):
            with pytest.raises(ApiError):
                await kube.get(kinds.DEPLOYMENT, "d", "ns")
        assert await kube.get(kinds.DEPLOYMENT, "d", "ns") is not None
        with pytest.raises(ApiError) as caught:
            await kube.list(kinds.HTTPROUTE, "ns")
        assert caught.value.not_found


async def test_create_with_generate_name() -> None:
    fake = FakeApiServer()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "m.", "namespace": "ns"},
    }
    async with client(fake) as kube:
        first = await kube.create(event)
        second = await kube.create(event)
    assert first["metadata"]["name"].startswith("m.")
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert fake.log[0].body == event  # the log keeps what was sent


# ---- watches ----------------------------------------------------------------


async def take(events: AsyncIterator[WatchEvent], n: int) -> list[tuple[str, str]]:
    """The first ``n`` events of a watch as (type, name), then the stream is closed."""
    got: list[tuple[str, str]] = []
    generator = cast(AsyncGenerator[WatchEvent, None], events)  # watch() is one
    async with contextlib.aclosing(generator) as stream, asyncio.timeout(5):
        async for event in stream:
            got.append((event.type, event.object["metadata"]["name"]))
            if len(got) == n:
                break
    return got


def named(name: str, namespace: str = "ns", **labels: str) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": labels}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {}}


async def test_watch_streams_every_change_after_the_version_that_the_selector_covers() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "before"), named("before", a="1"))
    async with client(fake) as kube:
        _, version = await kube.list_versioned(kinds.DEPLOYMENT, "ns", selector="a=1")
        watch = asyncio.create_task(
            take(kube.watch(kinds.DEPLOYMENT, "ns", selector="a=1", resource_version=version), 5)
        )
        await kube.apply(named("d", a="1"))  # ADDED
        await kube.apply(named("other", a="2"))  # not selected: nothing
        await kube.apply(named("d", "elsewhere", a="1"))  # another namespace: nothing
        await kube.scale(kinds.DEPLOYMENT, "d", "ns", 3, manager="m")  # MODIFIED
        await kube.patch_merge(kinds.DEPLOYMENT, "d", "ns", {"status": {"x": 1}}, sub="status")
        await kube.patch_merge(kinds.DEPLOYMENT, "before", "ns", {"metadata": {"labels": None}})
        await kube.delete(kinds.DEPLOYMENT, "d", "ns")
        assert await watch == [
            ("ADDED", "d"),
            ("MODIFIED", "d"),
            ("MODIFIED", "d"),
            ("DELETED", "before"),  # its labels left the selection
            ("DELETED", "d"),
        ]
    (request,) = fake.watches()
    assert request.params["resourceVersion"] == version
    assert request.params["labelSelector"] == "a=1"


async def test_watch_without_a_version_starts_with_every_object_as_added() -> None:
    fake = FakeApiServer()
    fake.put(kinds.DEPLOYMENT.path("ns", "a"), named("a"))
    fake.put(kinds.DEPLOYMENT.path("ns", "b"), named("b"))
    async with client(fake) as kube:
        assert await take(kube.watch(kinds.DEPLOYMENT, "ns"), 2) == [("ADDED", "a"), ("ADDED", "b")]


async def test_cluster_wide_collections_cover_every_namespace_and_fields_select_names() -> None:
    fake = FakeApiServer()
    for ns in ("one", "two"):
        fake.put(kinds.POD.path(ns, "p"), {"metadata": {"name": "p", "namespace": ns}})
    fake.put(kinds.CRD.path(None, "x.example.com"), {"metadata": {"name": "x.example.com"}})
    fake.put(kinds.CRD.path(None, "y.example.com"), {"metadata": {"name": "y.example.com"}})
    async with client(fake) as kube:
        pods = await kube.list(kinds.POD)
        assert sorted(p["metadata"]["namespace"] for p in pods) == ["one", "two"]
        crds, _ = await kube.list_versioned(kinds.CRD, fields="metadata.name=y.example.com")
        assert [c["metadata"]["name"] for c in crds] == ["y.example.com"]
        with pytest.raises(ApiError) as caught:
            await kube.list_versioned(kinds.CRD, fields="spec.group=example.com")
        assert caught.value.status == 400

        _, version = await kube.list_versioned(kinds.POD)
        watch = asyncio.create_task(take(kube.watch(kinds.POD, resource_version=version), 2))
        fake.put(kinds.POD.path("three", "q"), {"metadata": {"name": "q", "namespace": "three"}})
        await kube.delete(kinds.POD, "p", "one")
        assert await watch == [("ADDED", "q"), ("DELETED", "p")]


async def test_a_version_older_than_the_history_is_gone() -> None:
    fake = FakeApiServer(history_limit=2)
    async with client(fake) as kube:
        _, version = await kube.list_versioned(kinds.DEPLOYMENT, "ns")
        for name in ("a", "b", "c"):
            await kube.apply(named(name))
        with pytest.raises(ApiError) as caught:
            await take(kube.watch(kinds.DEPLOYMENT, "ns", resource_version=version), 1)
        assert caught.value.status == 410

        # A stream that falls behind the history ends with an ERROR event of 410.
        _, version = await kube.list_versioned(kinds.DEPLOYMENT, "ns")
        watch = asyncio.create_task(
            take(kube.watch(kinds.DEPLOYMENT, "ns", resource_version=version), 1)
        )
        await fake.until_watching()
        fake.put(kinds.DEPLOYMENT.path("ns", "d"), named("d"))
        fake.compact()
        with pytest.raises(ApiError) as caught:
            await watch
        assert caught.value.status == 410


async def test_a_watch_ends_at_its_timeout_or_when_the_server_ends_it() -> None:
    fake = FakeApiServer()
    async with client(fake) as kube, asyncio.timeout(10):
        quiet = [e async for e in kube.watch(kinds.DEPLOYMENT, "ns", timeout_seconds=0)]
        assert quiet == []

        _, version = await kube.list_versioned(kinds.DEPLOYMENT, "ns")
        watch = asyncio.create_task(
            take(kube.watch(kinds.DEPLOYMENT, "ns", resource_version=version), 2)
        )
        await kube.apply(named("a"))
        await fake.until_watching()
        fake.end_watches()
        assert await watch == [("ADDED", "a")]
