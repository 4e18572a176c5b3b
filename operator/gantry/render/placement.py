"""GPU-aware scheduling: node affinity, tolerations and the GPU resource request.

GPU Feature Discovery labels every GPU node with ``nvidia.com/gpu.product``
(e.g. ``NVIDIA-H100-80GB-HBM3``) and ``nvidia.com/gpu.memory`` (MiB per GPU).
Gantry turns ``resources.gpu.product`` and ``minMemoryMiB`` into *required* node
affinity on those labels and ANDs them into every node selector term the user
wrote (terms are ORed, expressions within a term ANDed, so the GPU condition
must be repeated in each term to hold whichever term matches). Everything else
in ``placement.affinity`` (preferred terms, pod (anti-)affinity) passes through.

GPU nodes are commonly tainted ``nvidia.com/gpu:NoSchedule`` to keep other
workloads off them; GPU and MIG pods tolerate that taint automatically.
"""

from __future__ import annotations

import copy
from typing import Any

from gantry.api.spec import GpuSpec, ModelDeploymentSpec

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
GPU_TAINT_KEY = "nvidia.com/gpu"

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def gpu_expressions(gpu: GpuSpec | None) -> list[dict[str, Any]]:
    """Node selector requirements on GFD labels that a node's GPUs must meet."""
    if gpu is None:
        return []
    expressions: list[dict[str, Any]] = []
    if gpu.product:
        expressions.append({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [gpu.product]})
    if gpu.min_memory_mi_b is not None:
        # Gt is strict and compares integers: memory > min - 1 means memory >= min.
        expressions.append(
            {"key": GPU_MEMORY_LABEL, "operator": "Gt", "values": [str(gpu.min_memory_mi_b - 1)]}
        )
    return expressions


def affinity(spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    """The pod's affinity: the user's, with the GPU requirements ANDed into node affinity.

    Returns None when there is nothing to set.
    """
    result: dict[str, Any] = copy.deepcopy(spec.placement.affinity)
    required = gpu_expressions(spec.resources.gpu)
    if required:
        node = result.setdefault("nodeAffinity", {})
        selector = node.setdefault(_REQUIRED, {})
        terms = selector.get("nodeSelectorTerms") or [{}]
        selector["nodeSelectorTerms"] = [
            {
                **term,
                "matchExpressions": [*term.get("matchExpressions", []), *copy.deepcopy(required)],
            }
            for term in terms
        ]
    return result or None


def tolerations(spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    """The GPU taint toleration (for GPU and MIG pods) followed by the user's tolerations."""
    user = copy.deepcopy(spec.placement.tolerations)
    if spec.resources.gpu is None:
        return user
    gpu = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
    return [gpu, *(t for t in user if t != gpu)]


def resources(spec: ModelDeploymentSpec) -> dict[str, Any]:
    """Container resources: requests equal limits, GPUs (or MIG slices) as integers.

    Equal requests and limits give the Guaranteed QoS class, which the kubelet's
    CPU and topology managers need to pin CPUs next to the GPU; extended resources
    such as ``nvidia.com/gpu`` must be whole numbers and may not be overcommitted,
    so their request must equal their limit anyway.
    """
    limits: dict[str, Any] = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    gpu = spec.resources.gpu
    if gpu is not None:
        limits[gpu.resource_name] = gpu.resource_count
    return {"requests": dict(limits), "limits": limits}
