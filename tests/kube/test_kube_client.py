"""KubeClient's requests and error handling, over an injected httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gantry.kube import ApiError, ClusterConfig, KubeClient
from gantry.kube import resources as kinds

pytestmark = pytest.mark.timeout(30)

SERVER = "https://kube.test:6443"
Handler = Callable[[httpx.Request], httpx.Response]

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


@dataclass
class Api:
    """Records every request and answers with ``reply`` (200 and ``{}`` by default)."""

    reply: Handler = field(default=lambda _: httpx.Response(200, json={}))
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.reply(request)

    @property
    def last(self) -> httpx.Request:
        return self.seen[-1]

    def body(self) -> Any:
        return json.loads(self.last.content)


@dataclass
class Wired:
    api: Api
    kube: KubeClient


@pytest_asyncio.fixture(loop_scope="function")
async def wired() -> AsyncIterator[Wired]:
    api = Api()
    config = ClusterConfig(server=SERVER, token="s3cr3t", insecure=True)
    kube = KubeClient(
        config, field_manager="gantry-test", transport=httpx.MockTransport(api), timeout=5
    )
    async with kube:
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
    assert req.url.path == path
    assert dict(req.url.params) == {"fieldManager": "gantry-test", "force": "true"}
    assert req.headers["content-type"] == "application/apply-patch+yaml"
    assert req.headers["authorization"] == "Bearer s3cr3t"
    assert wired.api.body() == manifest


async def test_apply_without_force(wired: Wired) -> None:
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "n"}}
    await wired.kube.apply(manifest, force=False)
    assert wired.api.last.url.params["force"] == "false"


async def test_apply_of_an_unmanaged_kind_sends_nothing(wired: Wired) -> None:
    with pytest.raises(KeyError, match="ConfigMap"):
        await wired.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert wired.api.seen == []


async def test_get_returns_the_object_or_none_on_404(wired: Wired) -> None:
    found = {"metadata": {"name": "x"}}
    wired.api.reply = lambda r: (
        httpx.Response(200, json=found)
        if r.url.path.endswith("/x")
        else httpx.Response(404, json=status_body(404, "NotFound", "not found"))
    )
    assert await wired.kube.get(kinds.SERVICE, "x", "ns") == found
    assert wired.api.last.url.path == "/api/v1/namespaces/ns/services/x"
    assert await wired.kube.get(kinds.SERVICE, "y", "ns") is None


async def test_get_raises_other_errors(wired: Wired) -> None:
    wired.api.reply = lambda _: httpx.Response(403, json=status_body(403, "Forbidden", "no"))
    with pytest.raises(ApiError) as caught:
        await wired.kube.get(kinds.SERVICE, "x", "ns")
    assert caught.value.status == 403


async def test_list_passes_the_label_selector_and_returns_items(wired: Wired) -> None:
    items = [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]
    wired.api.reply = lambda _: httpx.Response(200, json={"kind": "List", "items": items})

    got = await wired.kube.list(kinds.DEPLOYMENT, "ns", selector="a=b,c=d")

    assert got == items
    assert wired.api.last.method == "GET"
    assert wired.api.last.url.path == "/apis/apps/v1/namespaces/ns/deployments"
    assert dict(wired.api.last.url.params) == {"labelSelector": "a=b,c=d"}


async def test_list_without_selector_sends_no_query_and_tolerates_no_items(wired: Wired) -> None:
    wired.api.reply = lambda _: httpx.Response(200, json={"kind": "List"})
    assert await wired.kube.list(kinds.NAMESPACE) == []
    assert wired.api.last.url.path == "/api/v1/namespaces"
    assert wired.api.last.url.query == b""


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
    assert wired.api.last.url.path == "/apis/apps/v1/namespaces/ns/deployments/x"
    assert wired.api.body() == options


async def test_delete_returns_false_when_already_gone(wired: Wired) -> None:
    wired.api.reply = lambda _: httpx.Response(404, json=status_body(404, "NotFound", "gone"))
    assert await wired.kube.delete(kinds.DEPLOYMENT, "x", "ns", uid="u-1") is False


async def test_delete_precondition_failure_raises_conflict(wired: Wired) -> None:
    message = "Precondition failed: UID in precondition: u-1, UID in object meta: u-2"
    wired.api.reply = lambda _: httpx.Response(409, json=status_body(409, "Conflict", message))
    with pytest.raises(ApiError) as caught:
        await wired.kube.delete(kinds.DEPLOYMENT, "x", "ns", uid="u-1")
    assert caught.value.conflict
    assert caught.value.message == message


async def test_scale_merge_patches_the_scale_subresource_under_its_manager(wired: Wired) -> None:
    await wired.kube.scale(kinds.DEPLOYMENT, "x", "ns", 3, manager="gantry-scale")
    req = wired.api.last
    assert (req.method, req.url.path) == (
        "PATCH",
        "/apis/apps/v1/namespaces/ns/deployments/x/scale",
    )
    assert dict(req.url.params) == {"fieldManager": "gantry-scale"}
    assert req.headers["content-type"] == "application/merge-patch+json"
    assert wired.api.body() == {"spec": {"replicas": 3}}


async def test_patch_merge_on_a_subresource_and_create(wired: Wired) -> None:
    await wired.kube.patch_merge(
        kinds.MODEL_DEPLOYMENT, "md", "ns", {"status": {"phase": "Ready"}}, sub="status"
    )
    req = wired.api.last
    assert (
        req.url.path == "/apis/serving.gantry.dev/v1alpha1/namespaces/ns/modeldeployments/md/status"
    )
    assert req.headers["content-type"] == "application/merge-patch+json"
    assert dict(req.url.params) == {"fieldManager": "gantry-test"}

    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "md.", "namespace": "ns"},
    }
    await wired.kube.create(event)
    assert (wired.api.last.method, wired.api.last.url.path) == (
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
    wired.api.reply = lambda _: httpx.Response(code, json=body)
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
    wired.api.reply = lambda _: httpx.Response(502, text="<html>bad gateway</html>")
    with pytest.raises(ApiError) as caught:
        await wired.kube.list(kinds.POD, "ns")
    assert (caught.value.status, caught.value.reason) == (502, "Bad Gateway")
    assert caught.value.message == "<html>bad gateway</html>"
    assert caught.value.retryable


async def test_api_error_from_a_json_body_that_is_not_an_object(wired: Wired) -> None:
    wired.api.reply = lambda _: httpx.Response(503, json=["upstream", "unavailable"])
    with pytest.raises(ApiError) as caught:
        await wired.kube.list(kinds.POD, "ns")
    assert caught.value.retryable


async def test_empty_success_body_is_an_empty_manifest(wired: Wired) -> None:
    wired.api.reply = lambda _: httpx.Response(200)
    assert await wired.kube.patch_merge(kinds.POD, "p", "ns", {"metadata": {}}) == {}


async def test_no_token_sends_no_authorization() -> None:
    api = Api()
    config = ClusterConfig(server=SERVER, insecure=True)
    async with KubeClient(config, transport=httpx.MockTransport(api)) as kube:
        await kube.get(kinds.NAMESPACE, "default")
    assert "authorization" not in api.last.headers
    assert str(api.last.url) == f"{SERVER}/api/v1/namespaces/default"
