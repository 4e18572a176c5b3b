"""``scaling.provider: keda``: what Gantry renders, judged by the real API server (and KEDA).

* The scaling rules' CEL (in the CRD) and their pydantic twins give the same answer on every row
  of ``tests/api/scaling_rules.py``, the API server evaluating the CEL itself.
* With KEDA's CRDs installed (``e2e.keda``: v2.21.0, pinned in ``e2e/keda/tools/go.mod``), the
  session operator turns ModelDeployments with provider keda into ScaledObjects that the API
  server accepts under KEDA's own schema, holding exactly what Gantry rendered, and no HPA
  of Gantry's beside them; ``status.scaling`` says KEDA has not reported yet (no KEDA runs).
* Opt-in (``GANTRY_E2E_KEDA_OPERATOR=1``, a heavy build; see e2e/keda/README.md): KEDA's operator,
  limited to the test's namespace, makes its HPA from Gantry's ScaledObject, its Prometheus
  trigger answered by a real Prometheus, and Gantry copies the ScaledObject's conditions into
  ``status.scaling``.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest

from e2e.canary_fixtures import prometheus
from e2e.cluster import Kubectl
from e2e.keda import binaries, certs, install_crds, operator_skip_reason
from e2e.keda.operator import KedaOperator
from e2e.operator_proc import OperatorProcess
from e2e.prometheus_proc import PrometheusProcess
from e2e.test_keda_operator import get
from e2e.waiting import wait_for
from gantry.api.spec import API_VERSION, KIND
from gantry.preview import preview_children
from tests.api.scaling_rules import CASES, RuleCase

__all__ = ["prometheus"]  # a fixture, imported for its name

pytestmark = [pytest.mark.usefixtures("crd_installed"), pytest.mark.timeout(300)]

PROMETHEUS = "http://prometheus.monitoring.svc:9090"
WAIT_S = 60.0


def model_deployment(name: str, namespace: str, scaling: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "tiny", "uri": "https://models.example/tiny.tar.gz", "version": "1"},
            "resources": {"cpu": "100m", "memory": "256Mi"},
            "placement": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
            "scaling": scaling,
        },
    }


def contains(stored: Any, rendered: Any, path: str = "") -> list[str]:
    """Where ``stored`` lacks or changes something of ``rendered`` (server defaults may add)."""
    if isinstance(rendered, dict):
        if not isinstance(stored, dict):
            return [f"{path}: {stored!r} is not an object"]
        return [
            problem
            for key, value in rendered.items()
            for problem in contains(stored.get(key), value, f"{path}.{key}")
        ]
    if isinstance(rendered, list):
        if not isinstance(stored, list) or len(stored) != len(rendered):
            return [f"{path}: {stored!r} != {rendered!r}"]
        return [p for i, v in enumerate(rendered) for p in contains(stored[i], v, f"{path}[{i}]")]
    return [] if stored == rendered else [f"{path}: {stored!r} != {rendered!r}"]


def milli(quantity: str) -> int:
    """Thousandths of a plain or milli quantity ("2.500", "2500m", "3")."""
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return round(float(quantity) * 1000)


# --- the scaling rules, CEL (API server) against pydantic ------------------------------------


def test_scaling_rules_the_api_server_agrees_with_pydantic(
    kubectl: Kubectl, namespace: str
) -> None:
    disagreements: list[str] = []
    for case in CASES:
        doc = model_deployment("rules", namespace, case.scaling)
        result = kubectl(
            "create", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False
        )
        said = (result.stderr + result.stdout).strip()
        disagreements += _judge(case, result.returncode == 0, said)
    assert disagreements == [], "\n".join(disagreements)


def _judge(case: RuleCase, accepted: bool, said: str) -> list[str]:
    if case.refused is None:
        return [] if accepted else [f"{case.id}: pydantic accepts, the API server refuses: {said}"]
    if accepted:
        return [f"{case.id}: pydantic refuses ({case.refused}), the API server accepts"]
    problems = []
    if case.refused not in said:
        problems.append(f"{case.id}: the API server's message differs: {said}")
    if case.field not in said:
        problems.append(f"{case.id}: the refusal does not name {case.field}: {said}")
    return problems


# --- ScaledObjects accepted by the real API server --------------------------------------------

KEDA_SETTINGS = {"serverAddress": PROMETHEUS, "activationThreshold": 2, "pollingInterval": 5}
SCALINGS: dict[str, dict[str, Any]] = {
    # Scale to zero on the queue time, with an activation threshold and a behavior.
    "queue": {
        "provider": "keda",
        "minReplicas": 0,
        "maxReplicas": 3,
        "metric": {"type": "queueTimeMs", "target": 50},
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        "keda": {**KEDA_SETTINGS, "cooldownPeriod": 120},
    },
    "inflight": {
        "provider": "keda",
        "minReplicas": 1,
        "maxReplicas": 4,
        "metric": {"type": "inflight", "target": 2.5},
        "keda": KEDA_SETTINGS,
    },
    "gpu": {
        "provider": "keda",
        "minReplicas": 1,
        "maxReplicas": 2,
        "metric": {"type": "gpuUtilization", "target": 70},
        "keda": KEDA_SETTINGS,
    },
    # KEDA's cpu scaler: no Prometheus query.
    "cpu": {
        "provider": "keda",
        "minReplicas": 1,
        "maxReplicas": 2,
        "metric": {"type": "cpu", "target": 60},
        "keda": KEDA_SETTINGS,
    },
}


@pytest.fixture(scope="module")
def keda_crds(kubectl: Kubectl) -> list[str]:
    """KEDA's CRDs, Established; they stay installed (new kinds only, inert without KEDA)."""
    return install_crds(kubectl)


