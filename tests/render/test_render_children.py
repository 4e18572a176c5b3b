"""Service, HPA, PDB, HTTPRoute and the full child set."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from render_builders import (
    OWNER,
    build_spec,
    canary_deployment,
    serving_plan,
    stable_plan,
    walk,
)

from gantry.api.plan import DeploymentPlan, Role, ServingPlan
from gantry.api.spec import ModelDeploymentSpec
from gantry.render import labels as lbl
from gantry.render.children import CHILD_KINDS, render_children
from gantry.render.hpa import DEFAULT_BEHAVIOR, quantity, render_hpa
from gantry.render.httproute import render_httproute
from gantry.render.pdb import render_pdb
from gantry.render.service import render_revision_service, render_service

GATEWAY = {
    "strategy": "canary",
    "canary": {
        "trafficRouting": {
            "type": "gatewayAPI",
            "parentRefs": [{"name": "edge", "namespace": "gateways", "sectionName": "https"}],
            "hostnames": ["resnet.example.com"],
        }
    },
}


def canary_plan(
    spec: ModelDeploymentSpec, weight: int, *, apply_stable: bool = True
) -> ServingPlan:
    """The first revision ("aaaaaaaaaa") as the stable, ``spec``'s revision as the canary."""
    stable = DeploymentPlan("resnet", "aaaaaaaaaa", Role.STABLE, 4, apply_template=apply_stable)
    canary = canary_deployment(spec, replicas=1)
    return ServingPlan(deployments=(stable, canary), canary_weight=weight)


# --- Services ---------------------------------------------------------------------------


def test_service_selects_every_revision() -> None:
    svc = render_service(OWNER, build_spec(runtime={"ports": {"http": 9000}}))
    assert svc["metadata"]["name"] == "resnet"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == lbl.selector_labels(OWNER)
    assert lbl.REVISION not in svc["spec"]["selector"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("http", 9000, "http"),
        ("grpc", 8001, "grpc"),
        ("metrics", 8002, "metrics"),
    ]


def test_revision_service_selects_one_deployment() -> None:
    spec = build_spec()
    plan = stable_plan(spec)
    svc = render_revision_service(OWNER, spec, plan)
    assert svc["metadata"]["name"] == f"resnet-{plan.revision}"
    assert svc["metadata"]["name"] != render_service(OWNER, spec)["metadata"]["name"]
    assert svc["spec"]["selector"] == {**lbl.selector_labels(OWNER), lbl.DEPLOYMENT: "resnet"}


