"""Shared builders for the renderer tests: specs, owners and plans.

Imported by name (pytest puts this rootless test directory on sys.path).
"""

from __future__ import annotations

import copy
from typing import Any

from gantry.api.plan import DeploymentPlan, Owner, Role, ServingPlan
from gantry.api.spec import ModelDeploymentSpec
from gantry.render.names import deployment_name
from gantry.render.revision import revision

BASE: dict[str, Any] = {
    "model": {"name": "resnet50", "uri": "s3://models/resnet50", "version": "3"},
}
OWNER = Owner(
    name="resnet", namespace="ml", uid="1b4e28ba-2fa1-11d2-883f-0016d3cca427", generation=1
)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merges ``override`` into a copy of ``base`` (dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def build_spec(**sections: Any) -> ModelDeploymentSpec:
    """A valid spec: BASE deep-merged with ``sections`` (wire names, e.g. ``resources={...}``)."""
    return ModelDeploymentSpec.model_validate(merge(BASE, sections))


def stable_plan(
    spec: ModelDeploymentSpec, *, owner: Owner = OWNER, replicas: int | None = 2
) -> DeploymentPlan:
    """The first revision's Deployment, named by the function the operator names it with."""
    rev = revision(spec)
    return DeploymentPlan(
        name=deployment_name(owner.name), revision=rev, role=Role.STABLE, replicas=replicas
    )


def canary_deployment(
    spec: ModelDeploymentSpec, *, owner: Owner = OWNER, replicas: int | None = 1
) -> DeploymentPlan:
    """A later revision's Deployment (a canary), named as the operator names it."""
    rev = revision(spec)
    return DeploymentPlan(
        name=deployment_name(owner.name, rev), revision=rev, role=Role.CANARY, replicas=replicas
    )


def serving_plan(
    spec: ModelDeploymentSpec, *, owner: Owner = OWNER, replicas: int | None = 2
) -> ServingPlan:
    stable = stable_plan(spec, owner=owner, replicas=replicas)
    target = stable.name if spec.scaling.autoscaled else None
    return ServingPlan(deployments=(stable,), autoscale_target=target)


def walk(node: Any) -> Any:
    """Yields every dict and list inside ``node`` (``node`` included)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        yield node
        for value in node:
            yield from walk(value)
