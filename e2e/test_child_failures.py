"""What the cluster refuses, and names Gantry does not own, on a real control plane.

Each scenario provokes the real answer: a ValidatingAdmissionPolicy stands in for
any policy engine that refuses a child the CRD schema cannot know about, a
ResourceQuota makes the ReplicaSet controller fail to create pods, and a user's
own Service or another ModelDeployment holds a name Gantry wants.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.cluster import Kubectl
from e2e.test_operator import condition, cpu_model, deployments, get_md
from e2e.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

POLICY_MESSAGE = "model servers must run in an approved namespace"


def warnings(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name},type=Warning",
    )["items"]
    return items


def wait_degraded(
    kubectl: Kubectl, namespace: str, name: str, reason: str, *, timeout: float
) -> dict[str, Any]:
    """The ModelDeployment once it is Degraded for ``reason`` (bounded wait)."""

    def degraded() -> dict[str, Any]:
        md = get_md(kubectl, namespace, name)
        cond = condition(md, "Degraded")
        return md if cond.get("status") == "True" and cond.get("reason") == reason else {}

    return wait_for(degraded, timeout=timeout, what=f"Degraded={reason} on {name}")


@pytest.fixture
def deny_deployments(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A ValidatingAdmissionPolicy refusing Gantry's Deployments in ``namespace`` only."""
    name = f"deny-{namespace}"[:63]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "!has(object.metadata.labels) || "
                    "!('app.kubernetes.io/managed-by' in object.metadata.labels)",
                    "message": POLICY_MESSAGE,
                    "reason": "Invalid",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    kubectl.apply(policy, binding)
    try:
        yield name
    finally:
        kubectl(
            "delete",
            f"validatingadmissionpolicybinding/{name}",
            f"validatingadmissionpolicy/{name}",
            "--ignore-not-found",
        )


def policy_checks(kubectl: Kubectl, policy: str) -> int:
    """How many requests the API server ran through ``policy`` (its own counter)."""
    text = kubectl("get", "--raw", "/metrics").stdout
    pattern = re.compile(
        r'^apiserver_validating_admission_policy_check_total\{[^}]*policy="'
        + re.escape(policy)
        + r'"[^}]*\} (\d+)',
        re.MULTILINE,
    )
    return sum(int(m) for m in pattern.findall(text))


def test_child_refused_by_admission_is_reported_once_and_backed_off(
    kubectl: Kubectl, namespace: str, deny_deployments: str
) -> None:
    # A policy takes a moment to reach the admission plugin: wait until it bites.
    probe = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "probe", "labels": {"app.kubernetes.io/managed-by": "x"}},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }

    def refused() -> bool:
        try:
            kubectl.apply(probe, namespace=namespace)
        except Exception as exc:
            return POLICY_MESSAGE in str(exc)
        kubectl("delete", "deployment", "probe", "-n", namespace)
        return False

    wait_for(refused, timeout=30, what="the admission policy to be enforced")

    kubectl.apply(cpu_model("tiny"), namespace=namespace)
    md = wait_degraded(kubectl, namespace, "tiny", "ChildRejected", timeout=60)
    assert md["status"]["phase"] == "Failed"
    message = condition(md, "Degraded")["message"]
    assert message.startswith(f"Deployment {namespace}/tiny refused by the API server (422)")
    assert POLICY_MESSAGE in message

    # The operator resyncs every second here; with backoff (5 s, then 10 s, ...) the
    # refused apply is sent a few times in 12 s, not twelve.
    before = policy_checks(kubectl, deny_deployments)
    time.sleep(12)
    sent = policy_checks(kubectl, deny_deployments) - before
    assert sent <= 4, f"{sent} applies of a refused Deployment in 12 s"
    print(f"\n[child-rejected] {sent} applies of the refused Deployment in 12 s at a 1 s resync")
    reasons = [e["reason"] for e in warnings(kubectl, namespace, "tiny")]
    assert reasons.count("ChildRejected") == 1, reasons

    # Fixed by a person: the policy goes, the spec changes, and it is retried at once.
    kubectl("delete", f"validatingadmissionpolicybinding/{deny_deployments}")
    kubectl("patch", "md", "tiny", "-n", namespace, "--type=merge", "-p",
            '{"spec":{"resources":{"cpu":"2"}}}')  # fmt: skip
    wait_for(lambda: deployments(kubectl, namespace), timeout=30, what="the Deployment")
    wait_for(
        lambda: condition(get_md(kubectl, namespace, "tiny"), "Degraded").get("status") == "False",
        timeout=30,
        what="Degraded=False after the fix",
    )


