"""Builders for status tests: realistic manifests, observations, inputs and conditions.

Manifests look like what the API server returns for apps/v1 Deployments and v1
Pods (fields the functions ignore included), so the tests read like the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gantry.api.status import (
    CanaryPhase,
    CanaryStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    Endpoints,
    ModelDeploymentStatus,
    RevisionStatus,
)
from gantry.status.conditions import Rollout, StatusInputs, build_status
from gantry.status.observe import (
    REVISION_LABEL,
    ROLE_LABEL,
    DeploymentObservation,
    ModelHealth,
    SchedulingObservation,
)

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=30)
T2 = T1 + timedelta(seconds=30)

NAMESPACE = "ml"
MD = "resnet"
OLD = "aaaaaaaaaa"
NEW = "bbbbbbbbbb"
STABLE_DEP = f"{MD}-{OLD}"
CANARY_DEP = f"{MD}-{NEW}"
GENERATION = 3
SELECTOR = "app.kubernetes.io/instance=resnet,app.kubernetes.io/name=resnet"
ENDPOINTS = Endpoints(
    http=f"http://{MD}.{NAMESPACE}.svc.cluster.local:8000",
    grpc=f"{MD}.{NAMESPACE}.svc.cluster.local:8001",
    metrics=f"http://{MD}.{NAMESPACE}.svc.cluster.local:8002/metrics",
)

ORDER = [
    "Ready",
    "Reconciling",
    "Stalled",
    "Available",
    "ModelReady",
    "Scheduled",
    "Progressing",
    "Degraded",
    "ScalingActive",
]

# What kube-scheduler really writes into PodScheduled.message (1.28+ format).
GPU_SHORTAGE = (
    "0/4 nodes are available: 2 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
    "{nvidia.com/gpu: present}, 1 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, "
    "2 Preemption is not helpful for scheduling."
)
MIG_SHORTAGE = (
    "0/3 nodes are available: 3 Insufficient nvidia.com/mig-1g.10gb. preemption: 0/3 nodes "
    "are available: 3 No preemption victims found for incoming pod."
)
MEMORY_SHORTAGE = (
    "0/4 nodes are available: 4 Insufficient memory. preemption: 0/4 nodes are available: "
    "4 No preemption victims found for incoming pod."
)
# Mentions nvidia.com/gpu, but as a taint: not a GPU shortage.
GPU_TAINT = (
    "0/4 nodes are available: 4 node(s) had untolerated taint {nvidia.com/gpu: present}. "
    "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."
)
UNBOUND_PVC = (
    "0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
    "0/4 nodes are available: 4 Preemption is not helpful for scheduling."
)
DEADLINE_MESSAGE = f'ReplicaSet "{STABLE_DEP}-7c9f8d6b5" has timed out progressing.'


# ---------------------------------------------------------------------------- manifests


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment_condition(
    kind: str, status: str, reason: str, message: str, at: datetime = T0
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": _stamp(at),
        "lastTransitionTime": _stamp(at),
    }


def progressing(reason: str, status: str = "True", message: str = "") -> dict[str, Any]:
    """The Progressing condition with the deployment controller's own texts."""
    texts = {
        "NewReplicaSetCreated": f'Created new replica set "{STABLE_DEP}-7c9f8d6b5"',
        "ReplicaSetUpdated": f'ReplicaSet "{STABLE_DEP}-7c9f8d6b5" is progressing.',
        "NewReplicaSetAvailable": (
            f'ReplicaSet "{STABLE_DEP}-7c9f8d6b5" has successfully progressed.'
        ),
        "ProgressDeadlineExceeded": DEADLINE_MESSAGE,
    }
    return deployment_condition("Progressing", status, reason, message or texts[reason])


