"""The Gateway API HTTPRoute that splits traffic by exact weights (``trafficRouting: gatewayAPI``).

One rule sends HTTP requests to the per-revision Services: the stable one with
weight ``100 - w`` and the canary with ``w``. A canary Deployment present at
weight 0 stays in the route with weight 0 (no traffic, but no route churn when
the first step sets its weight). gRPC would need a GRPCRoute and is not routed
by weight; it reaches every revision through the main Service.
"""

from __future__ import annotations

from typing import Any

from gantry.api.plan import Owner, ServingPlan
from gantry.api.spec import ModelDeploymentSpec, RolloutStrategy, TrafficRoutingType
from gantry.render import labels as lbl
from gantry.render import names
from gantry.render.ownership import child_metadata
from gantry.render.service import revision_service_name


def httproute_name(owner: Owner) -> str:
    """Name of the HTTPRoute."""
    return names.md_child_name(owner.name)


def uses_gateway_api(spec: ModelDeploymentSpec) -> bool:
    """Whether ``spec`` asks for a canary with exact weights on an HTTPRoute."""
    canary = spec.rollout.canary
    return (
        spec.rollout.strategy is RolloutStrategy.CANARY
        and canary is not None
        and canary.traffic_routing.type is TrafficRoutingType.GATEWAY_API
    )


def _backend(spec: ModelDeploymentSpec, service: str, weight: int) -> dict[str, Any]:
    return {"name": service, "port": spec.runtime.ports.http, "weight": weight}


def render_httproute(owner: Owner, spec: ModelDeploymentSpec, plan: ServingPlan) -> dict[str, Any]:
    """The HTTPRoute for ``plan``: stable at ``100 - canary_weight``, canary at ``canary_weight``.

    Raises:
        ValueError: the spec has no gatewayAPI traffic routing, or the plan has no
            Deployment to route to.
    """
    if not uses_gateway_api(spec) or spec.rollout.canary is None:
        raise ValueError("render_httproute needs a canary rollout with gatewayAPI traffic routing")
    routing = spec.rollout.canary.traffic_routing
    stable, canary = plan.stable, plan.canary
    if stable is None and canary is None:
        raise ValueError("render_httproute needs a stable or canary Deployment in the plan")
    backends: list[dict[str, Any]] = []
    if stable is not None:
        weight = 100 - plan.canary_weight if canary is not None else 100
        backends.append(_backend(spec, revision_service_name(owner, stable), weight))
    if canary is not None:
        weight = plan.canary_weight if stable is not None else 100
        backends.append(_backend(spec, revision_service_name(owner, canary), weight))
    parent_refs: list[dict[str, Any]] = []
    for ref in routing.parent_refs:
        entry: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
        entry["name"] = ref.name
        if ref.namespace:
            entry["namespace"] = ref.namespace
        if ref.section_name:
            entry["sectionName"] = ref.section_name
        parent_refs.append(entry)
    route: dict[str, Any] = {"parentRefs": parent_refs}
    if routing.hostnames:
        route["hostnames"] = list(routing.hostnames)
    route["rules"] = [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends}
    ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": child_metadata(owner, httproute_name(owner), lbl.common_labels(owner)),
        "spec": route,
    }
