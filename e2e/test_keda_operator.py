"""Real KEDA (operator and metrics adapter, from the pinned module) on the local control plane.

Opt-in: ``GANTRY_E2E_KEDA_OPERATOR=1``; the first run builds KEDA (see e2e/keda/README.md).

* On the session cluster, KEDA's operator alone turns a ScaledObject with a Prometheus trigger
  (a real Prometheus on loopback) into its HPA ``keda-hpa-<name>`` on the external metric
  ``s0-prometheus``, marks it Ready and Active from the value Prometheus answers, and scales the
  Deployment from zero to one.
* On a private cluster (the APIService for ``external.metrics.k8s.io`` is cluster-wide and would
  leave every namespace deletion stuck if its adapter went away), KEDA's adapter is registered
  through an ExternalName Service naming localhost, the aggregator serves the metric value through
  it, and the HPA controller scales the Deployment on it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.canary_fixtures import prometheus
from e2e.cluster import REPO_ROOT, Cluster, Kubectl
from e2e.keda import Binaries, aggregation, binaries, certs, install_crds, operator_skip_reason
from e2e.keda.operator import KedaAdapter, KedaOperator, running
from e2e.prometheus_proc import PrometheusProcess
from e2e.waiting import wait_for

__all__ = ["prometheus"]  # a fixture, imported for its name

_SKIP = operator_skip_reason()
pytestmark = [pytest.mark.skipif(_SKIP is not None, reason=_SKIP or ""), pytest.mark.timeout(900)]

NAME = "tiny"
# Prometheus evaluates the constant itself: a real answer to a real query, with a value the test
# knows. Above the activation threshold (the ScaledObject is Active), and ceil(7 / 2) = 4 pods.
VALUE = 7
THRESHOLD = 2
ACTIVATION = 5
MAX_REPLICAS = 5
METRIC = "s0-prometheus"  # KEDA's name for trigger 0 of type prometheus
SO_LABEL = "scaledobject.keda.sh/name"
# First reconciles of a freshly started KEDA, on a loaded 2-core machine.
WAIT_S = 180.0


def deployment(name: str, replicas: int) -> dict[str, Any]:
    """A plain Deployment; the scheduler puts its pods on the untainted KWOK node."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }


