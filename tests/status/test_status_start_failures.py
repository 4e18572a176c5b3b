"""Pods that cannot be created or started are read back into the status with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.status.observe import (
    STUCK_REASONS,
    SchedulingObservation,
    observe_deployment,
    observe_pods,
)
from tests.status.builders import (
    MODEL_READY,
    NO_RUNNING_PODS,
    available,
    build,
    cond,
    deployment_manifest,
    inputs,
    observed,
    pod_manifest,
    progressing,
    summary,
)

QUOTA = 'pods "resnet-abc-x" is forbidden: exceeded quota: no-pods, requested: pods=1'


def waiting(pod: dict[str, Any], reason: str, message: str = "", *, init: bool = False) -> Any:
    key = "initContainerStatuses" if init else "containerStatuses"
    name = "fetch-model" if init else "triton"
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    pod["status"][key] = [{"name": name, "ready": False, "state": {"waiting": state}}]
    pod["status"]["phase"] = "Pending"
    return pod


def replica_failure(reason: str = "FailedCreate", message: str = QUOTA) -> dict[str, Any]:
    return {"type": "ReplicaFailure", "status": "True", "reason": reason, "message": message}


@pytest.mark.parametrize(
    ("conditions", "want"),
    [
        pytest.param([replica_failure()], ("FailedCreate", QUOTA), id="failed-create"),
        pytest.param(
            [{**replica_failure(), "status": "False"}], ("", ""), id="replica-failure-cleared"
        ),
        pytest.param([available(), progressing("NewReplicaSetAvailable")], ("", ""), id="none"),
        pytest.param(
            [{"type": "ReplicaFailure", "status": "True"}], ("ReplicaFailure", ""), id="no-reason"
        ),
    ],
)
def test_replica_failure_is_observed(
    conditions: list[dict[str, Any]], want: tuple[str, str]
) -> None:
    dep = deployment_manifest(status={"observedGeneration": 1, "conditions": conditions})
    obs = observe_deployment(dep)
    assert (obs.replica_failure_reason, obs.replica_failure) == want


@pytest.mark.parametrize("reason", sorted(STUCK_REASONS))
def test_every_stuck_reason_is_reported_with_pod_and_container(reason: str) -> None:
    pod = waiting(pod_manifest("p-1"), reason, "the kubelet's words")
    obs = observe_pods([pod])
    assert (obs.stuck, obs.stuck_reason) == (1, reason)
    assert obs.stuck_message == f"pod p-1 container triton: {reason}: the kubelet's words"


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing", ""])
def test_normal_waiting_is_not_stuck(reason: str) -> None:
    obs = observe_pods([waiting(pod_manifest("p-1"), reason)])
    assert (obs.stuck, obs.stuck_reason, obs.stuck_message) == (0, "", "")


def test_init_container_is_reported_first_and_terminating_pods_are_ignored() -> None:
    init = waiting(pod_manifest("p-1"), "CrashLoopBackOff", "back-off 5m0s", init=True)
    bad_image = waiting(pod_manifest("p-2"), "InvalidImageName")
    gone = waiting(pod_manifest("p-0", terminating=True), "ErrImagePull")
    obs = observe_pods([gone, init, bad_image])
    assert obs.stuck == 2
    assert obs.stuck_reason == "CrashLoopBackOff"
    assert obs.stuck_message.startswith("pod p-1 container fetch-model: CrashLoopBackOff")


STUCK = SchedulingObservation(
    pods=1, stuck=1, stuck_reason="ErrImagePull", stuck_message="pod p container triton: pull"
)


@pytest.mark.parametrize(
    ("dep", "scheduling", "model", "want"),
    [
        pytest.param(
            observed(ready=0, replica_failure_reason="FailedCreate", replica_failure=QUOTA),
            SchedulingObservation(),
            NO_RUNNING_PODS,
            {"Available": ("False", "FailedCreate"), "Degraded": ("True", "FailedCreate")},
            id="nothing-created-nothing-serves",
        ),
        pytest.param(
            observed(ready=0),
            STUCK,
            NO_RUNNING_PODS,
            {"Available": ("False", "ErrImagePull"), "Degraded": ("True", "ErrImagePull")},
            id="image-pull-nothing-serves",
        ),
        pytest.param(
            observed(desired=2, ready=1),
            STUCK,
            MODEL_READY,
            {
                "Available": ("True", "MinimumReplicasAvailable"),
                "Ready": ("False", "ErrImagePull"),
                "Degraded": ("False", "AsExpected"),
            },
            id="one-serves-one-stuck-not-degraded",
        ),
        pytest.param(
            observed(ready=0),
            SchedulingObservation(pods=1),
            NO_RUNNING_PODS,
            {"Available": ("False", "NoReadyReplicas"), "Degraded": ("False", "AsExpected")},
            id="plain-start-up-is-not-a-failure",
        ),
    ],
)
def test_start_failures_in_conditions(
    dep: Any, scheduling: SchedulingObservation, model: Any, want: dict[str, tuple[str, str]]
) -> None:
    status = build(inputs(dep, scheduling=scheduling, model=model))
    got = summary(status)
    assert {k: got[k] for k in want} == want
    if want.get("Degraded", ("False",))[0] == "True":
        assert status.phase.value == "Degraded"
        reason = want["Degraded"][1]
        assert status.message.startswith(f"{reason}: ")


def test_progressing_message_carries_the_start_failure() -> None:
    dep = observed(
        desired=1, ready=0, updated=0, replica_failure_reason="FailedCreate", replica_failure=QUOTA
    )
    status = build(inputs(dep, scheduling=SchedulingObservation(), model=NO_RUNNING_PODS))
    progressing_ = cond(status, "Progressing")
    assert progressing_.reason == "ReplicasUpdating"
    assert QUOTA in progressing_.message