def available(status: str = "True") -> dict[str, Any]:
    if status == "True":
        return deployment_condition(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
    return deployment_condition(
        "Available",
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
    )


def deployment_manifest(
    name: str = STABLE_DEP,
    *,
    revision: str | None = OLD,
    role: str | None = "stable",
    generation: int | None = 1,
    replicas: int | None = 2,
    status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An apps/v1 Deployment as listed from the API server (``status=None``: no status)."""
    labels = {
        "app.kubernetes.io/name": MD,
        "app.kubernetes.io/instance": MD,
        "app.kubernetes.io/managed-by": "gantry",
    }
    if revision is not None:
        labels[REVISION_LABEL] = revision
    if role is not None:
        labels[ROLE_LABEL] = role
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": f"uid-{name}",
        "resourceVersion": "48213",
        "creationTimestamp": _stamp(T0),
        "labels": labels,
        "annotations": {"deployment.kubernetes.io/revision": "1"},
        "ownerReferences": [
            {
                "apiVersion": "serving.gantry.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": MD,
                "uid": "uid-md",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if generation is not None:
        meta["generation"] = generation
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"serving.gantry.dev/deployment": name}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 3,
        "template": {
            "metadata": {"labels": {"serving.gantry.dev/deployment": name}},
            "spec": {
                "containers": [
                    {
                        "name": "triton",
                        "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    }
                ]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    manifest: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": spec,
    }
    if status is not None:
        manifest["status"] = dict(status)
    return manifest


def pod_manifest(
    name: str = f"{STABLE_DEP}-7c9f8d6b5-x2x9q",
    *,
    scheduled: str | None = "True",
    reason: str | None = None,
    message: str | None = None,
    terminating: bool = False,
    deployment: str = STABLE_DEP,
) -> dict[str, Any]:
    """A v1 Pod; ``scheduled`` is the PodScheduled status (None: no condition yet)."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": f"uid-{name}",
        "labels": {
            "app.kubernetes.io/instance": MD,
            "serving.gantry.dev/deployment": deployment,
            "pod-template-hash": "7c9f8d6b5",
        },
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{deployment}-7c9f8d6b5",
                "uid": "uid-rs",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if terminating:
        meta["deletionTimestamp"] = _stamp(T1)
        meta["deletionGracePeriodSeconds"] = 30
    conditions: list[dict[str, Any]] = []
    if scheduled is not None:
        cond: dict[str, Any] = {
            "type": "PodScheduled",
            "status": scheduled,
            "lastProbeTime": None,
            "lastTransitionTime": _stamp(T0),
        }
        if reason is not None:
            cond["reason"] = reason
        if message is not None:
            cond["message"] = message
        conditions.append(cond)
    if scheduled == "True":
        conditions += [
            {"type": "Initialized", "status": "True", "lastProbeTime": None},
            {"type": "Ready", "status": "True", "lastProbeTime": None},
            {"type": "ContainersReady", "status": "True", "lastProbeTime": None},
        ]
    status: dict[str, Any] = {"phase": "Running" if scheduled == "True" else "Pending"}
    if conditions:
        status["conditions"] = conditions
    if scheduled == "True":
        status["podIP"] = "10.244.1.17"
        status["hostIP"] = "172.18.0.3"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": "gpu-node-1" if scheduled == "True" else None,
            "containers": [{"name": "triton", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        },
        "status": status,
    }


def unschedulable_pod(name: str, message: str, *, terminating: bool = False) -> dict[str, Any]:
    return pod_manifest(
        name, scheduled="False", reason="Unschedulable", message=message, terminating=terminating
    )


# ------------------------------------------------------------------------- observations


def observed(
    name: str = STABLE_DEP,
    *,
    revision: str = OLD,
    role: str = "stable",
    desired: int = 2,
    replicas: int | None = None,
    updated: int | None = None,
    ready: int | None = None,
    available: int | None = None,
    current: bool = True,
    deadline_exceeded: bool = False,
    message: str = "",
    replica_failure_reason: str = "",
    replica_failure: str = "",
) -> DeploymentObservation:
    """A Deployment observation; by default fully rolled out at ``desired``."""
    replicas = desired if replicas is None else replicas
    ready = desired if ready is None else ready
    return DeploymentObservation(
        name=name,
        revision=revision,
        role=role,
        uid=f"uid-{name}",
        desired=desired,
        replicas=replicas,
        updated=replicas if updated is None else updated,
        ready=ready,
        available=ready if available is None else available,
        current=current,
        deadline_exceeded=deadline_exceeded,
        message=message,
        replica_failure_reason=replica_failure_reason,
        replica_failure=replica_failure,
    )


def canary_observed(**kwargs: Any) -> DeploymentObservation:
    defaults: dict[str, Any] = {"revision": NEW, "role": "canary", "desired": 1}
    return observed(CANARY_DEP, **{**defaults, **kwargs})


def model(
    probed: int = 2, ready: int | None = None, reason: str = "", message: str = ""
) -> ModelHealth:
    ready = probed if ready is None else ready
    if not reason:
        reason = "ModelReady" if ready == probed and probed else ""
    if not message and probed and ready == probed:
        message = f"{ready}/{probed} endpoints ready"
    return ModelHealth(probed=probed, ready=ready, reason=reason, message=message)


MODEL_READY = model(2)
NO_RUNNING_PODS = ModelHealth(reason="NoRunningPods", message="no running pod to probe")
MODEL_LOADING = ModelHealth(
    probed=2,
    ready=0,
    reason="ModelLoading",
    message="0/2 endpoints ready; 10.244.1.17:8000 (and 1 more): model resnet version 2 loading",
)
MODEL_LOAD_FAILED = ModelHealth(
    probed=2,
    ready=0,
    reason="ModelLoadFailed",
    message="0/2 endpoints ready; 10.244.1.17:8000 (and 1 more): failed to load 'resnet': "
    "unable to open model.pt",
)

GPU_SCHEDULING = SchedulingObservation(
    pods=3, unschedulable=1, insufficient_gpu=True, message=GPU_SHORTAGE
)
MEMORY_SCHEDULING = SchedulingObservation(pods=3, unschedulable=1, message=MEMORY_SHORTAGE)


def stable_rev(revision: str = OLD, deployment: str = STABLE_DEP, **kw: Any) -> RevisionStatus:
    return RevisionStatus(revision=revision, deployment=deployment, model_version="1", **kw)


def canary_rev(revision: str = NEW, deployment: str = CANARY_DEP, **kw: Any) -> CanaryStatus:
    fields: dict[str, Any] = {
        "model_version": "2",
        "phase": CanaryPhase.PROGRESSING,
        "step_index": 1,
        "weight": 10,
        "actual_weight": 33,
        "stable_replicas": 2,
        "started_at": T0,
    }
    return CanaryStatus(revision=revision, deployment=deployment, **{**fields, **kw})


_UNSET: Any = object()


def inputs(
    *deployments: DeploymentObservation,
    stable: RevisionStatus | None = _UNSET,
    canary: CanaryStatus | None = None,
    generation: int = GENERATION,
    scheduling: SchedulingObservation | None = None,
    model: ModelHealth | None = MODEL_READY,
    rollout: Rollout | None = None,
    failure: str = "",
) -> StatusInputs:
    """Status inputs; with no deployments given, the stable one fully rolled out at 2."""
    deps = deployments if deployments else (observed(),)
    return StatusInputs(
        generation=generation,
        stable=stable_rev() if stable is _UNSET else stable,
        canary=canary,
        deployments={d.name: d for d in deps},
        scheduling=scheduling or SchedulingObservation(pods=sum(d.replicas for d in deps)),
        model=model,
        rollout=rollout or Rollout(),
        failure=failure,
        endpoints=ENDPOINTS,
        selector=SELECTOR,
    )


def fresh_inputs(**kw: Any) -> StatusInputs:
    """The first reconcile of a new ModelDeployment: nothing exists yet."""
    return StatusInputs(
        generation=1,
        stable=stable_rev(),
        canary=None,
        deployments={},
        scheduling=SchedulingObservation(),
        model=NO_RUNNING_PODS,
        **kw,
    )


def failure_inputs(previous: ModelDeploymentStatus, message: str) -> StatusInputs:
    """What the reconciler passes when the spec cannot be read."""
    return StatusInputs(
        generation=GENERATION + 1,
        stable=previous.stable,
        canary=previous.canary,
        deployments={},
        failure=message,
        endpoints=previous.endpoints,
        selector=previous.selector,
    )


# --------------------------------------------------------------------------- statuses

EMPTY = ModelDeploymentStatus()


def build(
    i: StatusInputs, previous: ModelDeploymentStatus = EMPTY, now: datetime = T0
) -> ModelDeploymentStatus:
    return build_status(i, previous, now)


def cond(status: ModelDeploymentStatus, kind: str) -> Condition:
    found = status.condition(ConditionType(kind))
    assert found is not None, f"no {kind} condition in {status.conditions}"
    return found


def summary(status: ModelDeploymentStatus) -> dict[str, tuple[str, str]]:
    """``{type: (status, reason)}`` of every condition."""
    return {c.type: (c.status.value, c.reason) for c in status.conditions}


def condition(
    kind: str,
    status: str,
    reason: str,
    message: str = "",
    *,
    at: datetime = T0,
    generation: int = GENERATION,
) -> Condition:
    return Condition(
        type=kind,
        status=ConditionStatus(status),
        reason=reason,
        message=message,
        last_transition_time=at,
        observed_generation=generation,
    )


def with_conditions(*conditions: Condition) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(observed_generation=GENERATION, conditions=list(conditions))


HEALTHY = {
    "Ready": ("True", "Ready"),
    "Reconciling": ("False", "Reconciled"),
    "Stalled": ("False", "AsExpected"),
    "Available": ("True", "MinimumReplicasAvailable"),
    "ModelReady": ("True", "ModelReady"),
    "Scheduled": ("True", "PodsScheduled"),
    "Progressing": ("False", "RolloutComplete"),
    "Degraded": ("False", "AsExpected"),
    "ScalingActive": ("False", "FixedReplicas"),
}


def healthy_status(**overrides: tuple[str, str] | tuple[str, str, str]) -> ModelDeploymentStatus:
    """A status with every condition healthy, some replaced: ``Ready=("False", "X", "msg")``."""
    table: dict[str, tuple[str, ...]] = {**HEALTHY, **overrides}
    return with_conditions(*(condition(k, *table[k]) for k in ORDER))