def users_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": "mine"}},
        "spec": {"selector": {"app": "mine"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def test_users_service_is_never_taken_or_deleted(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(users_service("tiny"), namespace=namespace)
    kubectl.apply(cpu_model("tiny"), namespace=namespace)

    md = wait_degraded(kubectl, namespace, "tiny", "ChildConflict", timeout=30)
    assert md["status"]["phase"] == "Failed"
    assert condition(md, "Degraded")["message"].startswith(
        f"Service {namespace}/tiny already exists and is not controlled by this ModelDeployment"
    )
    svc = kubectl.json("get", "service", "tiny", "-n", namespace)
    assert svc["spec"]["selector"] == {"app": "mine"}
    assert "ownerReferences" not in svc["metadata"]
    assert deployments(kubectl, namespace) == [], "nothing applied while a name is taken"

    kubectl("delete", "md", "tiny", "-n", namespace, "--wait=true")
    time.sleep(3)  # garbage collection runs within a second or two here
    svc = kubectl.json("get", "service", "tiny", "-n", namespace)
    assert svc["spec"]["selector"] == {"app": "mine"}


def test_colliding_modeldeployments_the_second_says_so(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(
        cpu_model("m1", rollout={"strategy": "canary", "canary": {}}), namespace=namespace
    )
    wait_for(lambda: deployments(kubectl, namespace), timeout=30, what="the stable Deployment")
    kubectl("patch", "md", "m1", "-n", namespace, "--type=merge", "-p",
            '{"spec":{"model":{"version":"2"}}}')  # fmt: skip

    def canary_deployment() -> str:
        canary = get_md(kubectl, namespace, "m1").get("status", {}).get("canary") or {}
        return str(canary.get("deployment", ""))

    taken = wait_for(canary_deployment, timeout=30, what="m1's canary Deployment")
    wait_for(
        lambda: any(d["metadata"]["name"] == taken for d in deployments(kubectl, namespace)),
        timeout=30,
        what=f"Deployment {taken}",
    )

    # A second ModelDeployment named like m1's canary Deployment wants that name.
    kubectl.apply(cpu_model(taken), namespace=namespace)
    md = wait_degraded(kubectl, namespace, taken, "ChildConflict", timeout=30)
    assert "is controlled by ModelDeployment m1" in condition(md, "Degraded")["message"]
    dep = kubectl.json("get", "deployment", taken, "-n", namespace)
    (ref,) = dep["metadata"]["ownerReferences"]
    assert ref["name"] == "m1"


def test_pods_the_replicaset_cannot_create_are_reported(kubectl: Kubectl, namespace: str) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    kubectl.apply(quota, namespace=namespace)
    kubectl.apply(cpu_model("tiny"), namespace=namespace)

    md = wait_degraded(kubectl, namespace, "tiny", "FailedCreate", timeout=60)
    assert md["status"]["phase"] == "Degraded"
    available = condition(md, "Available")
    assert (available["status"], available["reason"]) == ("False", "FailedCreate")
    assert "exceeded quota: no-pods" in available["message"]


def test_unknown_gate_value_is_removed_with_a_warning(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(cpu_model("tiny"), namespace=namespace)
    wait_for(lambda: deployments(kubectl, namespace), timeout=30, what="the Deployment")
    kubectl("annotate", "md", "tiny", "-n", namespace, "serving.gantry.dev/promote=banana")

    def removed() -> bool:
        annotations = get_md(kubectl, namespace, "tiny")["metadata"].get("annotations") or {}
        return "serving.gantry.dev/promote" not in annotations

    wait_for(removed, timeout=30, what="the annotation to be removed")
    events = wait_for(
        lambda: [
            e for e in warnings(kubectl, namespace, "tiny") if e["reason"] == "InvalidAnnotation"
        ],
        timeout=15,
        what="an InvalidAnnotation Warning",
    )
    assert "'banana'" in events[0]["message"]
    assert "true or step" in events[0]["message"]
