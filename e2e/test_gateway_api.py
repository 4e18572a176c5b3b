"""Gateway API traffic routing against the real HTTPRoute CRD (``trafficRouting: gatewayAPI``).

The standard-channel CRDs of the pinned ``sigs.k8s.io/gateway-api`` are installed
in the cluster (``gateway_api_crds``), so the API server itself validates every
HTTPRoute the operator applies. No Gateway controller runs here: the route is
checked as an object (accepted by the API server, backends that exist), not for
the traffic it would carry.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from e2e.canary_fixtures import Watch
from e2e.cluster import Kubectl
from e2e.operator_proc import OperatorProcess
from e2e.test_operator import cpu_model, deployments
from e2e.waiting import wait_for

pytestmark = [pytest.mark.usefixtures("gateway_api_crds", "operator"), pytest.mark.timeout(300)]

NAME = "tiny"
DEPLOYMENT_LABEL = "serving.gantry.dev/deployment"
# Operator reconciles to sit through at each stage: a Service whose selector flips
# between two applied manifests changes on every one of them.
MIN_RECONCILES = 4
# The operator's first sight of a new namespace can take a minute on a loaded machine.
CREATE_TIMEOUT_S = 120.0


def gateway_md(version: int) -> dict[str, Any]:
    return cpu_model(
        NAME,
        model={"name": NAME, "uri": "https://models.example/tiny.tar.gz", "version": str(version)},
        replicas=2,
        resources={"cpu": "100m", "memory": "256Mi"},
        placement={"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
        rollout={
            "strategy": "canary",
            "canary": {
                # No backed runtimes here: the canary never turns model-ready, so it
                # stays at step 0 beside the stable, which is the state to check.
                "steps": [{"setWeight": 50}, {"pause": {}}],
                "trafficRouting": {"type": "gatewayAPI", "parentRefs": [{"name": "edge"}]},
            },
        },
    )


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = kubectl.json("get", kind, name, "-n", namespace)
    return obj


def route_backends(kubectl: Kubectl, namespace: str) -> list[str]:
    """The backend Service names of the operator's HTTPRoute ([] while there is none)."""
    result = kubectl("get", "httproute", NAME, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return []
    route = get(kubectl, "httproute", NAME, namespace)
    return [b["name"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]]


def reconciles(operator: OperatorProcess) -> float:
    text = httpx.get(operator.metrics_url, timeout=5).text
    found = re.search(r'^gantry_reconcile_total\{outcome="ok"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def sit_through_reconciles(operator: OperatorProcess) -> None:
    """Wait until the operator has finished ``MIN_RECONCILES`` more successful reconciles
    (counted, not timed: a loaded machine makes each one slower)."""
    target = reconciles(operator) + MIN_RECONCILES
    wait_for(
        lambda: reconciles(operator) >= target,
        timeout=120,
        what=f"{MIN_RECONCILES} more successful reconciles",
    )


def check_routing(kubectl: Kubectl, namespace: str, revisions: int) -> list[str]:
    """The route has one backend per Deployment: an existing Service, never the main
    one, selecting that Deployment's pods alone. Returns the backend names."""
    backends = wait_for(
        lambda: (b := route_backends(kubectl, namespace)) and len(b) == revisions and b,
        timeout=CREATE_TIMEOUT_S,
        what=f"an HTTPRoute with {revisions} backends",
    )
    deps = wait_for(
        lambda: (d := deployments(kubectl, namespace)) and len(d) == revisions and d,
        timeout=CREATE_TIMEOUT_S,
        what=f"{revisions} Deployments",
    )
    templates = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deps}
    assert NAME not in backends, "a backend took the main Service's name"
    selected = []
    for backend in backends:
        selector = get(kubectl, "service", backend, namespace)["spec"]["selector"]
        matching = [n for n, labels in templates.items() if selector.items() <= labels.items()]
        assert matching == [selector[DEPLOYMENT_LABEL]], (backend, selector)
        selected += matching
    assert sorted(selected) == sorted(templates)
    return backends


def test_httproute_with_revision_services_and_a_main_service_that_holds_still(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    # Watched from before it exists, so every write to it is seen, not samples.
    watch_main = ("services", "-n", namespace, f"--field-selector=metadata.name={NAME}")
    with Watch(kubectl, *watch_main) as main_service:
        kubectl.apply(gateway_md(1), namespace=namespace)
        first = check_routing(kubectl, namespace, revisions=1)

        started = time.monotonic()
        sit_through_reconciles(operator)

        # A new revision: its canary beside the stable, one route backend each.
        kubectl.apply(gateway_md(2), namespace=namespace)
        both = check_routing(kubectl, namespace, revisions=2)
        assert set(first) < set(both)
        sit_through_reconciles(operator)
        assert check_routing(kubectl, namespace, revisions=2) == both
        elapsed = time.monotonic() - started

    events = main_service.snapshot()
    assert events, "the main Service was never seen"
    selectors = {tuple(sorted(e.obj["spec"]["selector"].items())) for e in events}
    assert len(selectors) == 1, f"the main Service's selector changed over {elapsed:.0f}s"
    (selector,) = selectors
    assert DEPLOYMENT_LABEL not in dict(selector)
    pods = kubectl.json(
        "get", "pods", "-n", namespace, "-l", ",".join(f"{k}={v}" for k, v in selector)
    )
    owners = {p["metadata"]["labels"][DEPLOYMENT_LABEL] for p in pods["items"]}
    assert owners == {d["metadata"]["name"] for d in deployments(kubectl, namespace)}


def test_every_child_of_a_253_character_name_is_accepted(kubectl: Kubectl, namespace: str) -> None:
    """The longest legal name: the API server takes every child, and each join holds."""
    name = ("a" * 62 + ".") * 3 + "b" * 64  # a 253-character DNS subdomain
    assert len(name) == 253
    md = gateway_md(1)
    md["metadata"]["name"] = name
    md["spec"].pop("replicas")
    md["spec"]["scaling"] = {"minReplicas": 2, "maxReplicas": 3}
    kubectl.apply(md, namespace=namespace)

    def children() -> dict[str, list[dict[str, Any]]] | None:
        got = {
            kind: kubectl.json(
                "get", kind, "-n", namespace, "-l", "app.kubernetes.io/managed-by=gantry"
            )["items"]
            for kind in ("deployments", "services", "httproutes", "hpa", "pdb", "pods")
        }
        wanted = {"deployments": 1, "services": 2, "httproutes": 1, "hpa": 1, "pdb": 1, "pods": 2}
        return got if all(len(got[k]) == n for k, n in wanted.items()) else None

    got = wait_for(
        children, timeout=CREATE_TIMEOUT_S, what="every child of the long-named ModelDeployment"
    )
    (dep,) = got["deployments"]
    dep_name = dep["metadata"]["name"]
    assert len(dep_name) <= 63
    assert {p["metadata"]["labels"][DEPLOYMENT_LABEL] for p in got["pods"]} == {dep_name}
    assert got["hpa"][0]["spec"]["scaleTargetRef"]["name"] == dep_name
    (route,) = got["httproutes"]
    assert route["metadata"]["name"] == name
    backends = [b["name"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]]
    services = {s["metadata"]["name"]: s for s in got["services"]}
    assert len(backends) == 1
    assert backends[0] in services
    assert services[backends[0]]["spec"]["selector"][DEPLOYMENT_LABEL] == dep_name
    status = wait_for(
        lambda: (
            get(kubectl, "modeldeployments.serving.gantry.dev", name, namespace)
            .get("status", {})
            .get("stable")
        ),
        timeout=30,
        what="status.stable",
    )
    assert status["deployment"] == dep_name
