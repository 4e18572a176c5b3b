"""The resource kinds Gantry reads or writes, and their REST paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        return "/".join(parts)


DEPLOYMENT = Resource("apps/v1", "Deployment", "deployments")
SERVICE = Resource("v1", "Service", "services")
POD = Resource("v1", "Pod", "pods")
EVENT = Resource("v1", "Event", "events")
NAMESPACE = Resource("v1", "Namespace", "namespaces", namespaced=False)
HPA = Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
PDB = Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
HTTPROUTE = Resource("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
SCALEDOBJECT = Resource("keda.sh/v1alpha1", "ScaledObject", "scaledobjects")
LEASE = Resource("coordination.k8s.io/v1", "Lease", "leases")
CRD = Resource(
    "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False
)
MODEL_DEPLOYMENT = Resource("serving.gantry.dev/v1alpha1", "ModelDeployment", "modeldeployments")

KNOWN: dict[tuple[str, str], Resource] = {
    (r.api_version, r.kind): r
    for r in (
        DEPLOYMENT,
        SERVICE,
        POD,
        EVENT,
        NAMESPACE,
        HPA,
        PDB,
        HTTPROUTE,
        SCALEDOBJECT,
        LEASE,
        CRD,
        MODEL_DEPLOYMENT,
    )
}


def resource_of(manifest: dict[str, object]) -> Resource:
    """The Resource a manifest describes.

    Raises:
        KeyError: an apiVersion/kind Gantry does not manage.
    """
    key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
    try:
        return KNOWN[key]
    except KeyError:
        raise KeyError(f"gantry does not manage {key[1]} in {key[0]}") from None
