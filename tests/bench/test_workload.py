"""The bench's objects and the pure readings it takes of the cluster's answers."""

from __future__ import annotations

from typing import Any

import pytest

from bench.operator.cluster import _flow_schema, bench_node, token_kubeconfig
from bench.operator.procfs import parse_stat_cpu
from bench.operator.workload import (
    EDIT_ENV,
    edit_patch,
    model_deployment,
    noise_pod,
    owner_name,
    reconciled,
    template_marker,
)
from gantry.api.spec import KIND, ModelDeploymentSpec


@pytest.mark.parametrize("canary", [False, True])
def test_bench_model_deployments_are_valid_specs(canary: bool) -> None:
    md = model_deployment("op-0001", "bench-x", "bench-x", canary=canary)
    spec = ModelDeploymentSpec.model_validate(md["spec"])
    assert spec.replicas == 1
    assert spec.placement.node_selector == {"bench.gantry.dev/run": "bench-x"}
    assert (spec.rollout.canary is not None) is canary


def test_an_edit_is_a_valid_spec_change_of_the_pod_template() -> None:
    md = model_deployment("op-0001", "bench-x", "bench-x")
    edited = {**md["spec"], "runtime": edit_patch("e7")["spec"]["runtime"]}
    spec = ModelDeploymentSpec.model_validate(edited)
    assert [(e.name, e.value) for e in spec.runtime.env] == [(EDIT_ENV, "e7")]


def test_noise_pods_are_bound_to_the_bench_node_and_tolerate_it() -> None:
    pod = noise_pod("noise-0001", "bench-x-noise-0", "bench-x-node", "bench-x")
    node = bench_node("bench-x-node", "bench-x")
    assert pod["spec"]["nodeName"] == node["metadata"]["name"]
    (taint,) = node["spec"]["taints"]
    (toleration,) = pod["spec"]["tolerations"]
    assert (toleration["key"], toleration["effect"]) == (taint["key"], taint["effect"])
    room = node["status"]["allocatable"]
    assert (room["pods"], room["cpu"]) == ("20000", "100000")  # 1,000 pods of 1 CPU fit


@pytest.mark.parametrize(
    ("meta", "status", "expected"),
    [
        ({"generation": 2}, {"observedGeneration": 2, "stable": {"revision": "a"}}, True),
        ({"generation": 3}, {"observedGeneration": 2, "stable": {"revision": "a"}}, False),
        ({"generation": 1}, {"observedGeneration": 1}, False),  # nothing serves yet
        ({"generation": 1}, None, False),
    ],
)
def test_reconciled(meta: dict[str, Any], status: dict[str, Any] | None, expected: bool) -> None:
    assert reconciled({"metadata": meta, "status": status}) is expected


def deployment(env: list[dict[str, str]] | None, refs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "triton"}
    if env is not None:
        container["env"] = env
    return {
        "metadata": {"ownerReferences": refs},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


CONTROLLER = {"kind": KIND, "name": "op-0001", "controller": True}


@pytest.mark.parametrize(
    ("dep", "marker", "owner"),
    [
        (deployment([{"name": EDIT_ENV, "value": "e3"}], [CONTROLLER]), "e3", "op-0001"),
        (deployment([{"name": "OTHER", "value": "x"}], [CONTROLLER]), None, "op-0001"),
        (deployment(None, [{**CONTROLLER, "controller": False}]), None, None),
        (deployment(None, [{**CONTROLLER, "kind": "ReplicaSet"}]), None, None),
        ({"metadata": {}, "spec": {}}, None, None),
    ],
)
def test_template_marker_and_owner(
    dep: dict[str, Any], marker: str | None, owner: str | None
) -> None:
    assert template_marker(dep) == marker
    assert owner_name(dep) == owner


def test_token_kubeconfig_keeps_the_current_cluster_and_swaps_the_user() -> None:
    near = {"server": "https://127.0.0.1:1", "certificate-authority-data": "Q0E="}
    admin: dict[str, Any] = {
        "current-context": "local",
        "contexts": [
            {"name": "other", "context": {"cluster": "far", "user": "u"}},
            {"name": "local", "context": {"cluster": "near", "user": "admin"}},
        ],
        "clusters": [
            {"name": "far", "cluster": {"server": "https://far:6443"}},
            {"name": "near", "cluster": near},
        ],
        "users": [{"name": "admin", "user": {"client-certificate-data": "x"}}],
    }
    config = token_kubeconfig(admin, "tok")
    assert config["clusters"][0]["cluster"] == near
    assert config["users"] == [{"name": "bench", "user": {"token": "tok"}}]


def test_flow_schema_matches_only_its_service_account_and_goes_to_exempt() -> None:
    schema = _flow_schema("bench-x-operator", "bench-x", "operator")
    (rule,) = schema["spec"]["rules"]
    assert rule["subjects"] == [
        {"kind": "ServiceAccount", "serviceAccount": {"name": "operator", "namespace": "bench-x"}}
    ]
    assert schema["spec"]["priorityLevelConfiguration"] == {"name": "exempt"}
    assert schema["spec"]["matchingPrecedence"] > 1  # never before the mandatory exempt schema


@pytest.mark.parametrize(
    ("stat", "ticks", "expected"),
    [
        ("42 (python3) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 4", 100, 2.0),
        ("42 (gantry run (x)) R 1 2 3 4 5 6 7 8 9 10 7 3 0 0 20 0 4", 10, 1.0),
    ],
)
def test_parse_stat_cpu_counts_after_the_command_name(
    stat: str, ticks: int, expected: float
) -> None:
    assert parse_stat_cpu(stat, ticks) == expected
