"""Every child a ModelDeployment wants, in the order to apply them.

Order, and why: the main Service first (clients can resolve it while pods
start); per-revision Services next, so the Deployments' pods are selectable as
soon as they exist; then the Deployments; then the HTTPRoute, after its
backends, so a failed Deployment apply never shifts weight to a revision that
is not there; then the autoscaler (its target must exist) and the PDB. The
autoscaler is an HPA (``scaling.provider: hpa``), a KEDA ScaledObject (``keda``)
or nothing (``builtin``: the operator writes ``/scale`` itself).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gantry.api.plan import Owner, ServingPlan
from gantry.api.spec import ModelDeploymentSpec, ScalingProvider
from gantry.render.deployment import render_deployment
from gantry.render.hpa import render_hpa
from gantry.render.httproute import render_httproute, uses_gateway_api
from gantry.render.keda import render_scaled_object
from gantry.render.model_source import DEFAULT_FETCHERS, FetcherImages
from gantry.render.pdb import render_pdb
from gantry.render.service import render_revision_service, render_service


class ChildKind(NamedTuple):
    """A kind of object the operator may own (for listing and garbage collection)."""

    api_version: str
    kind: str
    plural: str


# Every kind render_children may return; children of these kinds owned by the
# ModelDeployment but no longer rendered are the ones to delete.
CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("v1", "Service", "services"),
    ChildKind("apps/v1", "Deployment", "deployments"),
    ChildKind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
    ChildKind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ChildKind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects"),
)


def render_children(
    owner: Owner,
    spec: ModelDeploymentSpec,
    plan: ServingPlan,
    *,
    fetchers: FetcherImages = DEFAULT_FETCHERS,
) -> list[dict[str, Any]]:
    """Every desired child of ``owner`` for ``plan``, in apply order.

    Deployments with ``apply_template=False`` are left out: only their scale may
    change (see :func:`gantry.render.deployment.render_scale`), and applying a
    partial manifest would strip their pod template.

    Args:
        owner: The owning ModelDeployment.
        spec: Its current spec.
        plan: What the rollout decided to run.
        fetchers: Images of the model fetch init container.
    """
    gateway = uses_gateway_api(spec)
    children: list[dict[str, Any]] = [render_service(owner, spec)]
    if gateway:
        children += [render_revision_service(owner, spec, d) for d in plan.deployments]
    children += [
        render_deployment(owner, spec, d, fetchers=fetchers)
        for d in plan.deployments
        if d.apply_template
    ]
    if gateway and plan.deployments:
        children.append(render_httproute(owner, spec, plan))
    if plan.autoscale_target is not None:
        provider = spec.scaling.effective_provider
        if provider is ScalingProvider.HPA:
            children.append(render_hpa(owner, spec, plan.autoscale_target))
        elif provider is ScalingProvider.KEDA:
            children.append(render_scaled_object(owner, spec, plan.autoscale_target))
    if (pdb := render_pdb(owner, spec)) is not None:
        children.append(pdb)
    return children
