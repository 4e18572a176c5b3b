"""An object deleted without its DELETED event reaching the operator is forgotten, not revived.

kopf stops watching a namespace that is being deleted, so the objects in it may
vanish from the server while the operator's store still holds them. The fake
API server is used because a real one cannot be made to withhold an event.
"""

from __future__ import annotations

from gantry.kube import resources as kinds
from tests.handlers.handler_env import KEY, handler_env
from tests.health.kserve_fake import Fake
from tests.reconciler.fake_apiserver import FakeApiServer
from tests.reconciler.reconcile_env import DEPLOYMENTS, MD_PATH, NAME


def children(fake: FakeApiServer) -> list[str]:
    return sorted(p for p in fake.objects if p != MD_PATH and "/events/" not in p)


async def test_a_status_write_that_finds_the_object_gone_forgets_it(fake: Fake) -> None:
    async with handler_env(fake) as env:
        await env.kopf_sees("ADDED")
        await env.settle()
        del env.fake.objects[MD_PATH]  # deleted; no DELETED event arrives
        env.play_controllers(ready=False)  # something to report: the status must be written

        env.queue.add(KEY)
        await env.run_queued()

        assert env.memo["bodies"].get(*KEY) is None
        assert KEY not in env.memo["seen"]
        assert env.queue.due_in(KEY) is None  # no timer, no retry


async def test_children_are_not_recreated_for_an_object_that_is_gone(fake: Fake) -> None:
    async with handler_env(fake) as env:
        await env.kopf_sees("ADDED")
        await env.settle()
        del env.fake.objects[MD_PATH]
        # The garbage collector removes the children; the cache sees the Deployment go.
        del env.fake.objects[f"{DEPLOYMENTS}/{NAME}"]
        await env.kube.delete(kinds.DEPLOYMENT, NAME, "ml")
        before = children(env.fake)

        env.queue.add(KEY)
        await env.run_queued()

        assert children(env.fake) == before  # nothing applied for the deleted owner
        assert f"{DEPLOYMENTS}/{NAME}" not in env.fake.objects
        assert env.memo["bodies"].get(*KEY) is None
