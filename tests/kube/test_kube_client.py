"""KubeClient's requests and error handling, against a loopback HTTP server that records
what it received and answers what each test scripts (a real API server cannot be told
to answer a 502 page or a JSON list)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from multidict import CIMultiDict

from gantry.kube import ApiError, ClusterConfig, KubeClient
from gantry.kube import resources as kinds
from tests.reconciler.fake_apiserver import FakeApiServer, serve_loopback

pytestmark = pytest.mark.timeout(30)

# Written out, not derived from Resource.path: these are the REST paths the API server serves.
APPLY_PATHS = {
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/ns/deployments/x",
    ("v1", "Service"): "/api/v1/namespaces/ns/services/x",
    ("v1", "Pod"): "/api/v1/namespaces/ns/pods/x",
    ("v1", "Event"): "/api/v1/namespaces/ns/events/x",
    ("v1", "Namespace"): "/api/v1/namespaces/x",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): (
        "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/x"
    ),
    ("policy/v1", "PodDisruptionBudget"): "/apis/policy/v1/namespaces/ns/poddisruptionbudgets/x",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): (
        "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/x"
    ),
    ("keda.sh/v1alpha1", "ScaledObject"): "/apis/keda.sh/v1alpha1/namespaces/ns/scaledobjects/x",
    ("coordination.k8s.io/v1", "Lease"): "/apis/coordination.k8s.io/v1/namespaces/ns/leases/x",
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): (
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"
    ),
    ("serving.gantry.dev/v1alpha1", "ModelDeployment"): (
        "/apis/serving.gantry.dev/v1alpha1/namespaces/ns/modeldeployments/x"
    ),
}


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    params: dict[str, str]
    query: str
    headers: CIMultiDict[str]
    content: bytes


Reply = Callable[[Seen], web.Response]


@dataclass
class Api:
    """Records every request and answers with ``reply`` (200 and ``{}`` by default)."""

    reply: Reply = field(default=lambda _: web.json_response({}))
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        seen = Seen(
            request.method,
            request.path,
            dict(request.query),
            request.query_string,
            CIMultiDict(request.headers),
            await request.read(),
        )
        self.seen.append(seen)
        return self.reply(seen)

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    def body(self) -> Any:
        return json.loads(self.last.content)


def answer(status: int, body: Any) -> web.Response:
    return web.json_response(body, status=status)


@dataclass
class Wired:
    api: Api
    kube: KubeClient


@pytest_asyncio.fixture(loop_scope="function")
async def wired() -> AsyncIterator[Wired]:
    api = Api()
    async with serve_loopback(api) as url:
        config = ClusterConfig(server=url, token="s3cr3t", insecure=True)
        async with KubeClient(config, field_manager="gantry-test", timeout=5) as kube:
            yield Wired(api, kube)


async def test_the_table_covers_every_known_kind() -> None:
    # async like its neighbours: a lone sync test here leaks a pytest-asyncio loop.
    assert set(APPLY_PATHS) == set(kinds.KNOWN)


@pytest.mark.parametrize(("key", "path"), sorted(APPLY_PATHS.items()), ids=lambda v: str(v))
async def test_apply_is_a_forced_server_side_apply_at_the_kinds_path(
    wired: Wired, key: tuple[str, str], path: str
) -> None:
    res = kinds.KNOWN[key]
    meta: dict[str, Any] = {"name": "x"}
    if res.namespaced:
        meta["namespace"] = "ns"
    manifest = {"apiVersion": key[0], "kind": key[1], "metadata": meta, "spec": {"a": 1}}

    await wired.kube.apply(manifest)

    req = wired.api.last
    assert req.method == "PATCH"
    assert req.path == path
    assert req.params == {"fieldManager": "gantry-test", "force": "true"}
    assert req.headers["content-type"] == "application/apply-patch+yaml"
    assert req.headers["authorization"] == "Bearer s3cr3t"
    assert wired.api.body() == manifest


async def test_apply_without_force(wired: Wired) -> None:
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "n"}}
    await wired.kube.apply(manifest, force=False)
    assert wired.api.last.params["force"] == "false"


async def test_apply_of_an_unmanaged_kind_sends_nothing(wired: Wired) -> None:
    with pytest.raises(KeyError, match="ConfigMap"):
        await wired.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert wired.api.seen == []


async def test_get_returns_the_object_or_none_on_404(wired: Wired) -> None:
    found = {"metadata": {"name": "x"}}
    wired.api.reply = lambda r: (
        answer(200, found)
        if r.path.endswith("/x")
        else answer(404, status_body(404, "NotFound", "not found"))
    )
    assert await wired.kube.get(kinds.SERVICE, "x", "ns") == found
    assert wired.api.last.path == "/api/v1/namespaces/ns/services/x"
    assert await wired.kube.get(kinds.SERVICE, "y", "ns") is None


async def test_get_raises_other_errors(wired: Wired) -> None:
    wired.api.reply = lambda _: answer(403, status_body(403, "Forbidden", "no"))
    with pytest.raises(ApiError) as caught:
        await wired.kube.get(kinds.SERVICE, "x", "ns")
    assert caught.value.status == 403


async def test_list_passes_the_label_selector_and_returns_items(wired: Wired) -> None:
    items = [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]
    wired.api.reply = lambda _: answer(200, {"kind": "List", "items": items})

    got = await wired.kube.list(kinds.DEPLOYMENT, "ns", selector="a=b,c=d")

    assert got == items
    assert wired.api.last.method == "GET"
    assert wired.api.last.path == "/apis/apps/v1/namespaces/ns/deployments"
    assert wired.api.last.params == {"labelSelector": "a=b,c=d"}


async def test_list_without_selector_sends_no_query_and_tolerates_no_items(wired: Wired) -> None:
    wired.api.reply = lambda _: answer(200, {"kind": "List"})
    assert await wired.kube.list(kinds.NAMESPACE) == []
    assert wired.api.last.path == "/api/v1/namespaces"
    assert wired.api.last.query == ""


@pytest.mark.parametrize(
    ("uid", "options"),
    [
        ("u-1", {"propagationPolicy": "Background", "preconditions": {"uid": "u-1"}}),
        (None, {"propagationPolicy": "Background"}),
    ],
)
async def test_delete_sends_background_propagation_and_uid_precondition(
    wired: Wired, uid: str | None, options: dict[str, Any]
) -> None:
    assert await wired.kube.delete(kinds.DEPLOYMENT, "x", "ns", uid=uid) is True
    assert wired.api.last.method == "DELETE"
    assert wired.api.last.path == "/apis/apps/v1/namespaces/ns/deployments/x"
    assert wired.api.body() == options


async def test_delete_returns_false_when_already_gone(wired: Wired) -> None:
    wired.api.reply = lambda _: answer(404, status_body(404, "NotFound", "gone"))
    assert await wired.kube.delete(kinds.DEPLOYMENT, "x", "ns", uid="u-1") is False


async def test_delete_precondition_failure_raises_conflict(wired: Wired) -> None:
    message = "Precondition failed: UID in precondition: u-1, UID in object meta: u-2"
    wired.api.reply = lambda _: answer(409, status_body(409, "Conflict", message))
    with pytest.raises(ApiError) as caught:
        await wired.kube.delete(kinds.DEPLOYMENT, "x", "ns", uid="u-1")
    assert caught.value.conflict
    assert caught.value.message == message


async def test_scale_merge_patches_the_scale_subresource_under_its_manager(wired: Wired) -> None:
    await wired.kube.scale(kinds.DEPLOYMENT, "x", "ns", 3, manager="gantry-scale")
    req = wired.api.last
    assert (req.method, req.path) == (
        "PATCH",
        "/apis/apps/v1/namespaces/ns/deployments/x/scale",
    )
    assert req.params == {"fieldManager": "gantry-scale"}
    assert req.headers["content-type"] == "application/merge-patch+json"
    assert wired.api.body() == {"spec": {"replicas": 3}}


async def test_patch_merge_on_a_subresource_and_create(wired: Wired) -> None:
    await wired.kube.patch_merge(
        kinds.MODEL_DEPLOYMENT, "md", "ns", {"status": {"phase": "Ready"}}, sub="status"
    )
    req = wired.api.last
    assert req.path == "/apis/serving.gantry.dev/v1alpha1/namespaces/ns/modeldeployments/md/status"
    assert req.headers["content-type"] == "application/merge-patch+json"
    assert req.params == {"fieldManager": "gantry-test"}

    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "md.", "namespace": "ns"},
    }
    await wired.kube.create(event)
    assert (wired.api.last.method, wired.api.last.path) == (
        "POST",
        "/api/v1/namespaces/ns/events",
    )
    assert wired.api.body() == event


@pytest.mark.parametrize(
    ("code", "not_found", "conflict", "invalid", "retryable"),
    [
        (400, False, False, True, False),
        (403, False, False, False, False),
        (404, True, False, False, False),
        (409, False, True, False, True),
        (422, False, False, True, False),
        (429, False, False, False, True),
        (500, False, False, False, True),
        (503, False, False, False, True),
    ],
)
async def test_api_error_carries_the_status_and_its_flags(
    wired: Wired, code: int, not_found: bool, conflict: bool, invalid: bool, retryable: bool
) -> None:
    body = status_body(code, "SomeReason", f"the server says {code}")
    wired.api.reply = lambda _: answer(code, body)
    with pytest.raises(ApiError) as caught:
        await wired.kube.list(kinds.POD, "ns")
    err = caught.value
    assert (err.status, err.reason, err.message) == (code, "SomeReason", f"the server says {code}")
    assert str(err) == f"{code} SomeReason: the server says {code}"
    assert (err.not_found, err.conflict, err.invalid, err.retryable) == (
        not_found,
        conflict,
        invalid,
        retryable,
    )


async def test_api_error_from_a_non_json_body_uses_the_http_reason(wired: Wired) -> None:
    wired.api.reply = lambda _: web.Response(status=502, text="<html>bad gateway</html>")
    with pytest.raises(ApiError) as caught:
        await wired.kube.list(kinds.POD, "ns")
    assert (caught.value.status, caught.value.reason) == (502, "Bad Gateway")
    assert caught.value.message == "<html>bad gateway</html>"
    assert caught.value.retryable


async def test_api_error_from_a_json_body_that_is_not_an_object(wired: Wired) -> None:
    wired.api.reply = lambda _: answer(503, ["upstream", "unavailable"])
    with pytest.raises(ApiError) as caught:
        await wired.kube.list(kinds.POD, "ns")
    assert caught.value.retryable


async def test_empty_success_body_is_an_empty_manifest(wired: Wired) -> None:
    wired.api.reply = lambda _: web.Response(status=200)
    assert await wired.kube.patch_merge(kinds.POD, "p", "ns", {"metadata": {}}) == {}


async def test_no_token_sends_no_authorization() -> None:
    api = Api()
    async with serve_loopback(api) as url, KubeClient(ClusterConfig(server=url)) as kube:
        await kube.get(kinds.NAMESPACE, "default")
    assert "authorization" not in api.last.headers
    assert (api.last.path, api.last.query) == ("/api/v1/namespaces/default", "")


async def test_every_request_names_gantry_and_the_replica(wired: Wired) -> None:
    await wired.kube.get(kinds.NAMESPACE, "default")
    await wired.kube.scale(kinds.DEPLOYMENT, "x", "ns", 1, manager="m")
    agents = {seen.headers["user-agent"] for seen in wired.api.seen}
    assert len(agents) == 1
    (agent,) = agents
    assert agent.startswith("gantry/")
    assert agent.endswith(f"({wired.kube.identity})")


# Transport failures: the server's answer is unknown, so the caller gets a retryable 503.


async def test_a_reset_connection_is_a_retryable_503() -> None:
    fake = FakeApiServer()
    path = kinds.SERVICE.path("ns", "x")
    fake.reset("PATCH", path)
    fake.reset("GET", path, times=None)
    async with fake.serving() as config, KubeClient(config) as kube:
        with pytest.raises(ApiError) as caught:
            await kube.patch_merge(kinds.SERVICE, "x", "ns", {"metadata": {}})
        assert (caught.value.status, caught.value.reason) == (503, "Unavailable")
        assert caught.value.retryable
        with pytest.raises(ApiError) as caught:
            await kube.get(kinds.SERVICE, "x", "ns")
        assert caught.value.status == 503
    # A write is sent once. aiohttp sends an idempotent request (GET, DELETE) once more
    # on a fresh connection when the first is cut (RFC 9112, 9.3.1), then gives up.
    assert [str(r) for r in fake.log] == [f"PATCH {path}", f"GET {path}", f"GET {path}"]


async def test_a_refused_connection_is_a_retryable_503() -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with KubeClient(ClusterConfig(server=f"http://127.0.0.1:{port}")) as kube:
        with pytest.raises(ApiError) as caught:
            await kube.list(kinds.POD, "ns")
    assert caught.value.status == 503
    assert caught.value.message.startswith("ClientConnectorError: ")


async def test_an_answer_later_than_the_timeout_is_a_retryable_503() -> None:
    async def slow(_: web.BaseRequest) -> web.StreamResponse:
        await asyncio.sleep(10)
        return web.json_response({})

    async with (
        serve_loopback(slow) as url,
        KubeClient(ClusterConfig(server=url), timeout=0.2) as kube,
    ):
        with pytest.raises(ApiError) as caught:
            await kube.get(kinds.SERVICE, "x", "ns")
    assert caught.value.status == 503
    assert caught.value.message.startswith("TimeoutError")


async def test_a_watch_event_longer_than_the_streams_buffer_arrives_whole() -> None:
    # One event is one line; aiohttp's readline() refuses lines over its 64 KiB limit.
    fake = FakeApiServer()
    big = {"metadata": {"name": "d", "namespace": "ns"}, "spec": {"blob": "x" * 300_000}}
    fake.put(kinds.DEPLOYMENT.path("ns", "d"), big)
    async with fake.serving() as config, KubeClient(config) as kube:
        events = kube.watch(kinds.DEPLOYMENT, "ns", timeout_seconds=5)
        first = await anext(events)
        await events.aclose()
    assert (first.type, first.object["spec"]) == ("ADDED", big["spec"])
