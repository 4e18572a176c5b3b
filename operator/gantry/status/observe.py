"""Reading what the cluster reports into small typed observations (pure).

The shell lists Deployments and Pods; these functions turn the raw manifests into
facts the condition logic needs, so that logic is testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REVISION_LABEL = "serving.gantry.dev/revision"
ROLE_LABEL = "serving.gantry.dev/role"
GPU_RESOURCE_PREFIX = "nvidia.com/"
# Container waiting reasons that do not clear by themselves: a person must fix the
# image, the config (a missing Secret or ConfigMap) or the crashing program. Plain
# ContainerCreating / PodInitializing are normal life and not listed.
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
        "PreStartHookError",
        "PostStartHookError",
    }
)


@dataclass(frozen=True)
class DeploymentObservation:
    """What one child Deployment reports."""

    name: str
    revision: str = ""
    role: str = ""
    uid: str = ""
    desired: int = 0
    replicas: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    current: bool = True
    deadline_exceeded: bool = False
    message: str = ""
    # The ReplicaSet controller could not create pods (quota, admission, a bad template):
    # the Deployment's ReplicaFailure condition (reason FailedCreate, the server's message).
    replica_failure_reason: str = ""
    replica_failure: str = ""

    @property
    def rolled_out(self) -> bool:
        """The controller has seen the latest template and every replica is updated and ready."""
        return (
            self.current
            and self.updated >= self.desired
            and self.ready >= self.desired
            and self.replicas == self.updated
        )


@dataclass(frozen=True)
class SchedulingObservation:
    """Why pods are (not) placed."""

    pods: int = 0
    unschedulable: int = 0
    insufficient_gpu: bool = False
    message: str = ""
    stuck: int = 0
    stuck_reason: str = ""
    stuck_message: str = ""


@dataclass(frozen=True)
class ModelHealth:
    """Model readiness across the ready pods, from the KServe v2 endpoints."""

    probed: int = 0
    ready: int = 0
    reason: str = ""
    message: str = ""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def _condition(conditions: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any]:
    return next((c for c in conditions if c.get("type") == kind), {})


def observe_deployment(manifest: Mapping[str, Any]) -> DeploymentObservation:
    meta = manifest.get("metadata") or {}
    spec = manifest.get("spec") or {}
    status = manifest.get("status") or {}
    conditions = status.get("conditions", []) or []
    progressing = _condition(conditions, "Progressing")
    failure = _condition(conditions, "ReplicaFailure")
    failing = failure.get("status") == "True"
    labels = meta.get("labels", {}) or {}
    current = _int(status.get("observedGeneration")) >= _int(meta.get("generation"))
    return DeploymentObservation(
        name=str(meta.get("name", "")),
        revision=str(labels.get(REVISION_LABEL, "")),
        role=str(labels.get(ROLE_LABEL, "")),
        uid=str(meta.get("uid", "")),
        desired=_int(spec.get("replicas", 1)),
        replicas=_int(status.get("replicas")),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        current=current,
        # As `kubectl rollout status`: a condition written before the controller saw the
        # latest template (observedGeneration behind) is about an older one, so stale.
        deadline_exceeded=current and progressing.get("reason") == "ProgressDeadlineExceeded",
        message=str(progressing.get("message", "")),
        replica_failure_reason=str(failure.get("reason") or "ReplicaFailure") if failing else "",
        replica_failure=str(failure.get("message", "")) if failing else "",
    )


def _stuck_container(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of the first container (init containers first) stuck waiting."""
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason", ""))
            if reason in STUCK_REASONS:
                text = f"pod {name} container {cs.get('name', '')}: {reason}"
                if waiting.get("message"):
                    text += f": {waiting['message']}"
                return reason, text
    return None


def observe_pods(pods: Iterable[Mapping[str, Any]]) -> SchedulingObservation:
    """Summarize placement and start-up: the scheduler's message for the first unplaceable
    pod, and the kubelet's for the first container stuck waiting (bad image, missing config).
    """
    total = unschedulable = stuck = 0
    insufficient_gpu = False
    message = stuck_reason = stuck_message = ""
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        total += 1
        if (trouble := _stuck_container(pod)) is not None:
            stuck += 1
            if not stuck_reason:
                stuck_reason, stuck_message = trouble
        cond = _condition((pod.get("status") or {}).get("conditions") or [], "PodScheduled")
        if cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
            unschedulable += 1
            text = str(cond.get("message", ""))
            gpu = f"Insufficient {GPU_RESOURCE_PREFIX}" in text
            # The GPU shortage is the message users need most; otherwise the first one.
            if (gpu and not insufficient_gpu) or not message:
                message = text
            insufficient_gpu = insufficient_gpu or gpu
    return SchedulingObservation(
        pods=total,
        unschedulable=unschedulable,
        insufficient_gpu=insufficient_gpu,
        message=message,
        stuck=stuck,
        stuck_reason=stuck_reason,
        stuck_message=stuck_message,
    )
