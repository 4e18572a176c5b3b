"""The operator on a real control plane: children, placement, edits, scheduling, deletion.

The operator runs as its own process (``gantry run``), as users run it; the test
talks to the cluster only through kubectl.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from e2e.cluster import REPO_ROOT, Kubectl
from e2e.cluster.api import KubectlError
from e2e.operator_proc import OperatorProcess
from e2e.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

EXAMPLES = REPO_ROOT / "examples"
SELECTOR = "app.kubernetes.io/managed-by=gantry"


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    doc["metadata"].pop("namespace", None)
    return doc


def cpu_model(name: str = "tiny", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": {"name": "tiny", "uri": "https://models.example/tiny.tar.gz", "version": "1"},
        "resources": {"cpu": "1", "memory": "1Gi"},
        "replicas": 2,
    }
    base.update(spec)
    return {
        "apiVersion": "serving.gantry.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": base,
    }


def get_md(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    md: dict[str, Any] = kubectl.json("get", "md", name, "-n", namespace)
    return md


def condition(md: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in md.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return {}


def deployments(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json(
        "get", "deployments", "-n", namespace, "-l", SELECTOR
    )["items"]
    return items


def pods(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "pods", "-n", namespace, "-l", SELECTOR)[
        "items"
    ]
    return items


def test_gpu_example_runs_on_gpu_nodes(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(example("resnet-gpu.yaml"), namespace=namespace)
    (dep,) = wait_for(lambda: deployments(kubectl, namespace), timeout=30, what="Deployment")
    pod_spec = dep["spec"]["template"]["spec"]
    server = pod_spec["containers"][0]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    terms = pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expressions = {e["key"]: e for t in terms["nodeSelectorTerms"] for e in t["matchExpressions"]}
    assert expressions["nvidia.com/gpu.product"]["values"] == ["NVIDIA-H100-80GB-HBM3"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod_spec["tolerations"])
    running = wait_for(
        lambda: [p for p in pods(kubectl, namespace) if p["status"].get("phase") == "Running"],
        timeout=60,
        what="a running pod",
    )
    assert all(p["spec"]["nodeName"].startswith("gpu-node-") for p in running)
    md = wait_for(
        lambda: (m := get_md(kubectl, namespace, "resnet")).get("status", {}).get("replicas") and m,
        timeout=30,
        what="status with replicas",
    )
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    assert condition(md, "Scheduled")["status"] == "True"
    for kind in ("Service", "PodDisruptionBudget"):
        kubectl("get", kind.lower(), "resnet", "-n", namespace)
    # The example scales on queue time with the builtin scaler: no HPA to install or render.
    hpas = kubectl.json("get", "horizontalpodautoscalers", "-n", namespace)["items"]
    assert hpas == []


def test_mig_example_requests_mig_slices(kubectl: Kubectl, namespace: str) -> None:
    doc = example("mig-small.yaml")
    # The shipped example mounts a PVC; serve from HTTPS here so no claim is needed.
    doc["spec"]["model"]["uri"] = "https://models.example/small.tar.gz"
    kubectl.apply(doc, namespace=namespace)
    (dep,) = wait_for(lambda: deployments(kubectl, namespace), timeout=30, what="Deployment")
    limits = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits.get("nvidia.com/mig-1g.10gb") == "1"
    assert "nvidia.com/gpu" not in limits
    running = wait_for(
        lambda: [p for p in pods(kubectl, namespace) if p["status"].get("phase") == "Running"],
        timeout=60,
        what="a running pod",
    )
    assert {p["spec"]["nodeName"] for p in running} == {"mig-node-0"}


def test_spec_edit_updates_children_and_generation(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(cpu_model(), namespace=namespace)
    wait_for(
        lambda: get_md(kubectl, namespace, "tiny").get("status", {}).get("observedGeneration") == 1,
        timeout=30,
        what="generation 1 observed",
    )
    (before,) = deployments(kubectl, namespace)
    edited = cpu_model()
    edited["spec"]["model"]["version"] = "2"
    edited["spec"]["resources"]["memory"] = "2Gi"
    kubectl.apply(edited, namespace=namespace)

    def updated() -> dict[str, Any] | None:
        (dep,) = deployments(kubectl, namespace)
        limits = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        return dep if limits["memory"] == "2Gi" else None

    after = wait_for(updated, timeout=30, what="Deployment with the new template")
    assert after["metadata"]["name"] == before["metadata"]["name"]  # rolling: in place
    labels = after["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "2"
    md = wait_for(
        lambda: (
            (m := get_md(kubectl, namespace, "tiny"))["status"]["observedGeneration"] == 2 and m
        ),
        timeout=30,
        what="generation 2 observed",
    )
    assert {c["observedGeneration"] for c in md["status"]["conditions"]} == {2}
    assert md["status"]["stable"]["modelVersion"] == "2"


def test_scale_subresource(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(cpu_model(), namespace=namespace)
    wait_for(lambda: deployments(kubectl, namespace), timeout=30, what="Deployment")
    kubectl("scale", "md/tiny", "--replicas=3", "-n", namespace)
    wait_for(
        lambda: deployments(kubectl, namespace)[0]["spec"]["replicas"] == 3,
        timeout=30,
        what="Deployment scaled to 3",
    )
    wait_for(
        lambda: get_md(kubectl, namespace, "tiny")["status"].get("replicas") == 3,
        timeout=30,
        what="status.replicas 3",
    )


def test_more_gpus_than_any_node_is_insufficient_gpu(kubectl: Kubectl, namespace: str) -> None:
    greedy = cpu_model("greedy", replicas=1)
    greedy["spec"]["resources"]["gpu"] = {"count": 16}
    kubectl.apply(greedy, namespace=namespace)

    def scheduled_false() -> dict[str, Any] | None:
        cond = condition(get_md(kubectl, namespace, "greedy"), "Scheduled")
        return cond if cond.get("status") == "False" else None

    cond = wait_for(scheduled_false, timeout=60, what="Scheduled=False")
    assert cond["reason"] == "InsufficientGPU"
    assert "Insufficient nvidia.com/gpu" in cond["message"]
    md = get_md(kubectl, namespace, "greedy")
    assert condition(md, "Ready")["status"] == "False"
    assert condition(md, "Degraded")["reason"] == "InsufficientGPU"
    assert md["status"]["phase"] == "Degraded"
    events = kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "involvedObject.name=greedy",
        "-o",
        "name",
    ).stdout
    assert events.strip(), "expected an event for the scheduling failure"


def test_delete_removes_every_child(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(example("resnet-gpu.yaml"), namespace=namespace)
    wait_for(
        lambda: (
            len(kubectl.json("get", "deploy,svc,hpa,pdb", "-n", namespace, "-l", SELECTOR)["items"])
            >= 3  # Deployment, Service, PDB: the builtin scaler renders no HPA
        ),
        timeout=30,
        what="children",
    )
    kubectl("delete", "md", "resnet", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: (
            not kubectl.json("get", "deploy,svc,hpa,pdb,pods", "-n", namespace, "-l", SELECTOR)[
                "items"
            ]
        ),
        timeout=60,
        what="garbage collection of every child",
    )


def _invalid(patch: dict[str, Any]) -> dict[str, Any]:
    doc = cpu_model("bad")
    for path, value in patch.items():
        node = doc["spec"]
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc


INVALID = [
    pytest.param({"scaling": {"minReplicas": 5, "maxReplicas": 2}}, "minReplicas", id="min>max"),
    pytest.param(
        {"resources.gpu": {"count": 1, "mig": {"profile": "1g.10gb"}}}, "gpu", id="gpu+mig"
    ),
    pytest.param({"model.uri": "ftp://x/y"}, "spec.model.uri", id="uri-scheme"),
    pytest.param({"replicas": -1}, "spec.replicas", id="negative-replicas"),
    pytest.param({"resources.gpu": {"mig": {"profile": "big"}}}, "profile", id="mig-profile"),
    pytest.param({"rollout": {"strategy": "canary"}}, "rollout.canary", id="canary-without-steps"),
    pytest.param(
        {
            "rollout": {
                "strategy": "canary",
                "canary": {"steps": [{"setWeight": 50}, {"setWeight": 20}]},
            }
        },
        "setWeight",
        id="weights-decrease",
    ),
    pytest.param(
        {"rollout": {"strategy": "canary", "canary": {"analysis": {"interval": "soon"}}}},
        "interval",
        id="bad-duration",
    ),
    pytest.param({"runtime": {"ports": {"http": 9000, "grpc": 9000}}}, "ports", id="port-clash"),
    pytest.param({"model.colour": "blue"}, "colour", id="unknown-field"),
]


@pytest.mark.parametrize(("patch", "field"), INVALID)
def test_invalid_manifest_refused_naming_the_field(
    kubectl: Kubectl, namespace: str, patch: dict[str, Any], field: str
) -> None:
    doc = _invalid(copy.deepcopy(patch))
    with pytest.raises(KubectlError) as refused:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    message = str(refused.value)
    assert field in message, message
    assert kubectl("get", "md", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_operator_exports_metrics(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    import httpx

    kubectl.apply(cpu_model(), namespace=namespace)
    wait_for(
        lambda: f'namespace="{namespace}"' in httpx.get(operator.metrics_url, timeout=2).text,
        timeout=30,
        what="per-CR phase metric",
    )
    text = httpx.get(operator.metrics_url, timeout=2).text
    assert "gantry_reconcile_total" in text
    assert "gantry_reconcile_duration_seconds_bucket" in text
