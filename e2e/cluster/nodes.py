"""The fake (KWOK) nodes of the local cluster.

Each Node is created with its ``status.capacity``/``allocatable`` already set: the API server
keeps a Node's status on create (kubelets register the same way), and kwok's node-initialize
Stage copies an existing allocatable instead of its default. Labels are the ones NVIDIA GPU
Feature Discovery sets, so the operator's node selection sees what it would on a real cluster.
"""

from __future__ import annotations

from typing import Any

# kwok is started with --manage-nodes-with-annotation-selector for this annotation, so only
# these nodes are simulated.
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
NOT_READY_TAINT = "node.kubernetes.io/not-ready"

# Generous so CPU/memory never limit what the tests schedule; only GPUs are scarce.
_BASE_RESOURCES = {
    "cpu": "64",
    "memory": "512Gi",
    "pods": "110",
    "ephemeral-storage": "1Ti",
}


def kwok_node(
    name: str,
    labels: dict[str, str],
    extra_resources: dict[str, str],
    taints: list[dict[str, str]],
) -> dict[str, Any]:
    """A KWOK-simulated Node with ``labels``, the base resources plus ``extra_resources``
    (capacity and allocatable alike) and ``taints``."""
    resources = {**_BASE_RESOURCES, **extra_resources}
    spec: dict[str, Any] = {"taints": taints} if taints else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {**KWOK_ANNOTATION, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **labels,
            },
        },
        "spec": spec,
        "status": {"capacity": resources, "allocatable": dict(resources)},
    }


def _gpu_node(name: str) -> dict[str, Any]:
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.memory": "81559",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/mig.strategy": "none",
    }
    return kwok_node(name, labels, {"nvidia.com/gpu": "8"}, [GPU_TAINT])


def _mig_node(name: str) -> dict[str, Any]:
    # GFD with the "mixed" strategy exposes each MIG profile as its own resource and labels it.
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
        "nvidia.com/gpu.memory": "81920",
        "nvidia.com/gpu.count": "1",
        "nvidia.com/mig.strategy": "mixed",
        "nvidia.com/mig-1g.10gb.count": "7",
        "nvidia.com/mig-1g.10gb.memory": "9728",
        "nvidia.com/mig-1g.10gb.product": "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb",
    }
    return kwok_node(name, labels, {"nvidia.com/mig-1g.10gb": "7"}, [GPU_TAINT])


def default_nodes() -> list[dict[str, Any]]:
    """gpu-node-0/1 (8x H100 each), mig-node-0 (7x 1g.10gb), cpu-node-0 (no GPU)."""
    return [
        _gpu_node("gpu-node-0"),
        _gpu_node("gpu-node-1"),
        _mig_node("mig-node-0"),
        kwok_node("cpu-node-0", {}, {}, []),
    ]


def is_ready(node: dict[str, Any]) -> bool:
    """Ready=True and the controller-manager has lifted the not-ready taint."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints") or []
    return ready and not any(t.get("key") == NOT_READY_TAINT for t in taints)
