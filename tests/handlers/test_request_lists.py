"""The exact API requests of the real handler path, pinned (as Argo Rollouts' controller tests do).

Each test drives ``gantry.handlers.modeldeployment`` (``track``, ``_reconcile``, the
watch relay ``_child_changed``) with its :class:`CachedKubeClient` on the fake API
server, lets it settle, then pins what one more pass sends. Reads come from the
watch-fed caches: a pass sends writes only, and only the ones the change needs.
Watch requests (the informers' own, opened before the pass) are not part of a pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from gantry.kube import resources as kinds
from tests.handlers.handler_env import KEY, HandlerEnv, handler_env
from tests.health.kserve_fake import Fake
from tests.reconciler.fake_apiserver import Request
from tests.reconciler.reconcile_env import DEPLOYMENTS, EVENTS, MD_PATH, NAME, NS

pytestmark = pytest.mark.timeout(60)

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STATUS = f"PATCH {MD_PATH}/status"


def shape(requests: list[Request]) -> list[str]:
    """Each request as "METHOD path [what]": apply, merge, or the Event's reason."""
    out = []
    for r in requests:
        if r.method == "POST" and r.path == EVENTS:
            out.append(f"POST {r.path} {r.body['reason']}")
        elif r.content_type == APPLY:
            out.append(f"{r} apply")
        else:
            out.append(str(r))
    return out


async def one_pass(env: HandlerEnv) -> list[str]:
    """What one reconcile of the queued key sends (kopf's view of the object first)."""
    await env.kopf_sees()
    mark = len(env.fake.log)
    ran = await env.run_queued()
    assert ran == 1, "exactly one reconcile was due"
    return shape(env.sent_since(mark))


def phase(env: HandlerEnv) -> Any:
    return env.fake.objects[MD_PATH]["status"]["phase"]


async def test_a_steady_pass_of_a_ready_object_sends_nothing(fake: Fake) -> None:
    async with handler_env(fake) as env:
        await env.kopf_sees("ADDED")
        await env.settle()
        assert phase(env) == "Ready"
        reconciled = env.memo["reconciler"].reconciled

        env.queue.add(KEY)  # the resync, or the next probe's timer
        assert await one_pass(env) == []
        assert env.memo["reconciler"].reconciled == reconciled + 1  # the pass did run


async def test_status_only_changes_and_repeated_events_queue_nothing(fake: Fake) -> None:
    async with handler_env(fake) as env:
        await env.kopf_sees("ADDED")
        await env.settle()
        added = env.queue.stats.added
        await env.kopf_sees()  # kopf redelivers the object (our own status write)
        await env.kopf_sees()
        assert env.queue.stats.added == added
        assert len(env.queue) == 0


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"model": {"version": "4"}}, id="model-version"),
        pytest.param({"resources": {"cpu": "2", "memory": "4Gi"}}, id="resources"),
    ],
)
async def test_a_spec_edit_sends_exactly_the_writes_it_needs(
    fake: Fake, edit: dict[str, Any]
) -> None:
    async with handler_env(fake) as env:
        await env.kopf_sees("ADDED")
        await env.settle()
        await env.user.patch_merge(kinds.MODEL_DEPLOYMENT, NAME, NS, {"spec": edit})

        sent = await one_pass(env)

        # The rolling strategy updates the Deployment in place: no reads, no other child.
        assert sent == [
            f"PATCH {DEPLOYMENTS}/{NAME} apply",
            STATUS,
            f"POST {EVENTS} RollingUpdate",
        ]
        assert phase(env) == "Progressing"

        # The Deployment controller rolls the pods: the status says Ready, nothing else is sent.
        env.play_controllers()
        await env.caught_up()
        assert await one_pass(env) == [STATUS, f"POST {EVENTS} Ready"]
        assert phase(env) == "Ready"


async def test_a_pod_turning_ready_sends_only_the_status_and_its_events(fake: Fake) -> None:
    async with handler_env(fake) as env:
        await env.kopf_sees("ADDED")
        await env.settle(ready=False)
        assert phase(env) != "Ready"

        env.play_controllers(ready=True)  # the kubelet: Running, Ready, a podIP
        await env.caught_up()

        # One Event per condition that turned: Ready, Available, ModelReady.
        assert await one_pass(env) == [
            STATUS,
            f"POST {EVENTS} Ready",
            f"POST {EVENTS} MinimumReplicasAvailable",
            f"POST {EVENTS} ModelReady",
        ]
        assert phase(env) == "Ready"
