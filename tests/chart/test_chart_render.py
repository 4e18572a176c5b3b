"""The chart as rendered by ``helm template``: files it copies, RBAC shape, values refused.

No cluster: helm only (built with the local control plane into ``.cluster/bin``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.chart import CHART, HELM_MISSING, VALUE_SETS, Helm, HelmError

ROOT = Path(__file__).resolve().parents[2]
requires_helm = pytest.mark.skipif(HELM_MISSING is not None, reason=HELM_MISSING or "")


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def test_chart_crd_is_the_generated_crd_byte_for_byte() -> None:
    # Byte for byte: `make crd` regenerates crds/, and the chart ships exactly that file.
    chart_crd = CHART / "crds" / "serving.gantry.dev_modeldeployments.yaml"
    assert chart_crd.read_bytes() == (ROOT / "crds" / chart_crd.name).read_bytes(), (
        "charts/gantry/crds differs from crds/: cp crds/*.yaml charts/gantry/crds/"
    )


def test_chart_argocd_files_are_the_repository_ones() -> None:
    source = ROOT / "argocd" / "serving.gantry.dev" / "ModelDeployment"
    copies = sorted(
        p.relative_to(CHART / "files" / "argocd")
        for p in (CHART / "files" / "argocd").rglob("*.lua")
    )
    originals = sorted(p.relative_to(source) for p in source.rglob("*.lua"))
    assert copies == originals
    for rel in copies:
        assert (CHART / "files" / "argocd" / rel).read_bytes() == (source / rel).read_bytes(), rel


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


@requires_helm
def test_helm_lint_strict_passes_for_every_values_set(tmp_path: Path) -> None:
    for name, values in VALUE_SETS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        out = Helm()("lint", "--strict", str(CHART), "-f", str(path)).stdout
        assert "0 chart(s) failed" in out, (name, out)


@requires_helm
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rbac_has_no_wildcards_no_secrets_and_only_known_verbs(name: str) -> None:
    objs = Helm().template(VALUE_SETS[name])
    roles = by_kind(objs, "ClusterRole") + by_kind(objs, "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["metadata"]["name"], rule)
            assert "secrets" not in rule["resources"], rule
            assert set(rule["verbs"]) <= {
                "get",
                "list",
                "watch",
                "create",
                "update",
                "patch",
                "delete",
            }
            # create only where something is posted (events, the Lease) or applied: server-side
            # apply of a new object needs create beside patch.
            if "create" in rule["verbs"] and rule["resources"] not in (["events"], ["leases"]):
                assert "patch" in rule["verbs"], rule


@requires_helm
def test_namespaced_mode_grants_nothing_cluster_wide() -> None:
    objs = Helm().template(VALUE_SETS["namespaced"])
    assert not by_kind(objs, "ClusterRole")
    assert not by_kind(objs, "ClusterRoleBinding")
    roles = by_kind(objs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml", "ml-staging"]
    (deploy,) = by_kind(objs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=ml" in args
    assert "--namespace=ml-staging" in args


@requires_helm
def test_namespaces_are_listed_only_for_patterns() -> None:
    def namespace_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
        (role,) = by_kind(Helm().template(values), "ClusterRole")
        return [r for r in role["rules"] if "namespaces" in r["resources"]]

    assert namespace_rules(VALUE_SETS["defaults"]) == []
    assert namespace_rules(VALUE_SETS["patterns"]) == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
    ]


@requires_helm
def test_operator_pod_is_restricted_and_read_only() -> None:
    (deploy,) = by_kind(Helm().template({}), "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["image"] == "ghcr.io/gantry-dev/gantry-operator:0.1.0"  # appVersion
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 8080,
        "health": 8081,
    }
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}


@requires_helm
def test_leader_election_adds_a_lease_role_in_the_release_namespace() -> None:
    objs = Helm().template(VALUE_SETS["everything"])
    (lease_role,) = [
        r for r in by_kind(objs, "Role") if r["metadata"]["name"].endswith("-leader-election")
    ]
    assert lease_role["metadata"]["namespace"] == "gantry-system"
    assert lease_role["rules"][0]["resourceNames"] == ["gantry-operator"]
    assert not [r for r in by_kind(Helm().template({}), "Role")]


def _env(deploy: dict[str, Any]) -> dict[str, Any]:
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@requires_helm
@pytest.mark.parametrize(
    ("values", "elected"),
    [
        ({}, False),
        ({"replicaCount": 2}, True),  # more than one replica: on without being asked
        ({"leaderElection": {"enabled": True}}, True),
        ({"replicaCount": 1, "leaderElection": {"enabled": False}}, False),
    ],
)
def test_leader_election_follows_the_replica_count(values: dict[str, Any], elected: bool) -> None:
    (deploy,) = by_kind(Helm().template(values), "Deployment")
    env = _env(deploy)
    assert ("GANTRY_LEADER_ELECTION" in env) is elected
    assert deploy["spec"]["strategy"]["type"] == ("RollingUpdate" if elected else "Recreate")
    # Every replica names itself after its pod: the Lease holder and the User-Agent.
    assert env["GANTRY_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["GANTRY_RESYNC_SECONDS"] == "600"


@requires_helm
def test_prometheus_rule_and_dashboard_carry_the_files() -> None:
    objs = Helm().template(VALUE_SETS["everything"])
    (rule,) = by_kind(objs, "PrometheusRule")
    alerts = yaml.safe_load((CHART / "files" / "prometheus" / "gantry-alerts.yaml").read_text())
    assert rule["spec"] == alerts
    dashboards = [
        c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    (dashboard,) = dashboards
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    text = (CHART / "files" / "grafana" / "gantry-modeldeployment.json").read_text()
    assert dashboard["data"]["gantry-modeldeployment.json"] == text.rstrip("\n")


@requires_helm
def test_argocd_snippet_holds_the_health_check_and_every_action() -> None:
    objs = Helm().template(VALUE_SETS["everything"])
    (cm,) = [
        c
        for c in by_kind(objs, "ConfigMap")
        if c["metadata"]["name"].endswith("-argocd-customizations")
    ]
    assert cm["metadata"]["namespace"] == "argocd"
    source = ROOT / "argocd" / "serving.gantry.dev" / "ModelDeployment"
    health = cm["data"]["resource.customizations.health.serving.gantry.dev_ModelDeployment"]
    assert health == (source / "health.lua").read_text()
    actions = yaml.safe_load(
        cm["data"]["resource.customizations.actions.serving.gantry.dev_ModelDeployment"]
    )
    assert actions["discovery.lua"] == (source / "actions" / "discovery.lua").read_text()
    names = {d["name"]: d["action.lua"] for d in actions["definitions"]}
    assert set(names) == {"promote", "promote-step", "abort", "pause", "resume"}
    for name, lua in names.items():
        assert lua == (source / "actions" / name / "action.lua").read_text(), name


# Bad values and the message helm prints: each names the field.
REFUSED = [
    ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "/leaderElection/enabled"),
    ({"watchNamespaces": ["ml"], "namespacePatterns": ["x-*"]}, "/namespacePatterns"),
    ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"ports": {"metrics": 80, "health": 8081}}, "/ports/metrics"),
    ({"ports": {"metrics": 8080, "health": 8080}}, "ports.metrics and ports.health must differ"),
    ({"operator": {"prometheusUrl": "prometheus:9090"}}, "/operator/prometheusUrl"),
    ({"operator": {"resyncSeconds": 0}}, "/operator/resyncSeconds"),
    ({"serviceMonitor": {"enabled": True, "interval": "often"}}, "/serviceMonitor/interval"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    (
        {"leaderElection": {"enabled": True, "renewDeadlineSeconds": 15}},
        "renewDeadlineSeconds must be less than leaderElection.leaseDurationSeconds",
    ),
    (
        {"serviceMonitor": {"enabled": True}, "metricsService": {"enabled": False}},
        "serviceMonitor.enabled needs metricsService.enabled=true",
    ),
]


@requires_helm
@pytest.mark.parametrize(("values", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_bad_values_are_refused_naming_the_field(values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmError) as caught:
        Helm().template(values)
    assert message in caught.value.stderr, caught.value.stderr
