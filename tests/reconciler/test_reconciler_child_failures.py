"""Children the cluster refuses, and names Gantry does not own, end up in the status.

The fake API server stands in for admission answers (a 422 from a child's own
validation, a 500 that repeats on one manifest) that a real server gives only for
particular inputs; e2e/test_child_failures.py provokes the real ones.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gantry.status.child_failures import BASE_DELAY, REPEATS_BEFORE_REPORT
from tests.reconciler.reconcile_env import (
    DEPLOYMENTS,
    EVENTS,
    MD_PATH,
    NAME,
    NS,
    SERVICES,
    T0,
    Env,
    child,
    md,
    reconcile_env,
    settle,
    spec,
)

pytestmark = pytest.mark.timeout(30)

INVALID = (
    'Deployment.apps "resnet" is invalid: spec.template.spec.containers[0].resources.limits'
    '[cpu]: Invalid value: "1e3m": must be a whole number of millicores'
)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def warnings(env: Env) -> list[str]:
    return [
        r.body["reason"] for r in env.fake.requests("POST", EVENTS) if r.body["type"] == "Warning"
    ]


def at(seconds: float) -> Any:
    return T0 + timedelta(seconds=seconds)


async def test_rejected_child_is_reported_once_and_backs_off() -> None:
    async with reconcile_env() as env:
        env.fake.fail(
            "PATCH", f"{DEPLOYMENTS}/{NAME}", 422, reason="Invalid", message=INVALID, times=None
        )

        outcome = await env.reconcile(at=at(0))

        assert outcome.status is not None
        assert outcome.status["phase"] == "Failed"
        degraded = condition(outcome.status, "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "ChildRejected")
        assert (
            degraded["message"]
            == f"Deployment {NS}/{NAME} refused by the API server (422): {INVALID}"
        )
        assert warnings(env) == ["ChildRejected"]

        # Within the backoff: no write at all, not even the rejected apply.
        writes = len(env.fake.writes())
        for second in (1, 2, BASE_DELAY - 1):
            await env.reconcile(at=at(second))
        assert len(env.fake.writes()) == writes

        # After it: tried again, still refused, and nothing new to say. (The Service,
        # applied unchanged last time, is not sent again.)
        await env.reconcile(at=at(BASE_DELAY))
        retried = env.fake.writes()[writes:]
        assert [str(r) for r in retried] == [f"PATCH {DEPLOYMENTS}/{NAME}"]
        assert warnings(env) == ["ChildRejected"]

        # The next wait is twice as long.
        writes = len(env.fake.writes())
        await env.reconcile(at=at(BASE_DELAY + 2 * BASE_DELAY - 1))
        assert len(env.fake.writes()) == writes
        await env.reconcile(at=at(BASE_DELAY + 2 * BASE_DELAY))
        assert len(env.fake.writes()) > writes


async def test_spec_change_retries_at_once_and_clears_the_failure() -> None:
    async with reconcile_env() as env:
        env.fake.fail("PATCH", f"{DEPLOYMENTS}/{NAME}", 422, reason="Invalid", message=INVALID)
        await env.reconcile(at=at(0))
        assert env.fake.objects[MD_PATH]["status"]["phase"] == "Failed"

        env.fake.objects[MD_PATH]["spec"] = spec(resources={"cpu": "2"})
        env.fake.objects[MD_PATH]["metadata"]["generation"] = 2
        outcome = await env.reconcile(at=at(1))

        assert f"{DEPLOYMENTS}/{NAME}" in env.fake.objects
        assert outcome.status is not None
        assert condition(outcome.status, "Degraded")["status"] == "False"
        settle(env.fake, NAME)


async def test_server_error_repeating_on_one_manifest_is_reported() -> None:
    async with reconcile_env() as env:
        env.fake.fail("PATCH", f"{DEPLOYMENTS}/{NAME}", 500, message="boom", times=None)
        moment = 0.0
        for attempt in range(1, REPEATS_BEFORE_REPORT + 1):
            outcome = await env.reconcile(at=at(moment))
            moment += BASE_DELAY * 2 ** (attempt - 1)
            if attempt < REPEATS_BEFORE_REPORT:
                assert outcome.status is None, f"reported after {attempt} 500(s)"
        assert outcome.status is not None
        degraded = condition(outcome.status, "Degraded")
        assert degraded["reason"] == "ChildRejected"
        assert "(500): boom" in degraded["message"]
        assert len(env.fake.requests("PATCH", f"{DEPLOYMENTS}/{NAME}")) == REPEATS_BEFORE_REPORT


def users_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": NS, "labels": {"app": "mine"}},
        "spec": {"selector": {"app": "mine"}, "ports": [{"port": 80}]},
    }


async def test_users_object_with_our_name_is_never_taken() -> None:
    async with reconcile_env() as env:
        env.fake.put(f"{SERVICES}/{NAME}", users_service())
        before = dict(env.fake.objects[f"{SERVICES}/{NAME}"])

        outcome = await env.reconcile(at=at(0))

        assert outcome.status is not None
        assert outcome.status["phase"] == "Failed"
        degraded = condition(outcome.status, "Degraded")
        assert degraded["reason"] == "ChildConflict"
        assert degraded["message"].startswith(
            f"Service {NS}/{NAME} already exists and is not controlled by this ModelDeployment"
        )
        # Nothing applied at all: not the Service, and not the Deployment after it.
        assert [
            r for r in env.fake.writes() if r.path != f"{MD_PATH}/status" and "events" not in r.path
        ] == []
        assert env.fake.objects[f"{SERVICES}/{NAME}"] == before
        assert warnings(env) == ["ChildConflict"]

        # The user removes theirs: after the backoff Gantry creates its own.
        del env.fake.objects[f"{SERVICES}/{NAME}"]
        outcome = await env.reconcile(at=at(BASE_DELAY))
        assert f"{DEPLOYMENTS}/{NAME}" in env.fake.objects
        owners = env.fake.objects[f"{SERVICES}/{NAME}"]["metadata"]["ownerReferences"]
        assert owners[0]["uid"] == env.fake.objects[MD_PATH]["metadata"]["uid"]


async def test_child_of_another_modeldeployment_is_named_in_the_conflict() -> None:
    async with reconcile_env() as env:
        theirs = child("v1", "Service", NAME, owner_uid="uid-of-another")
        theirs["metadata"]["ownerReferences"][0]["name"] = "other"
        env.fake.put(f"{SERVICES}/{NAME}", theirs)

        outcome = await env.reconcile(at=at(0))

        assert outcome.status is not None
        message = condition(outcome.status, "Degraded")["message"]
        assert "is controlled by ModelDeployment other" in message


async def test_steady_reconcile_looks_up_no_child_by_name() -> None:
    async with reconcile_env() as env:
        await env.reconcile()
        settle(env.fake, NAME)
        await env.reconcile()
        first = len(env.fake.log)

        await env.reconcile()

        gets = [r.path for r in env.fake.log[first:] if r.method == "GET"]
        single = [p for p in gets if p.startswith((f"{SERVICES}/", f"{DEPLOYMENTS}/"))]
        assert single == [], "owned children come from the lists, not a GET each"


async def test_unknown_gate_value_is_removed_with_a_warning_and_never_acted_on() -> None:
    gate = "serving.gantry.dev/promote"
    async with reconcile_env(md(annotations={gate: "banana"})) as env:
        outcome = await env.reconcile()

        assert outcome.consumed_annotations == (gate,)
        (event,) = [e for e in outcome.events if e.reason == "InvalidAnnotation"]
        assert event.type == "Warning"
        assert "'banana'" in event.message
        assert "true or step" in event.message
        assert env.fake.objects[MD_PATH]["metadata"]["annotations"] == {}
