"""A local Kubernetes control plane for tests and demos (etcd + kube-apiserver +
kube-controller-manager + kube-scheduler + kwok fake GPU nodes), built from pinned Go modules.

CLI: ``python -m e2e.cluster up|down|status|env``. API::

    from e2e.cluster import Cluster
    cluster = Cluster.up(repo_root)      # reuses a healthy running cluster
    cluster.kubectl("get", "nodes")
    cluster.down()
"""

from e2e.cluster.api import ApiError, Kubectl, KubectlError
from e2e.cluster.cluster import REPO_ROOT, Cluster, ClusterError, build_binaries
from e2e.cluster.wait import WaitTimeoutError, poll

__all__ = [
    "REPO_ROOT",
    "ApiError",
    "Cluster",
    "ClusterError",
    "Kubectl",
    "KubectlError",
    "WaitTimeoutError",
    "build_binaries",
    "poll",
]