# --- HPA ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        pytest.param(
            {"type": "cpu", "target": 70},
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            },
            id="cpu",
        ),
        pytest.param(
            {"type": "queueTimeMs", "target": 50},
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "nv_inference_queue_duration_ms"},
                    "target": {"type": "AverageValue", "averageValue": "50"},
                },
            },
            id="queueTimeMs",
        ),
        pytest.param(
            {"type": "inflight", "target": 2.5},
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "nv_inference_pending_request_count"},
                    "target": {"type": "AverageValue", "averageValue": "2500m"},
                },
            },
            id="inflight",
        ),
        pytest.param(
            {"type": "gpuUtilization", "target": 80},
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "nv_gpu_utilization"},
                    "target": {"type": "AverageValue", "averageValue": "80"},
                },
            },
            id="gpuUtilization",
        ),
    ],
)
def test_hpa_metric_types(metric: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = build_spec(scaling={"minReplicas": 1, "maxReplicas": 4, "metric": metric})
    hpa = render_hpa(OWNER, spec, "resnet-abc")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"] == [expected]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "resnet-abc",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)


def test_hpa_behavior_default_and_passthrough() -> None:
    spec = build_spec(scaling={"maxReplicas": 3})
    hpa = render_hpa(OWNER, spec, "d")
    assert hpa["spec"]["behavior"] == DEFAULT_BEHAVIOR
    assert hpa["spec"]["behavior"] is not DEFAULT_BEHAVIOR
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    custom = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    spec = build_spec(scaling={"maxReplicas": 3, "behavior": custom})
    assert render_hpa(OWNER, spec, "d")["spec"]["behavior"] == custom


@pytest.mark.parametrize(
    ("value", "text"), [(50, "50"), (50.0, "50"), (0.25, "250m"), (1.5, "1500m")]
)
def test_quantity(value: float, text: str) -> None:
    assert quantity(value) == text


# --- PDB ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "wanted"),
    [
        pytest.param({}, False, id="default-one-replica"),
        pytest.param({"replicas": 1}, False, id="fixed-1"),
        pytest.param({"replicas": 0}, False, id="fixed-0"),
        pytest.param({"replicas": 2}, True, id="fixed-2"),
        pytest.param({"scaling": {"minReplicas": 2, "maxReplicas": 2}}, True, id="min-2"),
        pytest.param({"scaling": {"minReplicas": 1, "maxReplicas": 2}}, True, id="autoscaled-1-2"),
        pytest.param(
            {"replicas": 1, "scaling": {"minReplicas": 1, "maxReplicas": 4}},
            True,
            id="autoscaled-wins",
        ),
    ],
)
def test_pdb_thresholds(sections: dict[str, Any], wanted: bool) -> None:
    pdb = render_pdb(OWNER, build_spec(**sections))
    assert (pdb is not None) is wanted
    if pdb is not None:
        assert pdb["spec"]["maxUnavailable"] == 1
        assert "minAvailable" not in pdb["spec"]
        assert pdb["spec"]["selector"]["matchLabels"] == lbl.selector_labels(OWNER)
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


# --- HTTPRoute ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "stable_w", "canary_w"), [(0, 100, 0), (10, 90, 10), (50, 50, 50), (100, 0, 100)]
)
def test_httproute_weights(weight: int, stable_w: int, canary_w: int) -> None:
    spec = build_spec(rollout=GATEWAY)
    plan = canary_plan(spec, weight)
    route = render_httproute(OWNER, spec, plan)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "edge",
            "namespace": "gateways",
            "sectionName": "https",
        }
    ]
    assert route["spec"]["hostnames"] == ["resnet.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"name": "resnet-aaaaaaaaaa", "port": 8000, "weight": stable_w},
        {"name": f"resnet-{plan.deployments[1].revision}", "port": 8000, "weight": canary_w},
    ]


def test_httproute_without_canary_sends_everything_to_stable() -> None:
    spec = build_spec(rollout=GATEWAY)
    route = render_httproute(OWNER, spec, serving_plan(spec))
    (rule,) = route["spec"]["rules"]
    assert [b["weight"] for b in rule["backendRefs"]] == [100]


def test_httproute_refuses_specs_without_gateway_routing() -> None:
    spec = build_spec()
    with pytest.raises(ValueError, match="gatewayAPI"):
        render_httproute(OWNER, spec, serving_plan(spec))
    with pytest.raises(ValueError, match="Deployment"):
        render_httproute(OWNER, build_spec(rollout=GATEWAY), ServingPlan(deployments=()))


# --- the full set ---------------------------------------------------------------------------


def kinds(children: list[dict[str, Any]]) -> list[str]:
    return [c["kind"] for c in children]


def test_fixed_replicas_children() -> None:
    spec = build_spec(replicas=3)
    children = render_children(OWNER, spec, serving_plan(spec, replicas=3))
    assert kinds(children) == ["Service", "Deployment", "PodDisruptionBudget"]
    # The size goes through /scale (render_scale), never the applied manifest.
    assert "replicas" not in children[1]["spec"]


