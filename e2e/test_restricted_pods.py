"""Every pod Gantry renders is admitted by the real PodSecurity admission at ``restricted``.

For each example in ``examples/``, ``gantry render`` produces the children; every Deployment's
pod template (the server and the model-fetching init container) is submitted as a Pod with a
server-side dry run (PodSecurity admission runs on dry runs) and the Deployment itself is
created, so the ReplicaSet controller creates real pods in the enforcing namespace. A pod the
policy refuses would be a ``FailedCreate`` event and no pod.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import REPO_ROOT, Kubectl, KubectlError
from e2e.waiting import wait_for

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
ENFORCE = "pod-security.kubernetes.io/enforce"


def rendered_deployments(example: Path, namespace: str) -> list[dict[str, Any]]:
    """The example's Deployments as ``gantry render`` writes them, moved into ``namespace``.

    The owner reference is dropped: the ModelDeployment does not exist here, and the garbage
    collector would delete a child whose owner is missing.
    """
    out = subprocess.run(
        [sys.executable, "-m", "gantry.cli", "render", "-f", str(example)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    deployments = [doc for doc in yaml.safe_load_all(out) if doc and doc["kind"] == "Deployment"]
    for dep in deployments:
        dep["metadata"]["namespace"] = namespace
        dep["metadata"].pop("ownerReferences", None)
    return deployments


def pod_from(deployment: dict[str, Any], namespace: str) -> dict[str, Any]:
    template = copy.deepcopy(deployment["spec"]["template"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{deployment['metadata']['name']}-probe", "namespace": namespace},
        "spec": template["spec"],
    }


def dry_run_pod(kubectl: Kubectl, pod: dict[str, Any]) -> None:
    kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod))


@pytest.fixture
def restricted(kubectl: Kubectl, namespace: str) -> str:
    kubectl("label", "namespace", namespace, f"{ENFORCE}=restricted", "--overwrite")
    return namespace


def test_examples_cover_the_fetching_init_container() -> None:
    """At least one example fetches its model, so the init container is admitted too."""
    templates = [
        d["spec"]["template"]["spec"] for p in EXAMPLES for d in rendered_deployments(p, "x")
    ]
    assert any(t.get("initContainers") for t in templates)


def test_the_namespace_really_enforces(kubectl: Kubectl, restricted: str) -> None:
    """A control: the same pod with root allowed is refused, so the checks below can fail."""
    (dep, *_) = rendered_deployments(EXAMPLES[0], restricted)
    pod = pod_from(dep, restricted)
    del pod["spec"]["securityContext"]["runAsNonRoot"]
    pod["spec"]["securityContext"]["runAsUser"] = 0
    with pytest.raises(KubectlError, match="violates PodSecurity"):
        dry_run_pod(kubectl, pod)


def test_a_writable_root_chosen_in_the_spec_is_still_restricted(
    kubectl: Kubectl, restricted: str, tmp_path: Path
) -> None:
    """``runtime.readOnlyRootFilesystem: false`` is a choice the restricted standard allows."""
    manifest = yaml.safe_load(EXAMPLES[0].read_text())
    runtime = manifest["spec"].setdefault("runtime", {})
    runtime["readOnlyRootFilesystem"] = False
    writable = tmp_path / EXAMPLES[0].name
    writable.write_text(yaml.safe_dump(manifest))
    for dep in rendered_deployments(writable, restricted):
        pod = pod_from(dep, restricted)
        (server,) = pod["spec"]["containers"]
        assert server["securityContext"]["readOnlyRootFilesystem"] is False
        dry_run_pod(kubectl, pod)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_pods_are_admitted(kubectl: Kubectl, restricted: str, example: Path) -> None:
    deployments = rendered_deployments(example, restricted)
    assert deployments, f"{example.name} rendered no Deployment"
    for dep in deployments:
        pod = pod_from(dep, restricted)
        dry_run_pod(kubectl, pod)  # raises with PodSecurity's message when refused

    kubectl.apply(*deployments, namespace=restricted)
    for dep in deployments:
        name = dep["metadata"]["name"]
        selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())

        def created(name: str = name, selector: str = selector) -> list[dict[str, Any]]:
            pods: list[dict[str, Any]] = kubectl.json(
                "get", "pods", "-n", restricted, "-l", selector
            )["items"]
            return pods

        wait_for(created, timeout=60, what=f"a pod of Deployment {name}")
    refused = kubectl.json(
        "get", "events", "-n", restricted, "--field-selector", "reason=FailedCreate"
    )["items"]
    assert [e["message"] for e in refused] == []