def rendered_scaled_object(doc: dict[str, Any]) -> dict[str, Any]:
    (scaled,) = [c for c in preview_children(doc) if c["kind"] == "ScaledObject"]
    return scaled


def test_scaled_objects_are_accepted_and_hold_what_gantry_rendered(
    keda_crds: list[str], operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    assert "scaledobjects.keda.sh" in keda_crds
    docs = {name: model_deployment(name, namespace, s) for name, s in SCALINGS.items()}
    kubectl.apply(*docs.values(), namespace=namespace)
    for name, doc in docs.items():
        stored = wait_for(
            functools.partial(get, kubectl, "scaledobject", name, namespace),
            timeout=WAIT_S,
            what=f"ScaledObject {name} (operator log:\n{operator.tail()})",
        )
        want = rendered_scaled_object(doc)
        assert contains(stored["spec"], want["spec"]) == [], name
        assert contains(stored["metadata"]["labels"], want["metadata"]["labels"]) == []
        (ref,) = stored["metadata"]["ownerReferences"]
        md = get(kubectl, "md", name, namespace)
        assert md is not None
        assert (ref["kind"], ref["uid"], ref["controller"]) == (KIND, md["metadata"]["uid"], True)
        # KEDA owns the HPA: Gantry renders none beside its ScaledObject.
        assert get(kubectl, "hpa", name, namespace) is None

    queue = get(kubectl, "scaledobject", "queue", namespace)
    assert queue is not None
    spec = queue["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"]) == (0, 3, 120)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["serverAddress"] == PROMETHEUS
    assert (trigger["metadata"]["threshold"], trigger["metadata"]["activationThreshold"]) == (
        "50",
        "2",
    )
    assert "nv_inference_queue_duration_us" in trigger["metadata"]["query"]
    assert f'namespace="{namespace}"' in trigger["metadata"]["query"]
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    cpu = get(kubectl, "scaledobject", "cpu", namespace)
    assert cpu is not None
    assert cpu["spec"]["triggers"] == [
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}
    ]

    # No KEDA runs here: the status says KEDA has not reported, and the size is left alone.
    def awaiting() -> dict[str, Any] | None:
        md = get(kubectl, "md", "inflight", namespace) or {}
        scaling = md.get("status", {}).get("scaling") or {}
        return scaling if scaling.get("provider") == "keda" else None

    scaling = wait_for(awaiting, timeout=WAIT_S, what="status.scaling from the ScaledObject")
    assert scaling["reason"] == "AwaitingMetrics", scaling
    assert scaling["target"] == "2500m", scaling


