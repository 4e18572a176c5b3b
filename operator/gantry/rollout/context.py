"""The inputs of one decision, and the plans built from them (pure).

Plans:

* Steady state (no canary in flight): the stable Deployment alone, with
  ``replicas=None`` and the autoscaler pointed at it when the spec autoscales,
  else ``spec.desired_replicas()``. Its template is applied only when its
  revision is the desired one (after a rollback the spec describes the failed
  revision, so the stable's template must be left alone).
* Canary in flight: the stable Deployment of the old revision, scale only
  (``apply_template=False``) at the size frozen at canary start, autoscaling
  off (``autoscale_target=None``: an HPA reacting to the canary's load shift
  would fight the step sizes); the canary sized from its weight (``sizing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gantry.api.plan import DeploymentPlan, Role, ServingPlan
from gantry.api.spec import CanarySpec, CanaryStep, ModelDeploymentSpec, TrafficRoutingType
from gantry.api.status import CanaryStatus, ModelDeploymentStatus, RevisionStatus
from gantry.render import names
from gantry.rollout import sizing
from gantry.rollout.types import Observations, read_gates


@dataclass(frozen=True)
class Ctx:
    """Everything one ``decide`` call reads."""

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    obs: Observations
    now: datetime
    revision: str
    md_name: str

    @property
    def canary_spec(self) -> CanarySpec:
        # decide() only takes the canary path when the spec has a canary section.
        assert self.spec.rollout.canary is not None
        return self.spec.rollout.canary

    @property
    def steps(self) -> Sequence[CanaryStep]:
        return self.canary_spec.steps

    @property
    def routing(self) -> TrafficRoutingType:
        return self.canary_spec.traffic_routing.type

    @property
    def first_deployment(self) -> str:
        """The Deployment of the ModelDeployment's first revision (fitted, see ``names``)."""
        return names.deployment_name(self.md_name)

    @property
    def canary_deployment(self) -> str:
        """The Deployment of the desired revision when it comes as a canary."""
        return names.deployment_name(self.md_name, self.revision)

    @property
    def gates_present(self) -> tuple[str, ...]:
        return read_gates(self.obs.annotations).present

    def serving(self, deployment: str) -> int:
        """Pods of a Deployment able to take traffic (0 when it does not exist)."""
        seen = self.obs.deployments.get(deployment)
        return seen.serving if seen is not None else 0

    def new_revision(self, deployment: str) -> RevisionStatus:
        """The status record of the desired revision running in ``deployment``."""
        return RevisionStatus(
            revision=self.revision,
            deployment=deployment,
            model_version=self.spec.model.version,
            image=self.spec.runtime.image,
        )


def steady_plan(ctx: Ctx, stable: RevisionStatus) -> ServingPlan:
    """The stable Deployment alone, sized by the spec or owned by the autoscaler."""
    autoscaled = ctx.spec.scaling.autoscaled
    deployment = DeploymentPlan(
        name=stable.deployment,
        revision=stable.revision,
        role=Role.STABLE,
        replicas=None if autoscaled else ctx.spec.desired_replicas(),
        apply_template=stable.revision == ctx.revision,
    )
    return ServingPlan(
        deployments=(deployment,), autoscale_target=deployment.name if autoscaled else None
    )


@dataclass(frozen=True)
class CanaryShape:
    """Sizes and weights of a canary in flight.

    Attributes:
        split: Replicas of both Deployments.
        serving: Canary pods able to take traffic now.
        ready: The canary has every pod its weight needs.
        actual_weight: Replica routing: the pod-ratio weight of the planned sizes.
            gatewayAPI: the weight the route carries (see ``sizing.route_weight``).
    """

    split: sizing.Split
    serving: int
    ready: bool
    actual_weight: int


def shape(ctx: Ctx, canary: CanaryStatus) -> CanaryShape:
    """The canary's sizes and effective weight for its current weight."""
    n = canary.stable_replicas
    serving = ctx.serving(canary.deployment)
    split = sizing.split(ctx.routing, n, canary.weight, canary_available=serving)
    ready = serving >= split.canary
    if ctx.routing is TrafficRoutingType.GATEWAY_API:
        actual = sizing.route_weight(
            canary.weight,
            previous=canary.actual_weight,
            canary_available=serving,
            canary_desired=split.canary,
            stable=n,
        )
    else:
        actual = sizing.effective_weight(split.stable, split.canary)
    return CanaryShape(split=split, serving=serving, ready=ready, actual_weight=actual)


def canary_plan(
    ctx: Ctx, stable: RevisionStatus, canary: CanaryStatus, cs: CanaryShape
) -> ServingPlan:
    """The stable (scale only, frozen) and the canary sized from its weight."""
    gateway = ctx.routing is TrafficRoutingType.GATEWAY_API
    return ServingPlan(
        deployments=(
            DeploymentPlan(
                name=stable.deployment,
                revision=stable.revision,
                role=Role.STABLE,
                replicas=cs.split.stable,
                apply_template=stable.revision == ctx.revision,
            ),
            DeploymentPlan(
                name=canary.deployment,
                revision=canary.revision,
                role=Role.CANARY,
                replicas=cs.split.canary,
            ),
        ),
        autoscale_target=None,
        canary_weight=cs.actual_weight if gateway else 0,
    )