def scaled_object(name: str, prometheus_url: str, *, min_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": 1,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": MAX_REPLICAS,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": f"vector({VALUE})",
                        "threshold": str(THRESHOLD),
                        "activationThreshold": str(ACTIVATION),
                    },
                }
            ],
        },
    }


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The object, or None while it does not exist."""
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(f"kubectl get {kind}/{name}: {result.stderr}")
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    """``status`` of the condition ``kind`` (True/False/Unknown), or None when absent."""
    for cond in (obj or {}).get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


@pytest.fixture(scope="module")
def keda_binaries() -> Binaries:
    return binaries()


# --- operator only, on the session cluster --------------------------------------------------


def test_scaled_object_becomes_an_hpa_on_the_external_metric(
    kubectl: Kubectl,
    kubeconfig: Path | None,
    namespace: str,
    keda_binaries: Binaries,
    prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    install_crds(kubectl)
    kubectl.apply(deployment(NAME, replicas=0), namespace=namespace)
    operator = KedaOperator(
        keda_binaries.operator,
        tmp_path / "keda-operator.log",
        certs=certs.generate(tmp_path / "certs"),
        namespaces=[namespace],
        kubeconfig=kubeconfig,
    )
    with running(operator, kubectl=kubectl):
        kubectl.apply(scaled_object(NAME, prometheus.url, min_replicas=0), namespace=namespace)
        hpa = wait_for(
            lambda: get(kubectl, "hpa", f"keda-hpa-{NAME}", namespace),
            timeout=WAIT_S,
            what=f"KEDA's HPA keda-hpa-{NAME}\n{operator.tail()}",
        )
        assert hpa["spec"]["scaleTargetRef"]["name"] == NAME
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, MAX_REPLICAS)
        assert hpa["spec"]["metrics"] == [
            {
                "type": "External",
                "external": {
                    "metric": {"name": METRIC, "selector": {"matchLabels": {SO_LABEL: NAME}}},
                    "target": {"type": "AverageValue", "averageValue": str(THRESHOLD)},
                },
            }
        ]
        # Active only if the scaler got VALUE (above ACTIVATION) from Prometheus.
        wait_for(
            lambda: (
                [
                    condition(get(kubectl, "scaledobject", NAME, namespace), c)
                    for c in ("Ready", "Active")
                ]
                == ["True", "True"]
            ),
            timeout=WAIT_S,
            what=f"ScaledObject Ready and Active\n{operator.tail()}",
        )
        # From zero to one is the operator's own doing (the HPA cannot scale from zero).
        wait_for(
            lambda: (get(kubectl, "deployment", NAME, namespace) or {})["spec"]["replicas"] == 1,
            timeout=WAIT_S,
            what=f"KEDA to activate deployment/{NAME}\n{operator.tail()}",
        )


# --- operator and adapter, on a private cluster ---------------------------------------------


def _external_cluster() -> bool:
    """As e2e/conftest.py: with KUBECONFIG aimed elsewhere nothing local is started."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or os.environ.get("GANTRY_E2E_OWN_CLUSTER"):
        return False
    return Path(kubeconfig).resolve() != (REPO_ROOT / ".cluster" / "kubeconfig").resolve()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A second local control plane for this test alone, on its own ports; torn down after."""
    if _external_cluster():
        pytest.skip("KUBECONFIG points at another cluster; no private cluster is started")
    cluster = Cluster.up(tmp_path / "own")
    try:
        yield cluster
    finally:
        cluster.down()


def test_adapter_serves_the_metric_and_the_hpa_scales_on_it(
    own_cluster: Cluster,
    keda_binaries: Binaries,
    prometheus: PrometheusProcess,
    tmp_path: Path,
) -> None:
    kubectl, ns = own_cluster.kubectl, "keda-e2e"
    install_crds(kubectl)
    kubectl("create", "namespace", ns)
    cert_dir = certs.generate(tmp_path / "certs", dns_names=[aggregation.service_dns_name(ns)])
    operator = KedaOperator(
        keda_binaries.operator,
        tmp_path / "keda-operator.log",
        certs=cert_dir,
        namespaces=[ns],
        kubeconfig=own_cluster.kubeconfig,
    )
    with running(operator, kubectl=kubectl):
        adapter = KedaAdapter(
            keda_binaries.adapter,
            tmp_path / "keda-adapter.log",
            certs=cert_dir,
            operator=operator,
            namespaces=[ns],
            kubeconfig=own_cluster.kubeconfig,
        )
        with running(adapter):
            kubectl.apply(*aggregation.objects(ns, adapter.liveness_port, cert_dir))
            kubectl(
                "wait",
                "--for=condition=Available",
                f"apiservice/{aggregation.API_SERVICE}",
                f"--timeout={WAIT_S:.0f}s",
                timeout=WAIT_S + 30,
            )
            kubectl.apply(deployment(NAME, replicas=1), namespace=ns)
            kubectl.apply(scaled_object(NAME, prometheus.url, min_replicas=1), namespace=ns)
            path = (
                f"/apis/{aggregation.GROUP}/{aggregation.VERSION}/namespaces/{ns}/{METRIC}"
                f"?labelSelector={SO_LABEL}%3D{NAME}"
            )
            served = wait_for(
                lambda: _metric_values(kubectl, path),
                timeout=WAIT_S,
                what=f"the external metric through the aggregator\n{adapter.tail()}",
            )
            assert served == [float(VALUE)]
            want = math.ceil(VALUE / THRESHOLD)
            wait_for(
                lambda: (get(kubectl, "deployment", NAME, ns) or {})["spec"]["replicas"] == want,
                timeout=WAIT_S,
                what=f"the HPA to scale deployment/{NAME} to {want}",
            )
            # Unregister before the adapter stops, as a real uninstall would.
            kubectl("delete", "apiservice", aggregation.API_SERVICE)


def _metric_values(kubectl: Kubectl, path: str) -> list[float] | None:
    """Values of the external metric at ``path``; None while the API does not answer yet."""
    result = kubectl("get", "--raw", path, check=False)
    if result.returncode != 0:
        return None
    items = json.loads(result.stdout).get("items") or []
    return [_quantity(item["value"]) for item in items] or None


def _quantity(value: str) -> float:
    """A Kubernetes quantity as KEDA writes metric values ("7", or "7k"/"7500m" forms)."""
    if value.endswith("m"):
        return float(value[:-1]) / 1000
    if value.endswith("k"):
        return float(value[:-1]) * 1000
    return float(value)