def test_a_changed_spec_changes_the_scaled_object(
    keda_crds: list[str], operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    doc = model_deployment("change", namespace, copy.deepcopy(SCALINGS["inflight"]))
    kubectl.apply(doc, namespace=namespace)
    wait_for(lambda: get(kubectl, "scaledobject", "change", namespace), timeout=WAIT_S, what="SO")
    doc["spec"]["scaling"]["maxReplicas"] = 6
    doc["spec"]["scaling"]["keda"] = {**KEDA_SETTINGS, "activationThreshold": 4}
    kubectl.apply(doc, namespace=namespace)
    want = rendered_scaled_object(doc)["spec"]

    def updated() -> bool:
        stored = get(kubectl, "scaledobject", "change", namespace) or {}
        return contains(stored.get("spec"), want) == []

    wait_for(updated, timeout=WAIT_S, what="the ScaledObject updated from the new spec")


# --- opt-in: KEDA's operator makes its HPA from Gantry's ScaledObject ------------------------

_SKIP = operator_skip_reason()


@pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
@pytest.mark.timeout(600)
def test_keda_makes_its_hpa_from_gantrys_scaled_object(
    keda_crds: list[str],
    operator: OperatorProcess,
    kubectl: Kubectl,
    kubeconfig: Path | None,
    namespace: str,
    prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    scaling = copy.deepcopy(SCALINGS["inflight"])
    scaling["keda"] = {"serverAddress": prometheus.url, "pollingInterval": 1}
    doc = model_deployment("keda", namespace, scaling)
    keda = KedaOperator(
        binaries().operator,
        tmp_path / "keda-operator.log",
        certs=certs.generate(tmp_path / "certs"),
        namespaces=[namespace],
        kubeconfig=kubeconfig,
    )
    keda.start(timeout=180)
    try:
        kubectl.apply(doc, namespace=namespace)
        hpa = wait_for(
            lambda: get(kubectl, "hpa", "keda-hpa-keda", namespace),
            timeout=180,
            what=f"KEDA's HPA from Gantry's ScaledObject\n{keda.tail()}",
        )
        md = get(kubectl, "md", "keda", namespace)
        assert md is not None
        stable = md["status"]["stable"]["deployment"]
        assert hpa["spec"]["scaleTargetRef"]["name"] == stable
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "External"
        assert metric["external"]["metric"]["name"] == "s0-prometheus"
        target = metric["external"]["target"]
        assert target["type"] == "AverageValue"
        # KEDA writes the threshold as a quantity of its own spelling ("2.500").
        assert milli(target["averageValue"]) == 2500, target

        # Gantry reads KEDA's verdict back into status.scaling.
        def copied() -> dict[str, Any] | None:
            got = get(kubectl, "md", "keda", namespace) or {}
            s = got.get("status", {}).get("scaling") or {}
            types = {c.get("type") for c in s.get("conditions") or []}
            return s if "Ready" in types else None

        scaling_status = wait_for(copied, timeout=120, what=f"KEDA's conditions\n{keda.tail()}")
        ready = next(c for c in scaling_status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", scaling_status
        assert scaling_status["reason"] == "Autoscaling", scaling_status
    finally:
        # KEDA puts its finalizer on the ScaledObject: it must still run when the object goes,
        # or the namespace's deletion waits on it forever.
        kubectl("delete", "md", "keda", "-n", namespace, "--ignore-not-found", "--wait=true")
        gone = kubectl(
            "wait", "--for=delete", "scaledobject/keda", "-n", namespace, "--timeout=60s",
            check=False,
        )  # fmt: skip
        status = keda.stop()
        if gone.returncode != 0:  # KEDA did not finish: release the object ourselves
            kubectl(
                "patch", "scaledobject", "keda", "-n", namespace, "--type=merge",
                "-p", '{"metadata": {"finalizers": null}}', check=False,
            )  # fmt: skip
        assert status == 0, f"KEDA exited with {status}:\n{keda.tail()}"
