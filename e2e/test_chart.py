"""The Helm chart on the local control plane, and the operator run with exactly its RBAC.

The chart's Deployment lands on a KWOK node, where no container ever runs (there is no image
registry here either). So the operator runs as a local process with the chart's identity: a
TokenRequest token of the chart's ServiceAccount in a kubeconfig that holds nothing else. Under
that identity it takes a ModelDeployment to Ready, rolls out a healthy canary to promotion and a
faulty one to rollback, and sees it deleted; ``kubectl auth can-i`` shows what it cannot do.

During those canaries a real Prometheus scrapes the operator and the Triton servers, and every
dashboard panel and alert expression the chart ships is evaluated and must return data.

Model namespaces share a prefix of their own (not the session operator's ``e2e....-*``), so the
session's operator never acts on them and this module's operator acts on nothing else.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.backing import PodBacker
from e2e.canary_fixtures import prometheus, toy_weights
from e2e.chart import (
    CHART,
    HELM_MISSING,
    KUBECONFORM_MISSING,
    VALUE_SETS,
    Helm,
    kubeconform,
    service_account_kubeconfig,
    write_schemas,
)
from e2e.cluster import Kubectl
from e2e.conftest import OPERATOR_ENV
from e2e.operator_proc import OperatorProcess
from e2e.prometheus_proc import PrometheusProcess
from e2e.test_canary import (
    NAME,
    PROMOTE_STEPS,
    ROLLBACK_STEPS,
    Scenario,
    analysis_spec,
    backing,
    canary_md,
    canary_revision,
    prometheus_provider,
    promoted_to,
)
from e2e.test_operator import condition, cpu_model
from e2e.waiting import wait_for
from tests.support.runtime_proc import requires_runtime

__all__ = ["prometheus", "toy_weights"]  # session fixtures used here

pytestmark = [
    pytest.mark.skipif(HELM_MISSING is not None, reason=HELM_MISSING or ""),
    pytest.mark.timeout(600),
]

PREFIX = f"gchart{uuid.uuid4().hex[:4]}"
ALERTS = CHART / "files" / "prometheus" / "gantry-alerts.yaml"
DASHBOARD = CHART / "files" / "grafana" / "gantry-modeldeployment.json"
# Prometheus Operator kinds: their CRDs are not installed on the local control plane, so no
# schema exists for them here (tests/chart checks their content against the shipped files).
NO_SCHEMA_HERE = ("ServiceMonitor", "PodMonitor", "PrometheusRule")


def _ns(kubectl: Kubectl, suffix: str) -> str:
    name = f"{PREFIX}-{suffix}"
    kubectl("create", "namespace", name)
    return name


@dataclass
class Release:
    """One helm release of the chart and the identity it creates."""

    helm: Helm
    kubectl: Kubectl
    name: str
    namespace: str

    @property
    def fullname(self) -> str:
        return f"{self.name}-gantry"

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def install(self, values: dict[str, Any], *extra: str) -> str:
        return self.helm(
            "upgrade", "--install", self.name, str(CHART), "-n", self.namespace,
            "--wait", "--timeout=120s", "-f", "-", *extra,
            input=yaml.safe_dump(values),
        ).stdout  # fmt: skip

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        ns = ["-n", namespace] if namespace else ["--all-namespaces"]
        result = self.kubectl(
            "auth", "can-i", verb, resource, f"--as={self.subject}", *ns, check=False
        )
        return result.stdout.strip() == "yes"

    def kubeconfig(self, path: Path) -> Path:
        return service_account_kubeconfig(self.kubectl, self.namespace, self.fullname, path)


@contextlib.contextmanager
def release(helm: Helm, kubectl: Kubectl, suffix: str) -> Iterator[Release]:
    namespace = _ns(kubectl, suffix)
    rel = Release(helm, kubectl, f"{PREFIX}-{suffix}", namespace)
    try:
        yield rel
    finally:
        with contextlib.suppress(Exception):
            helm("uninstall", rel.name, "-n", namespace, "--wait", "--timeout=60s")
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def helm(kubeconfig: Path | None) -> Helm:
    return Helm(kubeconfig)


@pytest.fixture(scope="module")
def model_namespaces(kubectl: Kubectl) -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    for name in created:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def new_model_namespace(kubectl: Kubectl, created: list[str], suffix: str) -> str:
    name = _ns(kubectl, suffix)
    created.append(name)
    return name


def operator_log_clean(operator: OperatorProcess, *, allow: str = "") -> None:
    """No request of the operator was refused (``allow``: a regex of refusals expected).

    Namespaced, kopf still tries to list namespaces and watch CRDs cluster-wide, retries
    each refusal nine times, then falls back to the namespaces it was given and rescans at
    restart. Telling kopf not to scan in namespaced mode (settings.scanning.disabled) would
    silence that; it is operator code, not the chart's.
    """
    log = operator.log_path.read_text(errors="replace")
    denied = [
        line
        for line in log.splitlines()
        if re.search(r"[Ff]orbidden|\b403\b", line)
        and not (allow and re.search(allow, line))
        # Not RBAC: the API server refuses new objects (an Event) in a namespace being
        # deleted, which the test's own cleanup races.
        and "because it is being terminated" not in line
    ]
    assert not denied, "the chart's RBAC refused the operator:\n" + "\n".join(denied[:20])


# -- offline checks -----------------------------------------------------------------------------


@pytest.mark.skipif(KUBECONFORM_MISSING is not None, reason=KUBECONFORM_MISSING or "")
def test_templates_validate_against_the_live_api_servers_schemas(
    kubectl: Kubectl, helm: Helm, tmp_path: Path
) -> None:
    openapi = json.loads(kubectl("get", "--raw", "/openapi/v2", timeout=60).stdout)
    crd = CHART / "crds" / "serving.gantry.dev_modeldeployments.yaml"
    count = write_schemas(openapi, [crd], tmp_path / "schemas")
    assert count > 100
    for name, values in VALUE_SETS.items():
        rendered = helm(
            "template", "gantry", str(CHART), "--include-crds", "-n", "gantry-system", "-f", "-",
            input=yaml.safe_dump(values),
        ).stdout  # fmt: skip
        report = kubeconform(tmp_path / "schemas", rendered, skip=NO_SCHEMA_HERE)
        assert "Invalid: 0, Errors: 0" in report, (name, report)
        print(f"\n[kubeconform {name}] {report.strip()}")
    # The examples validate against the chart's CRD schema too; a typo does not.
    for example in sorted((CHART.parents[1] / "examples").glob("*.yaml")):
        kubeconform(tmp_path / "schemas", example.read_text())
    broken = cpu_model("typo")
    broken["spec"]["resources"]["gpus"] = 1
    with pytest.raises(AssertionError, match="gpus"):
        kubeconform(tmp_path / "schemas", yaml.safe_dump(broken))


# -- install, upgrade, uninstall ----------------------------------------------------------------


def test_install_upgrade_uninstall_and_what_remains(helm: Helm, kubectl: Kubectl) -> None:
    with release(helm, kubectl, "life") as rel:
        notes = rel.install({"namespacePatterns": [f"{PREFIX}-nothing-*"]})
        assert "It watches ModelDeployments in namespaces matching" in notes
        deploy = kubectl.json("get", "deployment", rel.fullname, "-n", rel.namespace)
        assert deploy["status"].get("readyReplicas") == 1
        env = {
            e["name"]: e.get("value")
            for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["GANTRY_RESYNC_SECONDS"] == "600"

        rel.install({"namespacePatterns": [f"{PREFIX}-nothing-*"], "operator": {"resyncSeconds": 9},
                     "leaderElection": {"enabled": True}})  # fmt: skip
        deploy = kubectl.json("get", "deployment", rel.fullname, "-n", rel.namespace)
        env = {
            e["name"]: e.get("value")
            for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["GANTRY_RESYNC_SECONDS"] == "9"
        assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
        assert rel.can("update", "leases/gantry-operator", rel.namespace)
        assert not rel.can("update", "leases/someone-elses", rel.namespace)
        history = helm("history", rel.name, "-n", rel.namespace, "-o", "json").stdout
        assert [h["revision"] for h in json.loads(history)] == [1, 2]

        helm("uninstall", rel.name, "-n", rel.namespace, "--wait", "--timeout=60s")
        left = kubectl("get", f"clusterrole/{rel.fullname}", check=False)
        assert left.returncode != 0, "the ClusterRole outlived the release"
        gone = kubectl(
            "get", "deploy,sa,svc,role,rolebinding,configmap", "-n", rel.namespace,
            "-l", f"app.kubernetes.io/instance={rel.name}", "-o", "name",
        )  # fmt: skip
        assert gone.stdout.strip() == "", gone.stdout
        # Helm never deletes what crds/ installed: every ModelDeployment survives an uninstall.
        kubectl("get", "crd", "modeldeployments.serving.gantry.dev")


# -- RBAC proven by use -------------------------------------------------------------------------


def query(prom: PrometheusProcess, expr: str) -> list[dict[str, Any]]:
    return prom.query(expr, timeout=10.0)


def panel_queries(namespace: str, name: str) -> dict[str, str]:
    """Every panel target and template variable of the dashboard, as Grafana would send it."""
    dashboard = json.loads(DASHBOARD.read_text())
    out: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            out[f"{panel['title']} [{target['refId']}]"] = (
                target["expr"]
                .replace("$namespace", namespace)
                .replace("$modeldeployment", name)
                .replace("$__rate_interval", "30s")
                .replace("$__range", "10m")
            )
    # label_values(metric{...}, label) is what the variables' drop-downs list.
    for var in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", var.get("definition", ""))
        if match:
            metric = match.group(1).replace("$namespace", namespace)
            out[f"variable {var['name']}"] = f"group by ({match.group(2)}) ({metric})"
    return out


def alert_exprs() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return {r["alert"]: r["expr"] for r in rules}


def wait_data(prom: PrometheusProcess, expr: str, *, what: str, timeout: float = 45) -> list[Any]:
    return wait_for(lambda: query(prom, expr) or None, timeout=timeout, interval=1.0, what=what)


@requires_runtime
@pytest.mark.runtime
def test_operator_with_the_charts_identity_runs_canaries_and_feeds_dashboard_and_alerts(
    helm: Helm,
    kubectl: Kubectl,
    prometheus: PrometheusProcess,
    toy_weights: Path,
    model_namespaces: list[str],
    tmp_path: Path,
) -> None:
    with release(helm, kubectl, "op") as rel:
        rel.install({"namespacePatterns": [f"{PREFIX}-m*"]})
        identity = rel.kubeconfig(tmp_path / "sa-kubeconfig")
        # The token alone: an admin credential in the file would hide a missing rule.
        assert "client-certificate" not in identity.read_text()

        # What the identity cannot do, though an operator compromised would want to.
        ns = new_model_namespace(kubectl, model_namespaces, "m1")
        for verb, resource in [
            ("get", "secrets"), ("list", "secrets"), ("update", "deployments"),
            ("create", "pods"), ("delete", "pods"), ("create", "modeldeployments"),
            ("delete", "modeldeployments"), ("update", "modeldeployments/status"),
            ("list", "configmaps"), ("create", "roles"), ("*", "*"),
        ]:  # fmt: skip
            assert not rel.can(verb, resource, ns), f"{rel.subject} may {verb} {resource}"
        assert not rel.can("create", "clusterrolebindings")
        assert not rel.can("delete", "namespaces")
        assert not rel.can("patch", "nodes")
        assert rel.can("patch", "deployments", ns)
        assert rel.can("patch", "modeldeployments/status", ns)

        operator = OperatorProcess(
            tmp_path / "operator.log", kubeconfig=identity, env=OPERATOR_ENV,
            namespaces=[f"{PREFIX}-m*"],
        )  # fmt: skip
        operator.start()
        prometheus.write_targets(
            f"{PREFIX}-operator", {f"127.0.0.1:{operator.metrics_port}": {"job": "gantry-operator"}}
        )
        models = {
            1: backing(toy_weights, "healthy", 1),
            2: backing(toy_weights, "healthy", 2),
            3: backing(toy_weights, "fails_on_traffic", 3),
        }
        analysis = analysis_spec(prometheus_provider(prometheus), latency={"maxMs": 250})
        panels = panel_queries(ns, NAME)
        alerts = alert_exprs()
        evaluated: dict[str, int] = {}
        try:
            with Scenario(kubectl, ns, tmp_path, models, operator, prometheus=prometheus) as sc:
                # create -> Ready
                sc.deploy_stable(canary_md(1, PROMOTE_STEPS, analysis))
                sc.start_load()
                # edit -> a healthy canary, promoted
                sc.kubectl.apply(canary_md(2, PROMOTE_STEPS, analysis), namespace=ns)
                revision = ""

                def promoted(md: dict[str, Any]) -> bool:
                    nonlocal revision
                    revision = canary_revision(md) or revision
                    canary = md["status"].get("canary") or {}
                    if (
                        canary.get("phase") == "Progressing"
                        and "GantryRolloutStuck" not in evaluated
                    ):
                        # Mid-canary: the stuck-rollout signal is there (it fires after 30m).
                        found = query(prometheus, alerts["GantryRolloutStuck"])
                        if found:
                            evaluated["GantryRolloutStuck"] = len(found)
                    return promoted_to(lambda: revision)(md)

                sc.wait_md(promoted, timeout=150, what="canary v2 promoted")
                assert "GantryRolloutStuck" in evaluated, "no Progressing phase seen by Prometheus"

                # a faulty canary, rolled back
                sc.kubectl.apply(canary_md(3, ROLLBACK_STEPS, analysis), namespace=ns)
                md = sc.wait_md(
                    lambda m: (m["status"].get("canary") or {}).get("phase") == "Aborted",
                    timeout=120,
                    what="canary v3 Aborted",
                )
                assert md["status"]["canary"]["reason"] == "AnalysisFailed"
                assert condition(md, "Stalled")["status"] == "True"
                for alert in ("GantryCanaryAborted", "GantryModelNotReady"):
                    evaluated[alert] = len(wait_data(prometheus, alerts[alert], what=alert))

                # Every panel, with the stable serving and load flowing.
                time.sleep(3)
                empty = {
                    title: expr for title, expr in panels.items() if not query(prometheus, expr)
                }
                assert not empty, f"dashboard queries without data: {json.dumps(empty, indent=1)}"
                operator_log_clean(operator)
                refused = [st for _, st in sc.md_history() if "forbidden" in json.dumps(st)]
                assert not refused, f"the chart's RBAC refused a write: {refused[:1]}"
                if sc.load is not None:
                    sc.load.check()
                # delete: garbage collection takes the children, the operator forgets it.
                sc.delete_md()

                def collected() -> bool:
                    return not kubectl(
                        "get", "deploy,svc,pdb", "-n", ns, "-o", "name"
                    ).stdout.strip()

                wait_for(lambda: collected() or None, timeout=60, what="children collected")

            # A rule taken away shows as reconcile errors (and proves the rule is needed).
            role = kubectl.json("get", "clusterrole", rel.fullname)
            kept = [r for r in role["rules"] if r["resources"] != ["deployments"]]
            assert len(kept) == len(role["rules"]) - 1
            kubectl("patch", "clusterrole", rel.fullname, "--type=json", "-p",
                    json.dumps([{"op": "replace", "path": "/rules", "value": kept}]))  # fmt: skip
            ns2 = new_model_namespace(kubectl, model_namespaces, "m2")
            kubectl.apply(
                cpu_model("denied", replicas=1, resources={"cpu": "100m", "memory": "256Mi"}),
                namespace=ns2,
            )
            evaluated["GantryReconcileErrors"] = len(
                wait_data(
                    prometheus, alerts["GantryReconcileErrors"], what="reconcile errors", timeout=60
                )
            )
            denied = kubectl("get", "md", "denied", "-n", ns2, "-o", "json").stdout
            assert "forbidden" in (operator.log_path.read_text() + denied).lower()
            # helm upgrade puts the rule back (three-way merge of the live object).
            rel.install({"namespacePatterns": [f"{PREFIX}-m*"]})
            restored = kubectl.json("get", "clusterrole", rel.fullname)["rules"]
            assert any(r["resources"] == ["deployments"] for r in restored)
            kubectl("delete", "md", "denied", "-n", ns2, "--wait=true", "--timeout=60s")
        finally:
            status = operator.stop()
        assert status == 0, operator.tail()
        evaluated["GantryOperatorDown"] = len(
            wait_data(prometheus, alerts["GantryOperatorDown"], what="operator down", timeout=30)
        )
        prometheus.remove_targets(f"{PREFIX}-operator")
        assert set(evaluated) == set(alerts), evaluated
        print(
            f"\n[chart-rbac] {len(panels)} dashboard queries returned data; "
            f"alerts with data: {evaluated}"
        )


@requires_runtime
@pytest.mark.runtime
def test_namespaced_release_takes_its_namespace_to_ready_and_nothing_else(
    helm: Helm, kubectl: Kubectl, toy_weights: Path, model_namespaces: list[str], tmp_path: Path
) -> None:
    ns = new_model_namespace(kubectl, model_namespaces, "mns")
    other = new_model_namespace(kubectl, model_namespaces, "mother")
    with release(helm, kubectl, "nsd") as rel:
        rel.install({"watchNamespaces": [ns]})
        assert kubectl("get", f"clusterrole/{rel.fullname}", check=False).returncode != 0
        assert rel.can("patch", "deployments", ns)
        assert not rel.can("patch", "deployments", other)
        assert not rel.can("list", "modeldeployments", other)
        operator = OperatorProcess(
            tmp_path / "operator.log", kubeconfig=rel.kubeconfig(tmp_path / "sa"),
            env=OPERATOR_ENV, namespaces=[ns],
        )  # fmt: skip
        model = backing(toy_weights, "healthy", 1)
        operator.start()
        try:
            with PodBacker(kubectl, ns, lambda _pod: model, tmp_path / "pods"):
                md = canary_md(1, PROMOTE_STEPS, analysis_spec({"type": "scrape"}))
                kubectl.apply(md, namespace=ns)
                kubectl("wait", "--for=condition=Ready", f"md/{NAME}", "-n", ns, "--timeout=120s",
                        timeout=130)  # fmt: skip
                scans = r"cannot (list|watch) resource \"(namespaces|customresourcedefinitions)\""
                operator_log_clean(operator, allow=scans)
                kubectl("delete", "md", NAME, "-n", ns, "--wait=true", "--timeout=60s")
        finally:
            assert operator.stop() == 0, operator.tail()
