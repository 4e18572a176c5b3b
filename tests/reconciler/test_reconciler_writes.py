"""Writes only on change: an unchanged child is not applied again."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.kube.client import APPLY_CONTENT_TYPE
from gantry.metrics import OperatorMetrics
from gantry.reconciler import APPLIED_ANNOTATION, Reconciler, Settings
from tests.reconciler.reconcile_env import (
    DEPLOYMENTS,
    MD_PATH,
    NAME,
    SERVICES,
    Env,
    md,
    reconcile_env,
    settle,
    spec,
)

pytestmark = pytest.mark.timeout(30)


def applies(env: Env, since: int) -> list[str]:
    return [r.path for r in env.fake.log[since:] if r.content_type == APPLY_CONTENT_TYPE]


async def steady(env: Env) -> int:
    """Reconcile until the children exist and the Deployment is settled; the log length."""
    await env.reconcile()
    settle(env.fake, NAME)
    await env.reconcile()
    return len(env.fake.log)


COLLECTIONS = {
    "services",
    "deployments",
    "pods",
    "horizontalpodautoscalers",
    "poddisruptionbudgets",
    "httproutes",
    "scaledobjects",
}


@pytest.mark.parametrize(
    ("spec_", "kinds"),
    [
        pytest.param(spec(), {"services", "deployments"}, id="service-and-deployment"),
        pytest.param(
            spec(replicas=3),
            {"services", "deployments", "poddisruptionbudgets"},
            id="with-pdb",
        ),
        pytest.param(
            spec(scaling={"minReplicas": 2, "maxReplicas": 4}),
            {"services", "deployments", "poddisruptionbudgets", "horizontalpodautoscalers"},
            id="with-hpa-and-pdb",
        ),
    ],
)
async def test_an_unchanged_child_is_not_applied_again(
    spec_: dict[str, Any], kinds: set[str]
) -> None:
    async with reconcile_env(md(spec_)) as env:
        since = await steady(env)
        applied = {
            r.path.split("/")[-2]
            for r in env.fake.log[:since]
            if r.content_type == APPLY_CONTENT_TYPE
        }
        assert applied == kinds
        await env.reconcile()
        await env.reconcile()
        assert applies(env, since) == []
        # Nothing is looked up by name either: every child came from the owned lists.
        gets = [r.path for r in env.fake.log[since:] if r.method == "GET" and r.path != MD_PATH]
        assert [p for p in gets if p.rsplit("/", 1)[1] not in COLLECTIONS] == [], gets
        stamp = env.fake.objects[f"{SERVICES}/{NAME}"]["metadata"]["annotations"]
        assert len(stamp[APPLIED_ANNOTATION]) == 16


async def test_a_spec_change_applies_what_changed_only() -> None:
    async with reconcile_env() as env:
        since = await steady(env)
        env.fake.objects[MD_PATH]["spec"] = spec(runtime={"ports": {"http": 9000}})
        await env.reconcile()
        # The ports live in both the Service and the pod template.
        assert sorted(applies(env, since)) == sorted(
            [f"{SERVICES}/{NAME}", f"{DEPLOYMENTS}/{NAME}"]
        )


async def test_a_child_edited_by_someone_else_is_applied_again() -> None:
    async with reconcile_env() as env:
        since = await steady(env)
        dep = env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]
        # What a kubectl edit of its spec does: the spec changes, the generation bumps.
        dep["spec"]["minReadySeconds"] = 99
        dep["metadata"]["generation"] += 1
        await env.reconcile()
        assert applies(env, since) == [f"{DEPLOYMENTS}/{NAME}"]


async def test_a_resize_by_someone_else_is_not_undone_by_an_apply() -> None:
    async with reconcile_env() as env:
        since = await steady(env)
        dep = env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]
        # What /scale (an autoscaler, kubectl scale) does: replicas change, generation bumps.
        dep["spec"]["replicas"] = int(dep["spec"].get("replicas", 1)) + 2
        dep["metadata"]["generation"] += 1
        await env.reconcile()
        assert applies(env, since) == []


async def test_a_restarted_operator_applies_each_child_once() -> None:
    async with reconcile_env() as env:
        await steady(env)
        env.reconciler = Reconciler(env.kube, Settings(), OperatorMetrics())
        since = len(env.fake.log)
        await env.reconcile()
        assert sorted(applies(env, since)) == sorted(
            [f"{SERVICES}/{NAME}", f"{DEPLOYMENTS}/{NAME}"]
        )
        since = len(env.fake.log)
        await env.reconcile()
        assert applies(env, since) == []
