"""Raw Deployment and Pod manifests into observations, one table row per situation."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.status.observe import (
    DeploymentObservation,
    SchedulingObservation,
    observe_deployment,
    observe_pods,
)
from tests.status.builders import (
    CANARY_DEP,
    DEADLINE_MESSAGE,
    GPU_SHORTAGE,
    GPU_TAINT,
    MEMORY_SHORTAGE,
    MIG_SHORTAGE,
    NEW,
    OLD,
    STABLE_DEP,
    UNBOUND_PVC,
    available,
    deployment_manifest,
    pod_manifest,
    progressing,
    unschedulable_pod,
)

PROGRESSED = f'ReplicaSet "{STABLE_DEP}-7c9f8d6b5" has successfully progressed.'
UPDATING = f'ReplicaSet "{STABLE_DEP}-7c9f8d6b5" is progressing.'


def nulled(manifest: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The manifest with explicit ``null`` at the given top-level keys."""
    return {**manifest, **dict.fromkeys(keys)}


def with_meta(manifest: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {**manifest, "metadata": {**manifest["metadata"], **meta}}


def expected(**kw: Any) -> DeploymentObservation:
    base: dict[str, Any] = {
        "name": STABLE_DEP,
        "revision": OLD,
        "role": "stable",
        "uid": f"uid-{STABLE_DEP}",
        "desired": 2,
    }
    return DeploymentObservation(**{**base, **kw})


DEPLOYMENTS = [
    pytest.param(
        deployment_manifest(status=None),
        expected(current=False),
        False,
        id="fresh-no-status-at-all",
    ),
    pytest.param(
        deployment_manifest(status={}),
        expected(current=False),
        False,
        id="fresh-empty-status",
    ),
    pytest.param(
        # Zero counts are omitted from the wire (omitempty): only replicas and updated here.
        deployment_manifest(
            status={
                "observedGeneration": 1,
                "replicas": 2,
                "updatedReplicas": 2,
                "unavailableReplicas": 2,
                "conditions": [available("False"), progressing("ReplicaSetUpdated")],
            }
        ),
        expected(replicas=2, updated=2, message=UPDATING),
        False,
        id="created-pods-not-ready-counts-omitted",
    ),
    pytest.param(
        # maxSurge 1, maxUnavailable 0: a third pod of the new template, old two still ready.
        deployment_manifest(
            generation=2,
            status={
                "observedGeneration": 2,
                "replicas": 3,
                "updatedReplicas": 1,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "unavailableReplicas": 1,
                "conditions": [available(), progressing("ReplicaSetUpdated")],
            },
        ),
        expected(replicas=3, updated=1, ready=2, available=2, message=UPDATING),
        False,
        id="rolling-surge-pod",
    ),
    pytest.param(
        # Every pod updated and ready, an old one still counted while it terminates.
        deployment_manifest(
            generation=2,
            status={
                "observedGeneration": 2,
                "replicas": 3,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "conditions": [available(), progressing("ReplicaSetUpdated")],
            },
        ),
        expected(replicas=3, updated=2, ready=2, available=2, message=UPDATING),
        False,
        id="rolling-old-pod-still-counted",
    ),
    pytest.param(
        deployment_manifest(
            generation=3,
            status={
                "observedGeneration": 3,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "conditions": [available(), progressing("NewReplicaSetAvailable")],
            },
        ),
        expected(replicas=2, updated=2, ready=2, available=2, message=PROGRESSED),
        True,
        id="all-ready",
    ),
    pytest.param(
        # Ready but not yet available (minReadySeconds): both counts are kept apart.
        deployment_manifest(
            status={
                "observedGeneration": 1,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 1,
                "unavailableReplicas": 1,
                "conditions": [available(), progressing("ReplicaSetUpdated")],
            }
        ),
        expected(replicas=2, updated=2, ready=2, available=1, message=UPDATING),
        True,
        id="ready-not-yet-available",
    ),
    pytest.param(
        # A new template was applied; the controller has not looked at it yet.
        deployment_manifest(
            generation=4,
            status={
                "observedGeneration": 3,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "conditions": [available(), progressing("NewReplicaSetAvailable")],
            },
        ),
        expected(replicas=2, updated=2, ready=2, available=2, current=False, message=PROGRESSED),
        False,
        id="observed-generation-behind",
    ),
    pytest.param(
        deployment_manifest(
            generation=2,
            status={
                "observedGeneration": 2,
                "replicas": 3,
                "updatedReplicas": 1,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "unavailableReplicas": 1,
                "conditions": [
                    available(),
                    progressing("ProgressDeadlineExceeded", status="False"),
                ],
            },
        ),
        expected(
            replicas=3,
            updated=1,
            ready=2,
            available=2,
            deadline_exceeded=True,
            message=DEADLINE_MESSAGE,
        ),
        False,
        id="progress-deadline-exceeded",
    ),
    pytest.param(
        # The timeout was about the previous template; the new one is not looked at yet
        # (`kubectl rollout status` ignores it too).
        deployment_manifest(
            generation=3,
            status={
                "observedGeneration": 2,
                "replicas": 3,
                "updatedReplicas": 1,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "conditions": [
                    available(),
                    progressing("ProgressDeadlineExceeded", status="False"),
                ],
            },
        ),
        expected(
            replicas=3,
            updated=1,
            ready=2,
            available=2,
            current=False,
            deadline_exceeded=False,
            message=DEADLINE_MESSAGE,
        ),
        False,
        id="progress-deadline-exceeded-stale-generation",
    ),
    pytest.param(
        deployment_manifest(
            replicas=None,
            status={"observedGeneration": 1, "conditions": None},
        ),
        expected(desired=1),
        False,
        id="spec-replicas-defaulted-conditions-null",
    ),
    pytest.param(
        deployment_manifest(
            replicas=0,
            status={"observedGeneration": 1, "conditions": [available()]},
        ),
        expected(desired=0),
        True,
        id="scaled-to-zero",
    ),
    pytest.param(
        deployment_manifest(
            revision=None,
            role=None,
            generation=None,
            status={
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
            },
        ),
        expected(revision="", role="", replicas=2, updated=2, ready=2, available=2),
        True,
        id="no-gantry-labels-no-generation",
    ),
    pytest.param(
        deployment_manifest(
            CANARY_DEP,
            revision=NEW,
            role="canary",
            replicas=1,
            status={
                "observedGeneration": 1,
                "replicas": 1,
                "updatedReplicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "conditions": [available(), progressing("NewReplicaSetAvailable")],
            },
        ),
        DeploymentObservation(
            name=CANARY_DEP,
            revision=NEW,
            role="canary",
            uid=f"uid-{CANARY_DEP}",
            desired=1,
            replicas=1,
            updated=1,
            ready=1,
            available=1,
            message=PROGRESSED,
        ),
        True,
        id="canary-labels",
    ),
]


ALL_READY = deployment_manifest(
    status={
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "conditions": [available(), progressing("NewReplicaSetAvailable")],
    }
)
DEPLOYMENTS += [
    pytest.param(
        nulled(deployment_manifest(), "status"),
        expected(current=False),
        False,
        id="status-null",
    ),
    pytest.param(
        # spec null: replicas as the API server defaults them.
        nulled(ALL_READY, "spec"),
        expected(desired=1, replicas=2, updated=2, ready=2, available=2, message=PROGRESSED),
        True,
        id="spec-null",
    ),
    pytest.param(
        # metadata null: no name, labels or generation; the status still counts.
        nulled(ALL_READY, "metadata"),
        DeploymentObservation(
            name="", replicas=2, updated=2, ready=2, available=2, desired=2, message=PROGRESSED
        ),
        True,
        id="metadata-null",
    ),
    pytest.param(
        nulled(deployment_manifest(), "metadata", "spec", "status"),
        DeploymentObservation(name="", desired=1),
        False,
        id="everything-null",
    ),
    pytest.param(
        with_meta(ALL_READY, labels=None),
        expected(
            revision="", role="", replicas=2, updated=2, ready=2, available=2, message=PROGRESSED
        ),
        True,
        id="labels-null",
    ),
    pytest.param(
        deployment_manifest(status={"observedGeneration": 1, "replicas": 2, "conditions": None}),
        expected(replicas=2),
        False,
        id="status-conditions-null",
    ),
]


@pytest.mark.parametrize(("manifest", "want", "rolled_out"), DEPLOYMENTS)
def test_observe_deployment(
    manifest: dict[str, Any], want: DeploymentObservation, rolled_out: bool
) -> None:
    got = observe_deployment(manifest)
    assert got == want
    assert got.rolled_out is rolled_out


ROLLED_OUT = [
    pytest.param({}, True, id="steady"),
    pytest.param({"current": False}, False, id="not-current"),
    pytest.param({"updated": 1}, False, id="not-all-updated"),
    pytest.param({"ready": 1}, False, id="not-all-ready"),
    pytest.param({"replicas": 3}, False, id="old-pod-still-there"),
    pytest.param({"updated": 3, "ready": 3, "replicas": 3}, True, id="more-than-desired"),
]


@pytest.mark.parametrize(("changes", "want"), ROLLED_OUT)
def test_rolled_out(changes: dict[str, Any], want: bool) -> None:
    base: dict[str, Any] = {"name": "d", "desired": 2, "replicas": 2, "updated": 2, "ready": 2}
    assert DeploymentObservation(**{**base, **changes}).rolled_out is want


def pod(n: int) -> dict[str, Any]:
    return pod_manifest(f"{STABLE_DEP}-7c9f8d6b5-p{n}")


PODS = [
    pytest.param([], SchedulingObservation(), id="no-pods"),
    pytest.param([pod(1), pod(2)], SchedulingObservation(pods=2), id="all-scheduled"),
    pytest.param(
        [pod_manifest("p-new", scheduled=None)],
        SchedulingObservation(pods=1),
        id="just-created-no-condition",
    ),
    pytest.param(
        [pod(1), pod(2), unschedulable_pod("p3", GPU_SHORTAGE)],
        SchedulingObservation(pods=3, unschedulable=1, insufficient_gpu=True, message=GPU_SHORTAGE),
        id="gpu-shortage-scheduler-message",
    ),
    pytest.param(
        [unschedulable_pod("p1", MIG_SHORTAGE)],
        SchedulingObservation(pods=1, unschedulable=1, insufficient_gpu=True, message=MIG_SHORTAGE),
        id="mig-slice-shortage",
    ),
    pytest.param(
        [pod(1), unschedulable_pod("p2", MEMORY_SHORTAGE)],
        SchedulingObservation(pods=2, unschedulable=1, message=MEMORY_SHORTAGE),
        id="memory-shortage-not-gpu",
    ),
    pytest.param(
        [unschedulable_pod("p1", GPU_TAINT)],
        SchedulingObservation(pods=1, unschedulable=1, message=GPU_TAINT),
        id="gpu-taint-is-not-a-gpu-shortage",
    ),
    pytest.param(
        [unschedulable_pod("p1", UNBOUND_PVC)],
        SchedulingObservation(pods=1, unschedulable=1, message=UNBOUND_PVC),
        id="unbound-pvc",
    ),
    pytest.param(
        [
            pod_manifest("p1", scheduled="False", reason="Unschedulable"),
            unschedulable_pod("p2", MEMORY_SHORTAGE),
        ],
        SchedulingObservation(pods=2, unschedulable=2, message=MEMORY_SHORTAGE),
        id="first-without-message-then-one-with",
    ),
    pytest.param(
        [
            pod_manifest(
                "p1",
                scheduled="False",
                reason="SchedulingGated",
                message="Scheduling is blocked due to non-empty scheduling gates",
            ),
            pod_manifest(
                "p2",
                scheduled="False",
                reason="SchedulerError",
                message='running PreBind plugin "VolumeBinding": binding volumes: timed out',
            ),
        ],
        SchedulingObservation(pods=2),
        id="other-reasons-not-unschedulable",
    ),
    pytest.param(
        [
            pod(1),
            unschedulable_pod("old-1", GPU_SHORTAGE, terminating=True),
            unschedulable_pod("old-2", MEMORY_SHORTAGE, terminating=True),
            pod_manifest("old-3", terminating=True),
        ],
        SchedulingObservation(pods=1),
        id="terminating-pods-ignored",
    ),
    pytest.param(
        [
            unschedulable_pod("p1", MEMORY_SHORTAGE),
            unschedulable_pod("p2", UNBOUND_PVC),
            unschedulable_pod("p3", GPU_SHORTAGE),
        ],
        SchedulingObservation(pods=3, unschedulable=3, insufficient_gpu=True, message=GPU_SHORTAGE),
        id="gpu-message-preferred-over-earlier-non-gpu",
    ),
    pytest.param(
        [
            unschedulable_pod("p1", MEMORY_SHORTAGE),
            unschedulable_pod("p2", UNBOUND_PVC),
        ],
        SchedulingObservation(pods=2, unschedulable=2, message=MEMORY_SHORTAGE),
        id="first-non-gpu-message-kept",
    ),
    pytest.param(
        [
            unschedulable_pod("p1", GPU_SHORTAGE),
            unschedulable_pod("p2", MIG_SHORTAGE),
            unschedulable_pod("p3", MEMORY_SHORTAGE),
        ],
        SchedulingObservation(pods=3, unschedulable=3, insufficient_gpu=True, message=GPU_SHORTAGE),
        id="first-gpu-message-kept",
    ),
    pytest.param(
        [
            {"metadata": {"name": "bare"}},
            {"metadata": {"name": "null-conditions"}, "status": {"conditions": None}},
        ],
        SchedulingObservation(pods=2),
        id="pods-without-status",
    ),
    pytest.param(
        [
            nulled(pod(1), "metadata"),
            nulled(pod(2), "status"),
            nulled(pod(3), "metadata", "spec", "status"),
            {**pod(4), "status": {"phase": "Pending", "conditions": None}},
        ],
        SchedulingObservation(pods=4),
        id="explicit-nulls",
    ),
    pytest.param(
        [
            nulled(unschedulable_pod("p1", GPU_SHORTAGE), "metadata", "spec"),
            nulled(unschedulable_pod("old", MEMORY_SHORTAGE, terminating=True), "spec"),
            nulled(pod(2), "status"),
        ],
        SchedulingObservation(pods=2, unschedulable=1, insufficient_gpu=True, message=GPU_SHORTAGE),
        id="null-metadata-still-read-status-null-spec-still-terminating",
    ),
]


@pytest.mark.parametrize(("pods", "want"), PODS)
def test_observe_pods(pods: list[dict[str, Any]], want: SchedulingObservation) -> None:
    assert observe_pods(pods) == want


def test_observe_pods_takes_any_iterable() -> None:
    pods = (p for p in [pod(1), unschedulable_pod("p2", GPU_SHORTAGE)])
    assert observe_pods(pods).insufficient_gpu
