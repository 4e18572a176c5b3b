"""The baseline: a bare client doing the writes the operator must do, with the operator's code.

For each ModelDeployment, what its first reconcile writes, computed by the operator's own
modules so the baseline cannot drift from them: the plan :func:`gantry.rollout.decide` makes
on an empty status, every child :func:`gantry.render.render_children` renders from it applied
server-side, the ``/scale`` patch of each planned size, then the status
:func:`gantry.status.conditions.build_status` builds and its transition events, written by
:func:`gantry.reconciler.write_outcome`. All of it through :class:`gantry.kube.KubeClient`
(the operator's client class and connection pool), ``concurrency`` CRs at a time. No reads:
the operator is to read from watch-fed caches, so the floor is its writes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from bench.operator.workload import bounded
from gantry.api.plan import Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.api.status import ModelDeploymentStatus
from gantry.kube import ClusterConfig, KubeClient, Manifest
from gantry.kube import resources as kinds
from gantry.reconciler import SCALE_MANAGER, Outcome, Settings, stamp_applied, write_outcome
from gantry.reconciler.facts import service_endpoints
from gantry.render import render_children, revision, selector_string
from gantry.rollout import Observations, decide
from gantry.status.conditions import StatusInputs, Transition, build_status, transitions

FIELD_MANAGER = "gantry"  # the operator's


def _owner(md: Manifest) -> Owner:
    meta = md["metadata"]
    return Owner(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=int(meta.get("generation", 1)),
    )


async def first_reconcile_writes(
    kube: KubeClient, md: Manifest, *, now: datetime | None = None
) -> int:
    """Send the writes of ``md``'s first reconcile; return how many requests that took."""
    owner = _owner(md)
    spec = ModelDeploymentSpec.model_validate(md["spec"])
    now = now or datetime.now(UTC)
    empty = ModelDeploymentStatus()
    decision = decide(
        spec, empty, Observations(), now, desired_revision=revision(spec), md_name=owner.name
    )
    sent = 0
    for child in render_children(owner, spec, decision.plan):
        await kube.apply(stamp_applied(child))  # the reconciler's change-detection stamp
        sent += 1
    for dep in decision.plan.deployments:
        if dep.replicas is not None:
            await kube.scale(
                kinds.DEPLOYMENT, dep.name, owner.namespace, dep.replicas, manager=SCALE_MANAGER
            )
            sent += 1
    status = build_status(
        StatusInputs(
            generation=owner.generation,
            stable=decision.stable,
            canary=decision.canary,
            deployments={},
            # The reconciler's own, with its default cluster domain (status size, not requests).
            endpoints=service_endpoints(owner, spec, Settings.cluster_domain),
            selector=selector_string(owner),
        ),
        empty,
        now,
    )
    events = tuple(Transition(e.type, e.reason, e.message) for e in decision.events)
    events += tuple(transitions(empty, status))
    outcome = Outcome(
        status=status.model_dump(mode="json", by_alias=True),
        events=events,
        consumed_annotations=decision.consumed,
    )
    await write_outcome(kube, md, outcome, now=now)
    return sent + 1 + len(events) + (1 if decision.consumed else 0)


async def run_bare(
    config: ClusterConfig, mds: Sequence[Manifest], concurrency: int, deadline: float
) -> tuple[float, int]:
    """Wall seconds and requests of the first-reconcile writes of every CR in ``mds``."""
    async with KubeClient(config, field_manager=FIELD_MANAGER) as kube:

        async def one(md: Manifest) -> int:
            return await first_reconcile_writes(kube, md)

        started = time.monotonic()
        counts = await bounded(mds, one, concurrency, deadline)
        return time.monotonic() - started, sum(counts)
