"""``decide``: the rollout state machine's entry point (pure, no I/O, explicit clock).

Which path a call takes, from the spec and the status alone:

============================================  =========================================
state                                         decision
============================================  =========================================
strategy rolling                              stable updated in place to the desired
                                              revision; any canary dropped
no stable yet (first creation)                the desired revision becomes stable
                                              directly, no canary
stable is the desired revision                steady state (a canary in flight is
                                              abandoned: the spec went back to stable)
canary of the desired revision, in flight     one tick of the canary (``canary``)
canary of the desired revision, Aborted       stay rolled back; not retried until the
                                              spec changes (or a resume gate)
anything else (a new revision)                start a canary at step 0, abandoning one
                                              of an older revision; with a stable of 0
                                              replicas there is nothing to protect and
                                              the stable is updated in place
============================================  =========================================

Determinism: the same inputs always give the same decision, so an operator
killed at any point and restarted resumes exactly where the status says.
"""

from __future__ import annotations

from datetime import datetime

from gantry.api.spec import ModelDeploymentSpec, RolloutStrategy
from gantry.api.status import CanaryPhase, CanaryStatus, ModelDeploymentStatus, RevisionStatus
from gantry.render import names
from gantry.rollout import canary as canary_
from gantry.rollout.context import Ctx, steady_plan
from gantry.rollout.types import Decision, Event, Observations, read_gates


def _recorded_names_fitted(status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """``status`` with the Deployment names it records as the operator names them now
    (see :func:`gantry.render.names.recorded_deployment_name`), so the plan, the
    status it writes and the pod labels all carry one name."""
    update: dict[str, RevisionStatus] = {}
    for key, record in (("stable", status.stable), ("canary", status.canary)):
        if record is not None:
            name = names.recorded_deployment_name(record.deployment)
            if name != record.deployment:
                update[key] = record.model_copy(update={"deployment": name})
    return status.model_copy(update=update) if update else status


def _in_flight(canary: CanaryStatus | None) -> bool:
    return canary is not None and canary.phase in (CanaryPhase.PROGRESSING, CanaryPhase.PAUSED)


def _abandon(canary: CanaryStatus | None, why: str) -> list[Event]:
    if canary is None or not _in_flight(canary):
        return []
    text = f"canary {canary.revision} abandoned ({why}); {canary.deployment} is removed"
    return [Event("Normal", "CanaryAbandoned", text)]


def _steady_decision(
    ctx: Ctx, stable: RevisionStatus, canary: CanaryStatus | None, events: list[Event], text: str
) -> Decision:
    return Decision(
        plan=steady_plan(ctx, stable),
        stable=stable,
        canary=canary,
        events=tuple(events),
        consumed=ctx.gates_present,  # no canary in flight: gates are dropped, not kept
        message=text,
    )


def _rolling(ctx: Ctx) -> Decision:
    stable = ctx.status.stable
    events = _abandon(ctx.status.canary, "rollout strategy is rolling")
    if stable is None:
        stable = ctx.new_revision(ctx.first_deployment)
        text = f"revision {ctx.revision} in {stable.deployment}"
        events.append(Event("Normal", "Deploying", text))
    elif stable.revision != ctx.revision:
        text = f"{stable.deployment} updated in place: revision {stable.revision} -> {ctx.revision}"
        events.append(Event("Normal", "RollingUpdate", text))
        stable = ctx.new_revision(stable.deployment)
    text = f"revision {ctx.revision} in {stable.deployment} (rolling updates)"
    return _steady_decision(ctx, stable, None, events, text)


def _steady(ctx: Ctx, stable: RevisionStatus, canary: CanaryStatus | None) -> Decision:
    events = _abandon(canary, f"the spec is back at stable revision {stable.revision}")
    # Keep the record of how this stable was promoted, for display; an aborted canary
    # of another revision is cleared: the spec no longer asks for it.
    keep = canary
    if (
        canary is None
        or canary.phase is not CanaryPhase.PROMOTED
        or canary.revision != stable.revision
    ):
        keep = None
    text = f"revision {stable.revision} is stable in {stable.deployment}"
    return _steady_decision(ctx, stable, keep, events, text)


def _frozen_stable_size(ctx: Ctx, stable: RevisionStatus, previous: CanaryStatus | None) -> int:
    """The stable size to hold during the canary: the one already frozen by a canary
    being replaced, else the Deployment's current replicas (the autoscaler's choice)."""
    if previous is not None and _in_flight(previous):
        return previous.stable_replicas
    seen = ctx.obs.deployments.get(stable.deployment)
    if seen is not None:
        return seen.replicas
    return ctx.spec.desired_replicas()


def _start(ctx: Ctx, stable: RevisionStatus, previous: CanaryStatus | None) -> Decision:
    events = _abandon(previous, f"superseded by revision {ctx.revision}")
    size = _frozen_stable_size(ctx, stable, previous)
    if size <= 0:
        text = (
            f"{stable.deployment} has 0 replicas, nothing to protect: updated in place "
            f"to revision {ctx.revision} without a canary"
        )
        events.append(Event("Normal", "CanarySkipped", text))
        updated = ctx.new_revision(stable.deployment)
        return Decision(
            plan=steady_plan(ctx, updated),
            stable=updated,
            canary=None,
            events=tuple(events),
            message=text,
        )
    return canary_.start(ctx, stable, size, events, verb="started")


def _aborted(ctx: Ctx, stable: RevisionStatus, canary: CanaryStatus) -> Decision:
    gates = read_gates(ctx.obs.annotations)
    if gates.resume:
        size = _frozen_stable_size(ctx, stable, None)
        if size > 0:
            return canary_.start(
                ctx, stable, size, [], verb="retried after a rollback", consumed=gates.present
            )
    text = (
        f"{canary.message}; stable revision {stable.revision} serves. Change the spec, "
        "or set serving.gantry.dev/resume to retry this revision"
    )
    return _steady_decision(ctx, stable, canary, [], text)


def decide(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    observations: Observations,
    now: datetime,
    *,
    desired_revision: str,
    md_name: str,
) -> Decision:
    """Decide what the ModelDeployment's serving children should be now.

    Args:
        spec: The ModelDeployment spec.
        status: Its current status (the rollout's only memory).
        observations: Deployment readiness, gate annotations and, on the second
            call of a tick, the analysis measurement.
        now: The current time; must be timezone-aware.
        desired_revision: Revision of the pod template the spec describes.
        md_name: The ModelDeployment's name; Deployment names are derived from it
            by :func:`gantry.render.names.deployment_name` and nowhere else.

    Returns:
        The decision. It advances the rollout by at most one step.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("decide() needs a timezone-aware now")
    ctx = Ctx(
        spec=spec,
        status=_recorded_names_fitted(status),
        obs=observations,
        now=now,
        revision=desired_revision,
        md_name=md_name,
    )
    if spec.rollout.strategy is RolloutStrategy.ROLLING or spec.rollout.canary is None:
        return _rolling(ctx)
    stable, canary = ctx.status.stable, ctx.status.canary
    if stable is None:
        fresh = ctx.new_revision(ctx.first_deployment)
        event = Event("Normal", "Deploying", f"revision {desired_revision} in {fresh.deployment}")
        return _steady_decision(ctx, fresh, None, [event], f"revision {desired_revision} deploying")
    if stable.revision == desired_revision:
        return _steady(ctx, stable, canary)
    if canary is not None and canary.revision == desired_revision:
        if canary.phase is CanaryPhase.ABORTED:
            return _aborted(ctx, stable, canary)
        if _in_flight(canary):
            return canary_.progress(ctx, stable, canary)
    return _start(ctx, stable, canary)
