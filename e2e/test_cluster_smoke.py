"""Smoke tests: the cluster under test schedules GPUs, collects garbage and validates.

They run against the local KWOK control plane (``python -m e2e.cluster up``) or any cluster in
``$KUBECONFIG``; GPU tests skip when the cluster has no node advertising the resource.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from e2e.cluster import Kubectl, KubectlError, poll

if TYPE_CHECKING:
    from e2e.conftest import ClusterInfo

PINNED_VERSION = "v1.36.3"
GPU = "nvidia.com/gpu"
MIG_1G = "nvidia.com/mig-1g.10gb"
# Never runs on KWOK nodes (kwok fakes container status); a real node can pull and run it.
IMAGE = "registry.k8s.io/pause:3.10"
GPU_TOLERATION = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}


def _deployment(name: str, limits: dict[str, str], replicas: int = 1) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": IMAGE}
    if limits:
        # Extended resources are integers set in limits; requests default to the limits.
        container["resources"] = {"limits": limits}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [container],
                    "tolerations": [GPU_TOLERATION],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        },
    }


def _nodes_with(kubectl: Kubectl, resource: str) -> dict[str, int]:
    """Node name -> allocatable count of ``resource``, for nodes that have any."""
    found = {}
    for node in kubectl.json("get", "nodes")["items"]:
        count = int(node["status"].get("allocatable", {}).get(resource, "0"))
        if count > 0:
            found[node["metadata"]["name"]] = count
    return found


@pytest.fixture(scope="module")
def gpu_nodes(kubectl: Kubectl) -> dict[str, int]:
    nodes = _nodes_with(kubectl, GPU)
    if not nodes:
        pytest.skip(f"the cluster has no node with allocatable {GPU}")
    return nodes


@pytest.fixture(scope="module")
def mig_nodes(kubectl: Kubectl) -> dict[str, int]:
    nodes = _nodes_with(kubectl, MIG_1G)
    if not nodes:
        pytest.skip(f"the cluster has no node with allocatable {MIG_1G} (MIG mixed strategy)")
    return nodes


def _pods(kubectl: Kubectl, namespace: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "pods", "-n", namespace, "-l", f"app={app}")[
        "items"
    ]
    return items


def _wait_available(kubectl: Kubectl, namespace: str, name: str) -> None:
    kubectl(
        "wait",
        "-n",
        namespace,
        "--for=condition=Available",
        f"deployment/{name}",
        "--timeout=90s",
        timeout=120,
    )


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def test_kubectl_and_apiserver_report_pinned_version(
    cluster: ClusterInfo, kubectl: Kubectl
) -> None:
    if not cluster.local:
        pytest.skip("external cluster: its kubectl and server versions are its own")
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == PINNED_VERSION
    assert versions["serverVersion"]["gitVersion"] == PINNED_VERSION


def test_gpu_deployment_lands_on_gpu_node_and_becomes_available(
    kubectl: Kubectl, namespace: str, gpu_nodes: dict[str, int]
) -> None:
    kubectl.apply(_deployment("gpu-one", {GPU: "1"}), namespace=namespace)

    _wait_available(kubectl, namespace, "gpu-one")

    (pod,) = _pods(kubectl, namespace, "gpu-one")
    assert pod["spec"]["nodeName"] in gpu_nodes
    assert pod["status"]["phase"] == "Running"


def test_gpu_request_larger_than_any_node_stays_pending(
    kubectl: Kubectl, namespace: str, gpu_nodes: dict[str, int]
) -> None:
    too_many = max(16, max(gpu_nodes.values()) + 1)
    kubectl.apply(_deployment("gpu-greedy", {GPU: str(too_many)}), namespace=namespace)

    def unschedulable() -> dict[str, Any] | None:
        pods = _pods(kubectl, namespace, "gpu-greedy")
        cond = _condition(pods[0], "PodScheduled") if pods else None
        return cond if cond and cond.get("status") == "False" else None

    cond = poll("PodScheduled=False", unschedulable, timeout=60, interval=1)
    assert cond["reason"] == "Unschedulable"
    assert f"Insufficient {GPU}" in cond["message"]
    (pod,) = _pods(kubectl, namespace, "gpu-greedy")
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")


def test_mig_slice_request_lands_on_mig_node(
    kubectl: Kubectl, namespace: str, mig_nodes: dict[str, int]
) -> None:
    kubectl.apply(_deployment("mig-one", {MIG_1G: "1"}), namespace=namespace)

    _wait_available(kubectl, namespace, "mig-one")

    (pod,) = _pods(kubectl, namespace, "mig-one")
    assert pod["spec"]["nodeName"] in mig_nodes


def _gone(kubectl: Kubectl, *args: str) -> bool:
    """True once ``kubectl get args...`` lists nothing (a NotFound counts as nothing)."""
    result = kubectl("get", *args, "-o", "name", "--ignore-not-found", check=False)
    return result.returncode == 0 and not result.stdout.strip()


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "configmap", "owner", "-n", namespace)
    uid = kubectl.json("get", "configmap", "owner", "-n", namespace)["metadata"]["uid"]
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
    }
    kubectl.apply(dependent, namespace=namespace)

    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")

    poll(
        "the dependent ConfigMap to be collected",
        lambda: _gone(kubectl, "configmap", "dependent", "-n", namespace),
        timeout=60,
        interval=0.5,
    )


def test_deleting_a_deployment_deletes_its_replicasets_and_pods(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(_deployment("plain", {}, replicas=2), namespace=namespace)
    _wait_available(kubectl, namespace, "plain")
    assert not _gone(kubectl, "replicasets", "-n", namespace, "-l", "app=plain")

    kubectl("delete", "deployment", "plain", "-n", namespace, "--cascade=background")

    for kind in ("replicasets", "pods"):
        poll(
            f"{kind} of the deleted Deployment to be collected",
            functools.partial(_gone, kubectl, kind, "-n", namespace, "-l", "app=plain"),
            timeout=60,
            interval=0.5,
        )


_BAD_DEPLOYMENT = _deployment("bad-replicas", {}, replicas=-1)
_BAD_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "bad-port"},
    "spec": {"selector": {"app": "x"}, "ports": [{"port": 70000}]},
}


@pytest.mark.parametrize(
    ("manifest", "field"),
    [(_BAD_DEPLOYMENT, "spec.replicas"), (_BAD_SERVICE, "spec.ports[0].port")],
    ids=["deployment-negative-replicas", "service-port-out-of-range"],
)
def test_api_server_refuses_invalid_objects_naming_the_field(
    kubectl: Kubectl, namespace: str, manifest: dict[str, Any], field: str
) -> None:
    # --validate=false: the refusal must come from the API server's validation, not kubectl's.
    with pytest.raises(KubectlError) as refused:
        kubectl(
            "create", "--validate=false", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest)
        )

    stderr = refused.value.result.stderr
    assert "is invalid" in stderr
    assert field in stderr
    name = manifest["metadata"]["name"]
    assert _gone(kubectl, manifest["kind"].lower(), name, "-n", namespace)
