"""Bad ModelDeployments are refused at the door, by ``kubectl apply``, naming the field.

Each case is one manifest with one mistake, in every section of the spec and in
its name. Applied as a user applies it (client-side ``kubectl apply``), it must be
refused by the API server itself, with a message that names the field path, so
the user learns at once what to fix; nothing may reach the operator, where the
mistake would only surface later as a child the API server refuses.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from e2e.cluster import Kubectl
from gantry.api.spec import API_VERSION, KIND

pytestmark = pytest.mark.usefixtures("crd_installed")

GOOD: dict[str, Any] = {
    "model": {"name": "resnet50", "uri": "s3://models/resnet50", "version": "3"},
    "resources": {"cpu": "1", "memory": "2Gi"},
}
CANARY = {"strategy": "canary", "canary": {}}
ROUTING = "rollout.canary.trafficRouting"
AFFINITY = "placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
ANTI = "placement.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
ANALYSIS = "rollout.canary.analysis"


class Case(NamedTuple):
    """A mistake: spec fields set (dotted paths; None removes) and the path kubectl must name."""

    id: str
    changes: dict[str, Any]
    names: str


def gateway(*parents: dict[str, Any]) -> dict[str, Any]:
    return {"type": "gatewayAPI", "parentRefs": list(parents)}


def in_expression(expression: dict[str, Any]) -> dict[str, Any]:
    return {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}


CASES = [
    # model
    Case("no-model", {"model": None}, "spec.model"),
    Case("pvc-without-claim", {"model.uri": "pvc://"}, "spec.model.uri"),
    Case("s3-without-bucket", {"model.uri": "s3://"}, "spec.model.uri"),
    Case("pvc-backstep", {"model.uri": "pvc://claim/a/../b"}, "spec.model.uri"),
    Case("https-without-path", {"model.uri": "https://models.example"}, "spec.model.uri"),
    Case("model-name", {"model.name": "-resnet"}, "spec.model.name"),
    Case("model-version", {"model.version": "v3"}, "spec.model.version"),
    Case("model-format", {"model.format": "tflite"}, "spec.model.format"),
    # runtime
    Case("image-with-space", {"runtime.image": "Triton Server:latest"}, "spec.runtime.image"),
    Case("image-uppercase", {"runtime.image": "nvcr.io/NVIDIA/triton"}, "spec.runtime.image"),
    Case("ports-clash", {"runtime.ports": {"http": 8001}}, "spec.runtime.ports"),
    Case("port-range", {"runtime.ports": {"http": 70000}}, "spec.runtime.ports.http"),
    Case("env-name", {"runtime.env": [{"name": "MY VAR"}]}, "spec.runtime.env[0].name"),
    Case("shm-negative", {"runtime.shmSize": "-1Gi"}, "spec.runtime.shmSize"),
    # resources
    Case("cpu-negative", {"resources.cpu": "-1"}, "spec.resources.cpu"),
    Case("cpu-zero", {"resources.cpu": "0"}, "spec.resources.cpu"),
    Case("memory-grammar", {"resources.memory": "1.5.5"}, "spec.resources.memory"),
    Case("memory-huge-exponent", {"resources.memory": "1e1000"}, "spec.resources.memory"),
    Case(
        "gpu-count-and-mig",
        {"resources.gpu": {"count": 1, "mig": {"profile": "1g.10gb"}}},
        "spec.resources.gpu",
    ),
    Case(
        "mig-profile",
        {"resources.gpu": {"mig": {"profile": "10gb"}}},
        "spec.resources.gpu.mig.profile",
    ),
    Case("gpu-product", {"resources.gpu": {"product": "H100-"}}, "spec.resources.gpu.product"),
    Case("unknown-field", {"resources.gpus": 1}, "spec.resources.gpus"),
    # placement
    Case(
        "toleration-operator",
        {"placement.tolerations": [{"key": "a", "operator": "Sometimes"}]},
        "spec.placement.tolerations[0].operator",
    ),
    Case(
        "toleration-empty-key",
        {"placement.tolerations": [{"operator": "Equal", "value": "x"}]},
        "spec.placement.tolerations[0].operator",
    ),
    Case(
        "node-selector-key",
        {"placement.nodeSelector": {"-bad": "v"}},
        "spec.placement.nodeSelector",
    ),
    Case(
        "affinity-in-without-values",
        {AFFINITY: in_expression({"key": "zone", "operator": "In"})},
        f"spec.{AFFINITY}.nodeSelectorTerms[0].matchExpressions[0].values",
    ),
    Case(
        "affinity-topology-key",
        {
            "placement.affinity.podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "not a key"}]
            }
        },
        f"spec.{ANTI}[0].topologyKey",
    ),
    Case(
        "priority-class",
        {"placement.priorityClassName": "High"},
        "spec.placement.priorityClassName",
    ),
    # scaling
    Case(
        "min-above-max",
        {"scaling": {"minReplicas": 5, "maxReplicas": 2}},
        "spec.scaling.minReplicas",
    ),
    Case("metric-type", {"scaling.metric": {"type": "rps"}}, "spec.scaling.metric.type"),
    Case(
        "cpu-target",
        {"scaling.metric": {"type": "cpu", "target": 0.4}},
        "spec.scaling.metric.target",
    ),
    Case(
        "behavior-no-policies",
        {"scaling.behavior": {"scaleUp": {"policies": []}}},
        "spec.scaling.behavior.scaleUp.policies",
    ),
    Case(
        "behavior-select-policy",
        {"scaling.behavior": {"scaleDown": {"selectPolicy": "Maximum"}}},
        "spec.scaling.behavior.scaleDown.selectPolicy",
    ),
    Case(
        "scale-to-zero-without-keda",
        {"scaling": {"minReplicas": 0, "maxReplicas": 3}},
        "spec.scaling.minReplicas",
    ),
    Case(
        "keda-without-server-address",
        {"scaling": {"provider": "keda", "minReplicas": 1, "maxReplicas": 3}},
        "spec.scaling.provider",
    ),
    Case(
        "keda-server-address-scheme",
        {"scaling": {"provider": "keda", "maxReplicas": 3, "keda": {"serverAddress": "prom:9090"}}},
        "spec.scaling.keda.serverAddress",
    ),
    Case(
        "builtin-reads-no-cpu",
        {"scaling": {"provider": "builtin", "maxReplicas": 3, "metric": {"type": "cpu"}}},
        "spec.scaling.provider",
    ),
    # replicas
    Case("replicas-negative", {"replicas": -1}, "spec.replicas"),
    Case("replicas-too-many", {"replicas": 1001}, "spec.replicas"),
    # rollout
    Case("strategy", {"rollout": {"strategy": "bluegreen"}}, "spec.rollout.strategy"),
    Case("canary-missing", {"rollout": {"strategy": "canary"}}, "spec.rollout.canary"),
    Case(
        "deadline", {"rollout.progressDeadlineSeconds": 10}, "spec.rollout.progressDeadlineSeconds"
    ),
    # canary steps
    Case(
        "weights-decrease",
        {"rollout": CANARY, "rollout.canary.steps": [{"setWeight": 50}, {"setWeight": 20}]},
        "spec.rollout.canary.steps",
    ),
    Case(
        "step-two-kinds",
        {"rollout": CANARY, "rollout.canary.steps": [{"setWeight": 10, "pause": {}}]},
        "spec.rollout.canary.steps[0]",
    ),
    Case(
        "pause-duration",
        {"rollout": CANARY, "rollout.canary.steps": [{"pause": {"duration": "1d"}}]},
        "spec.rollout.canary.steps[0].pause.duration",
    ),
    Case("no-steps", {"rollout": CANARY, "rollout.canary.steps": []}, "spec.rollout.canary.steps"),
    Case(
        "weight-above-100",
        {"rollout": CANARY, "rollout.canary.steps": [{"setWeight": 101}]},
        "spec.rollout.canary.steps[0].setWeight",
    ),
    # analysis
    Case(
        "analysis-interval",
        {"rollout": CANARY, "rollout.canary.analysis": {"interval": "30 seconds"}},
        "spec.rollout.canary.analysis.interval",
    ),
    Case(
        "success-rate-above-1",
        {"rollout": CANARY, "rollout.canary.analysis": {"successRate": {"min": 1.5}}},
        "spec.rollout.canary.analysis.successRate.min",
    ),
    Case(
        "custom-without-prometheus",
        {"rollout": CANARY, "rollout.canary.analysis": {"custom": [{"name": "x", "query": "up"}]}},
        "spec.rollout.canary.analysis.custom",
    ),
    Case(
        "provider-address",
        {
            "rollout": CANARY,
            "rollout.canary.analysis": {"provider": {"type": "prometheus", "address": "prom:9090"}},
        },
        "spec.rollout.canary.analysis.provider.address",
    ),
    Case(
        "latency-quantile",
        {"rollout": CANARY, "rollout.canary.analysis": {"latency": {"maxMs": 100, "quantile": 1}}},
        "spec.rollout.canary.analysis.latency.quantile",
    ),
    # trafficRouting
    Case(
        "gateway-without-parent",
        {"rollout": CANARY, ROUTING: {"type": "gatewayAPI"}},
        f"spec.{ROUTING}.parentRefs",
    ),
    Case(
        "parent-namespace",
        {
            "rollout": CANARY,
            ROUTING: {"type": "gatewayAPI", "parentRefs": [{"name": "gw", "namespace": "Bad_NS"}]},
        },
        f"spec.{ROUTING}.parentRefs[0].namespace",
    ),
    Case(
        "parent-twice",
        {
            "rollout": CANARY,
            ROUTING: {"type": "gatewayAPI", "parentRefs": [{"name": "gw"}, {"name": "gw"}]},
        },
        f"spec.{ROUTING}.parentRefs",
    ),
    Case(
        "hostname-uppercase",
        {"rollout": CANARY, ROUTING: {"hostnames": ["Models.Example.com"]}},
        f"spec.{ROUTING}.hostnames[0]",
    ),
]
# metadata.name: the API server's own rule for every object name.
NAMES = [
    Case("name-uppercase", {}, "metadata.name"),
    Case("name-too-long", {}, "metadata.name"),
    Case("name-underscore", {}, "metadata.name"),
]
BAD_NAMES = {"name-uppercase": "ResNet", "name-too-long": "r" * 254, "name-underscore": "res_net"}


def with_changes(changes: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = copy.deepcopy(value)
    return spec


def manifest(case: Case, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": BAD_NAMES.get(case.id, case.id), "namespace": namespace},
        "spec": with_changes(case.changes),
    }


@pytest.fixture(scope="module")
def bad_input_namespace(kubectl: Kubectl) -> Iterator[str]:
    """One namespace for every case: each one is refused, so they never meet."""
    name = f"e2e-bad-input-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false")


def test_the_table_covers_every_section() -> None:
    ids = [c.id for c in CASES + NAMES]
    assert len(ids) == len(set(ids)) >= 30
    sections = {re.sub(r"\[\d+\]", "", c.names).split(".")[1] for c in CASES + NAMES}
    assert sections >= {
        "model",
        "runtime",
        "resources",
        "placement",
        "scaling",
        "rollout",
        "replicas",
        "name",
    }
    paths = " ".join(c.names for c in CASES)
    for part in ("canary.steps", "canary.analysis", "trafficRouting"):
        assert part in paths, part


def test_the_good_manifest_is_accepted(kubectl: Kubectl, bad_input_namespace: str) -> None:
    good = manifest(Case("good", {}, ""), bad_input_namespace)
    kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(good))


@pytest.mark.parametrize("case", CASES + NAMES, ids=[c.id for c in CASES + NAMES])
def test_bad_manifest_is_refused_naming_the_field(
    kubectl: Kubectl, bad_input_namespace: str, case: Case
) -> None:
    doc = manifest(case, bad_input_namespace)
    result = kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
    said = (result.stderr + result.stdout).strip()
    assert result.returncode != 0, f"accepted: {said}"
    assert "Error from server:" not in said, f"a server error, not a refusal: {said}"
    assert case.names in said, f"the refusal does not name {case.names}: {said}"
