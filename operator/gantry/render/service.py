"""ClusterIP Services: one for the whole model, one per revision for Gateway API routing.

The main Service selects the pods of every revision, so with replica-ratio
canaries the traffic split simply follows the pod counts. Per-revision Services
select one Deployment's pods (its ``serving.gantry.dev/deployment`` label, which
stays put while that Deployment rolls in place) and are the HTTPRoute's backends.

A per-revision Service is named ``<main Service>-<revision>``
(:func:`gantry.render.names.revision_service_name`), a name the main Service
can never have: both are applied on every reconcile, and one name for two
different selectors would flip the main Service between them.
"""

from __future__ import annotations

from typing import Any

from gantry.api.plan import DeploymentPlan, Owner
from gantry.api.spec import ModelDeploymentSpec
from gantry.render import labels as lbl
from gantry.render import names
from gantry.render.ownership import child_metadata


def service_name(owner: Owner) -> str:
    """Name of the main Service (a DNS-1035 label derived from the ModelDeployment name)."""
    return names.service_name(owner.name)


def revision_service_name(owner: Owner, plan: DeploymentPlan) -> str:
    """Name of the Service of ``plan``'s Deployment (its revision's HTTPRoute backend)."""
    return names.revision_service_name(owner.name, plan.revision)


def _ports(spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    ports = spec.runtime.ports
    return [
        {
            "name": "http",
            "port": ports.http,
            "targetPort": "http",
            "protocol": "TCP",
            "appProtocol": "http",
        },
        {
            "name": "grpc",
            "port": ports.grpc,
            "targetPort": "grpc",
            "protocol": "TCP",
            # Tells gateways and meshes to speak HTTP/2 cleartext (gRPC) to the pods.
            "appProtocol": "kubernetes.io/h2c",
        },
        {
            "name": "metrics",
            "port": ports.metrics,
            "targetPort": "metrics",
            "protocol": "TCP",
            "appProtocol": "http",
        },
    ]


def render_service(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The Service in front of every revision's pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(owner, service_name(owner), lbl.common_labels(owner)),
        "spec": {
            "type": "ClusterIP",
            "selector": lbl.selector_labels(owner),
            "ports": _ports(spec),
        },
    }


def render_revision_service(
    owner: Owner, spec: ModelDeploymentSpec, plan: DeploymentPlan
) -> dict[str, Any]:
    """The Service in front of one Deployment's pods (an HTTPRoute backend)."""
    labels = {**lbl.common_labels(owner), lbl.REVISION: names.label_value(plan.revision)}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(owner, revision_service_name(owner, plan), labels),
        "spec": {
            "type": "ClusterIP",
            "selector": lbl.deployment_selector(owner, plan),
            "ports": _ports(spec),
        },
    }
