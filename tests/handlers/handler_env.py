"""The real handler path (gantry.handlers.modeldeployment) on the fake API server.

``handler_env`` builds the memo the way ``startup()`` does, with the fake's
transport under a :class:`CachedKubeClient`, and plays the parts around the
operator that a real cluster would:

* kopf's ModelDeployment watch: :meth:`HandlerEnv.kopf_sees` passes the
  object as the fake holds it to ``track()``;
* the Deployment controller and the kubelet: :meth:`HandlerEnv.play_controllers`
  writes Deployment status and Pods through the fake, so the operator's watches
  see them as events;
* Triton in each pod: the scripted KServe v2 server of tests/health/kserve_fake.py
  (the ``fake`` fixture) on loopback: the pods' podIP is 127.0.0.1 and the spec's
  HTTP port is its port. The request lists are about the API server; a real Triton
  (e2e/test_request_counts.py uses them) would add ~20 s of startup to each test
  for the same HTTP answers.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import kopf

from gantry.handlers import modeldeployment as handlers
from gantry.handlers.queue import WorkQueue
from gantry.kube import KubeClient
from gantry.kube.cached import CachedKubeClient
from gantry.metrics import OperatorMetrics
from gantry.reconciler import Settings
from tests.health.kserve_fake import Fake, Script
from tests.reconciler.fake_apiserver import FakeApiServer, Obj, Request
from tests.reconciler.reconcile_env import DEPLOYMENTS, MD_PATH, NAME, NS, PODS, md, spec

KEY = (NS, NAME)
MANAGED = "app.kubernetes.io/managed-by"


@dataclass
class HandlerEnv:
    fake: FakeApiServer
    memo: kopf.Memo
    kube: CachedKubeClient
    user: KubeClient  # a person with kubectl
    triton: Script

    @property
    def queue(self) -> WorkQueue[tuple[str, str]]:
        queue: WorkQueue[tuple[str, str]] = self.memo["queue"]
        return queue

    async def kopf_sees(self, event: str = "MODIFIED") -> None:
        """kopf's watch delivers the ModelDeployment as the server holds it now."""
        obj = copy.deepcopy(self.fake.objects[MD_PATH])
        # kopf's decorator types it as a handler kopf calls with every keyword; it is
        # the plain function, which takes what it uses.
        track = cast(Callable[..., Awaitable[None]], handlers.track)
        await track(event={"type": event, "object": obj}, memo=self.memo)

    async def run_queued(self, *, most: int = 20) -> int:
        """Reconcile every key the queue holds now, as a worker would; how many ran."""
        ran = 0
        while len(self.queue) and ran < most:
            async with asyncio.timeout(10):
                key = await self.queue.get()
            try:
                await handlers._reconcile(key, self.memo)
            finally:
                self.queue.done(key)
            ran += 1
        return ran

    def play_controllers(self, *, ready: bool = True) -> None:
        """The Deployment controller and kubelet: every replica's pod exists, Running if ready."""
        for path, dep in list(self.fake.objects.items()):
            if not path.startswith(f"{DEPLOYMENTS}/"):
                continue
            name = dep["metadata"]["name"]
            n = int(dep["spec"].get("replicas", 1))
            template = dep["spec"]["template"]
            for i in range(n):
                self._pod(f"{name}-{i}", template, ready=ready)
            status = {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": n if ready else 0,
                "availableReplicas": n if ready else 0,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if ready else "False",
                        "reason": "MinimumReplicasAvailable",
                    },
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            }
            if dep.get("status") != status:
                self.fake.put(path, {**dep, "status": status})

    def _pod(self, name: str, template: Obj, *, ready: bool) -> None:
        path = f"{PODS}/{name}"
        meta = {"name": name, "namespace": NS, "labels": dict(template["metadata"]["labels"])}
        status: Obj = {"phase": "Pending", "conditions": []}
        if ready:
            status = {
                "phase": "Running",
                "podIP": "127.0.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
            }
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
        pod["spec"] = copy.deepcopy(template["spec"])
        pod["status"] = status
        existing = self.fake.objects.get(path)
        if existing is None or existing.get("status") != status:
            if existing is not None:
                pod["metadata"] = existing["metadata"]
            self.fake.put(path, pod)

    async def caught_up(self) -> None:
        """Until every watched store holds what the fake holds (bounded)."""
        async with asyncio.timeout(5):
            while not self._in_step():  # noqa: ASYNC110 - informers announce nothing
                await asyncio.sleep(0.01)

    def _in_step(self) -> bool:
        for res, store in self.kube.stores.items():
            prefix = f"{res.path(NS)}/"
            want = {
                o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                for p, o in self.fake.objects.items()
                if p.startswith(prefix)
                and "/" not in p[len(prefix) :]
                and (o["metadata"].get("labels") or {}).get(MANAGED) == "gantry"
            }
            have = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in store}
            if want != have:
                return False
        return True

    async def settle(self, *, ready: bool = True, passes: int = 6) -> None:
        """Reconcile and play the controllers until a pass changes nothing."""
        for _ in range(passes):
            self.play_controllers(ready=ready)
            await self.caught_up()
            await self.kopf_sees()
            mark = len(self.fake.log)
            self.queue.add(KEY)
            await self.run_queued()
            await self.caught_up()
            if not self.sent_since(mark):
                return
        raise AssertionError(f"not settled after {passes} passes")

    def sent_since(self, mark: int) -> list[Request]:
        return self.fake.log[mark:]


def served_spec(port: int, **overrides: Any) -> Obj:
    """The reconcile tests' rolling spec, its Triton HTTP port the scripted server's."""
    return spec(runtime={"ports": {"http": port}}, **overrides)


@asynccontextmanager
async def handler_env(
    kserve: Fake | None = None,
    *,
    settings: Settings | None = None,
    missing: tuple[str, ...] = (),
    **overrides: Any,
) -> AsyncIterator[HandlerEnv]:
    """The handler path on a fresh fake holding one ModelDeployment (spec ``overrides``).

    Args:
        kserve: The scripted model server every pod answers with (set model-ready);
            without one, pods point at port 8000, where nothing answers.
        settings: The reconciler's.
        missing: API group/versions the fake does not serve (CRDs not installed).
    """
    port = 8000
    script = Script()
    if kserve is not None:
        kserve.script.model_ready = True
        port = int(kserve.endpoint.rsplit(":", 1)[1])
        script = kserve.script
    fake = FakeApiServer()
    for group_version in missing:
        fake.uninstall(group_version)
    fake.put(MD_PATH, md(served_spec(port, **overrides)))
    async with fake.serving() as config:
        # What startup() puts in the memo, on the served fake.
        memo = kopf.Memo(metrics=OperatorMetrics(), namespaces=[NS])
        kube = handlers.build(memo, config, settings=settings or Settings(probe_timeout=0.5))
        await kube.start()
        user = KubeClient(config, field_manager="kubectl")
        try:
            async with asyncio.timeout(5):
                await kube.wait_synced()
                # The CRD watches too: over a socket their lists may land after the others'.
                await asyncio.gather(*(i.wait_synced() for i in kube.all_informers()))
            yield HandlerEnv(fake, memo, kube, user, script)
        finally:
            await user.close()
            await memo["reconciler"].close()  # closes kube too
            memo["queue"].shutdown()
