"""What the operator intends to run: the bridge from rollout decisions to renderers.

A plan is computed by pure code (the rollout state machine) and consumed by pure
code (the renderers); neither needs to know how the other decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gantry.api.spec import API_VERSION, KIND


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns every child (for ownerReferences and labels)."""

    name: str
    namespace: str
    uid: str
    generation: int = 0
    api_version: str = API_VERSION
    kind: str = KIND


class Role(StrEnum):
    STABLE = "stable"
    CANARY = "canary"


@dataclass(frozen=True)
class DeploymentPlan:
    """One Deployment the operator wants.

    Attributes:
        name: Deployment name, already fitted to Kubernetes' limits
            (``gantry.render.names.deployment_name``). Labels, selectors and every
            lookup use it verbatim, never a re-derived form, so they always join.
        revision: Revision of the pod template it runs.
        role: stable or canary (a Deployment label only: changing it never restarts pods).
        replicas: Desired replicas, or None when an autoscaler owns the count.
        apply_template: False for a stable Deployment of an older revision during a
            canary: the spec no longer describes it, so only its scale is touched.
    """

    name: str
    revision: str
    role: Role
    replicas: int | None
    apply_template: bool = True


@dataclass(frozen=True)
class ServingPlan:
    """Every serving child the operator wants right now.

    Attributes:
        deployments: Deployments to keep; any other Deployment owned by the
            ModelDeployment is deleted.
        autoscale_target: Deployment the HorizontalPodAutoscaler scales, or None for
            no autoscaler (fixed replicas, or frozen during a canary).
        canary_weight: Percent of traffic for the canary on an HTTPRoute (gatewayAPI).
    """

    deployments: tuple[DeploymentPlan, ...]
    autoscale_target: str | None = None
    canary_weight: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stable(self) -> DeploymentPlan | None:
        return next((d for d in self.deployments if d.role is Role.STABLE), None)

    @property
    def canary(self) -> DeploymentPlan | None:
        return next((d for d in self.deployments if d.role is Role.CANARY), None)
