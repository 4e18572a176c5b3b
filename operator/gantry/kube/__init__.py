"""The one place that talks to the Kubernetes API server."""

from gantry.kube.client import ApiError, KubeClient, Manifest, NotLeaderError
from gantry.kube.config import ClusterConfig, KubeConfigError, load
from gantry.kube.resources import Resource, resource_of

__all__ = [
    "ApiError",
    "ClusterConfig",
    "KubeClient",
    "KubeConfigError",
    "Manifest",
    "NotLeaderError",
    "Resource",
    "load",
    "resource_of",
]