def test_autoscaled_children_leave_replicas_to_the_hpa() -> None:
    spec = build_spec(scaling={"minReplicas": 1, "maxReplicas": 4})
    plan = serving_plan(spec, replicas=None)
    children = render_children(OWNER, spec, plan)
    assert kinds(children) == [
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ]
    assert "replicas" not in children[1]["spec"]
    assert children[2]["spec"]["scaleTargetRef"]["name"] == plan.deployments[0].name


def test_gateway_canary_children_in_apply_order() -> None:
    spec = build_spec(rollout=GATEWAY)
    children = render_children(OWNER, spec, canary_plan(spec, 10))
    assert kinds(children) == [
        "Service",
        "Service",
        "Service",
        "Deployment",
        "Deployment",
        "HTTPRoute",
    ]


def test_template_less_deployments_are_left_out() -> None:
    spec = build_spec(rollout=GATEWAY)
    plan = canary_plan(spec, 10, apply_stable=False)
    children = render_children(OWNER, spec, plan)
    deployments = [c["metadata"]["name"] for c in children if c["kind"] == "Deployment"]
    assert deployments == [plan.deployments[1].name]
    # ... but their Service still exists, since the route sends them traffic.
    services = [c["metadata"]["name"] for c in children if c["kind"] == "Service"]
    assert plan.deployments[0].name in services


def test_child_kinds_cover_everything_rendered() -> None:
    spec = build_spec(scaling={"maxReplicas": 3}, rollout=GATEWAY)
    plan = ServingPlan(
        deployments=canary_plan(spec, 10).deployments, autoscale_target="x", canary_weight=10
    )
    rendered = {(c["apiVersion"], c["kind"]) for c in render_children(OWNER, spec, plan)}
    # The autoscaler's kind depends on the provider: KEDA's ScaledObject replaces the HPA.
    keda = build_spec(
        scaling={
            "maxReplicas": 3,
            "provider": "keda",
            "metric": {"type": "inflight", "target": 4},
            "keda": {"serverAddress": "http://prometheus:9090"},
        },
        rollout=GATEWAY,
    )
    rendered |= {(c["apiVersion"], c["kind"]) for c in render_children(OWNER, keda, plan)}
    assert rendered == {(k.api_version, k.kind) for k in CHILD_KINDS}
    assert all(
        c["metadata"]["ownerReferences"][0]["controller"]
        for c in render_children(OWNER, spec, plan)
    )


@pytest.mark.parametrize(
    "sections",
    [
        pytest.param({}, id="plain"),
        pytest.param(
            {
                "resources": {"gpu": {"product": "NVIDIA-H100-80GB-HBM3"}},
                "placement": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "z", "operator": "Exists"}]}
                                ]
                            }
                        }
                    },
                    "tolerations": [{"key": "t", "operator": "Exists"}],
                    "nodeSelector": {"a": "b"},
                },
                "scaling": {
                    "maxReplicas": 3,
                    "behavior": {
                        "scaleDown": {
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]
                        }
                    },
                },
                "rollout": GATEWAY,
            },
            id="everything",
        ),
    ],
)
def test_renderers_never_mutate_or_alias_their_inputs(sections: dict[str, Any]) -> None:
    spec = build_spec(**sections)
    before = copy.deepcopy(spec.model_dump(mode="json", by_alias=True))
    plan = ServingPlan(
        deployments=canary_plan(spec, 10).deployments, autoscale_target="x", canary_weight=10
    )
    plan_before = copy.deepcopy(plan)
    children = render_children(OWNER, spec, plan)
    assert spec.model_dump(mode="json", by_alias=True) == before
    assert plan == plan_before
    # No container object appears twice (YAML anchors, shared mutation) ...
    seen: set[int] = set()
    for node in walk(children):
        assert id(node) not in seen, node
        seen.add(id(node))
    # ... and scribbling over the output leaves the spec alone.
    for node in walk(children):
        if isinstance(node, dict):
            node["scribbled"] = True
        elif isinstance(node, list):
            node.append("scribbled")
    assert spec.model_dump(mode="json", by_alias=True) == before
