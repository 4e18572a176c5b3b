"""API faults injected at exact points of a reconcile (what a real server won't do on demand)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gantry.handlers import modeldeployment as handlers
from gantry.kube import ApiError
from gantry.kube import resources as kinds
from gantry.kube.client import APPLY_CONTENT_TYPE
from gantry.status.child_failures import BASE_DELAY
from tests.handlers.handler_env import KEY, handler_env
from tests.reconciler.reconcile_env import (
    DEPLOYMENTS,
    EVENTS,
    HTTPROUTES,
    MD_PATH,
    NAME,
    PDBS,
    SERVICES,
    T0,
    child,
    md,
    reconcile_env,
    spec,
)

pytestmark = pytest.mark.timeout(30)

GATEWAY_API = "gateway.networking.k8s.io/v1"
PAUSE_GATE = "serving.gantry.dev/pause"
STALE = "the object has been modified; please apply your changes to the latest version"


async def test_server_error_on_deployment_apply_writes_no_status_and_backs_off() -> None:
    async with reconcile_env() as env:
        env.fake.fail("PATCH", f"{DEPLOYMENTS}/{NAME}", 500, message="etcdserver: timeout")

        outcome = await env.reconcile(at=T0)

        # A single 5xx is the server's trouble: nothing recorded, retried after backoff.
        assert outcome.status is None
        assert outcome.events == ()
        assert outcome.requeue_after == BASE_DELAY
        sent = [str(r) for r in env.fake.writes()]
        assert sent == [f"PATCH {SERVICES}/{NAME}", f"PATCH {DEPLOYMENTS}/{NAME}"]
        assert "status" not in env.fake.objects[MD_PATH]

        # Within the backoff the same manifests are not sent again.
        before = len(env.fake.writes())
        await env.reconcile(at=T0 + timedelta(seconds=1))
        assert len(env.fake.writes()) == before

        # The fault was one-shot: the retry after the backoff completes the same work.
        outcome = await env.reconcile(at=T0 + timedelta(seconds=BASE_DELAY))
        assert outcome.status is not None
        assert env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]["spec"]["replicas"] == 1


async def test_conflict_on_status_write_keeps_gates_and_events_for_the_retry() -> None:
    async with reconcile_env(md(annotations={PAUSE_GATE: "true"})) as env:
        env.fake.fail("PATCH", f"{MD_PATH}/status", 409, reason="Conflict", message=STALE)

        with pytest.raises(ApiError) as caught:
            await env.reconcile()

        err = caught.value
        assert (err.status, err.reason, err.message) == (409, "Conflict", STALE)
        assert (err.conflict, err.retryable, err.invalid) == (True, True, False)
        # Status first: nothing after a failed status write was sent.
        assert str(env.fake.writes()[-1]) == f"PATCH {MD_PATH}/status"
        assert env.fake.objects[MD_PATH]["metadata"]["annotations"] == {PAUSE_GATE: "true"}
        assert env.fake.requests("POST", EVENTS) == []

        retry = await env.reconcile()
        assert retry.consumed_annotations == (PAUSE_GATE,)
        assert "status" in env.fake.objects[MD_PATH]
        assert env.fake.objects[MD_PATH]["metadata"]["annotations"] == {}
        assert "Deploying" in {r.body["reason"] for r in env.fake.requests("POST", EVENTS)}


async def test_missing_gateway_api_is_tolerated_by_garbage_collection() -> None:
    async with reconcile_env() as env:
        md_uid = env.fake.objects[MD_PATH]["metadata"]["uid"]
        env.fake.put(
            f"{PDBS}/{NAME}", child("policy/v1", "PodDisruptionBudget", NAME, owner_uid=md_uid)
        )
        env.fake.uninstall(GATEWAY_API)

        outcome = await env.reconcile()

        assert outcome.status is not None
        assert env.fake.requests("GET", HTTPROUTES), "the HTTPRoute list was attempted"
        # Collection went on past the 404 to the kinds listed after HTTPRoute.
        assert [r.path for r in env.fake.requests("DELETE")] == [f"{PDBS}/{NAME}"]


async def test_forbidden_list_is_not_mistaken_for_a_missing_kind() -> None:
    async with reconcile_env() as env:
        env.fake.fail("GET", HTTPROUTES, 403, reason="Forbidden", message="RBAC: access denied")

        with pytest.raises(ApiError) as caught:
            await env.reconcile()

        assert (caught.value.status, caught.value.retryable) == (403, False)
        assert "status" not in env.fake.objects[MD_PATH]


async def test_leftover_already_gone_at_delete_time_is_fine() -> None:
    async with reconcile_env() as env:
        md_uid = env.fake.objects[MD_PATH]["metadata"]["uid"]
        path = f"{DEPLOYMENTS}/{NAME}-old"
        env.fake.put(path, child("apps/v1", "Deployment", f"{NAME}-old", owner_uid=md_uid))
        env.fake.fail("DELETE", path, 404, reason="NotFound", message="gone")

        outcome = await env.reconcile()

        assert outcome.status is not None
        assert len(env.fake.requests("DELETE", path)) == 1


async def test_namesake_replacing_a_leftover_is_never_deleted() -> None:
    async with reconcile_env() as env:
        md_uid = env.fake.objects[MD_PATH]["metadata"]["uid"]
        path = f"{DEPLOYMENTS}/{NAME}-old"
        env.fake.put(path, child("apps/v1", "Deployment", f"{NAME}-old", owner_uid=md_uid))
        original = env.fake.objects[path]["metadata"]["uid"]

        # Between the list and the delete someone recreates the name: the uid
        # precondition makes the server refuse, and the reconcile is retried.
        def replace_then_delete() -> None:
            env.fake.objects[path]["metadata"]["uid"] = "uid-of-the-namesake"

        env.fake.before["DELETE " + path] = replace_then_delete

        with pytest.raises(ApiError) as caught:
            await env.reconcile()

        assert caught.value.conflict
        (delete,) = env.fake.requests("DELETE", path)
        assert delete.body["preconditions"] == {"uid": original}
        assert path in env.fake.objects


GATEWAY_SPEC = spec(
    rollout={
        "strategy": "canary",
        "canary": {"trafficRouting": {"type": "gatewayAPI", "parentRefs": [{"name": "gw"}]}},
    }
)


async def test_gateway_routing_without_gateway_api_is_reported_not_retried() -> None:
    async with reconcile_env(md(GATEWAY_SPEC)) as env:
        env.fake.uninstall(GATEWAY_API)

        outcome = await env.reconcile()

        applied = [r.path for r in env.fake.log if r.content_type == APPLY_CONTENT_TYPE]
        assert applied[-1] == f"{HTTPROUTES}/{NAME}"
        assert outcome.status is not None
        assert outcome.status["phase"] == "Failed"
        degraded = next(c for c in outcome.status["conditions"] if c["type"] == "Degraded")
        assert degraded["reason"] == "ChildKindNotInstalled"
        assert "Gateway API" in degraded["message"]


async def test_missing_gateway_api_for_gateway_routing_is_not_silent() -> None:
    # The handler path: the HTTPRoute cache learns from its list that the kind is not
    # served; the reconcile still applies the route, and the refusal lands in the status.
    async with handler_env(missing=(GATEWAY_API,), rollout=GATEWAY_SPEC["rollout"]) as env:
        await env.kopf_sees("ADDED")
        assert env.kube.informers[kinds.HTTPROUTE][0].served is False

        await handlers._reconcile(KEY, env.memo)

        applied = [r.path for r in env.fake.log if r.content_type == APPLY_CONTENT_TYPE]
        assert applied[-1] == f"{HTTPROUTES}/{NAME}"
        status = env.fake.objects[MD_PATH]["status"]
        assert status["phase"] == "Failed"
        degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
        assert degraded["reason"] == "ChildKindNotInstalled"
        assert "Gateway API" in degraded["message"]
        assert "ChildKindNotInstalled" in {
            r.body["reason"] for r in env.fake.requests("POST", EVENTS)
        }
