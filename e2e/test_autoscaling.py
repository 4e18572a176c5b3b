"""Autoscaling on the model's own load: the builtin scaler on real Triton metrics.

Every pod is a KWOK pod backed by a real ``gantry serve`` process (``e2e.backing``
starts one per running pod and stops it when the pod goes), serving a model that
takes 0.3 s per request on one instance, so bounded loopback load queues up in
Triton and ``nv_inference_queue_duration_us`` rises. The operator scrapes the
pods itself; nothing else is installed.

This module runs its own operator, limited to its own namespace, with a 2 s
scrape interval (``GANTRY_SCALE_INTERVAL``); the session's operator keeps the
default 15 s and never sees this namespace (it has another prefix).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.backing import Backing
from e2e.canary_fixtures import FastStopBacker, toy_weights
from e2e.cluster import Kubectl
from e2e.conftest import OPERATOR_ENV, SESSION_PREFIX
from e2e.loadgen import LoadGenerator, backer_targets
from e2e.operator_proc import OperatorProcess
from e2e.test_operator import condition, cpu_model
from e2e.waiting import wait_for
from tests.support.runtime_proc import requires_runtime

__all__ = ["toy_weights"]

pytestmark = [pytest.mark.runtime, requires_runtime, pytest.mark.timeout(240)]

NAME = "tiny"
BEHAVIOR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Pods", "value": 2, "periodSeconds": 10}],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 20,
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 5}],
    },
}


@pytest.fixture(scope="module")
def scaling_ns(
    crd_installed: None,
    kubectl: Kubectl,
    kubeconfig: Path | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A namespace with its own operator, scraping every 2 s."""
    ns = f"as{SESSION_PREFIX}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    log = tmp_path_factory.mktemp("autoscaling-operator") / "operator.log"
    env = {**OPERATOR_ENV, "GANTRY_SCALE_INTERVAL": "2"}
    proc = OperatorProcess(log, kubeconfig=kubeconfig, env=env, namespaces=[ns])
    proc.start()
    try:
        yield ns
    finally:
        with contextlib.suppress(Exception):
            kubectl("delete", "md", "--all", "-n", ns, "--wait=true", "--timeout=60s", timeout=75)
        proc.stop()
        with contextlib.suppress(Exception):
            kubectl("delete", "namespace", ns, "--wait=false")


def slow_backing(weights: Path) -> Backing:
    args = [
        str(weights),
        "--format=pytorch",
        "--module=e2e.toy_models:slow",
        "--input=x:float32:4",
        "--torch-threads=1",
    ]
    return Backing(args, model_name=NAME, model_version=1)


def md(**scaling: Any) -> dict[str, Any]:
    spec = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "metric": {"type": "queueTimeMs", "target": 100},
        "behavior": BEHAVIOR,
        **scaling,
    }
    manifest = cpu_model(
        NAME,
        model={"name": NAME, "uri": "https://models.example/tiny.tar.gz", "version": "1"},
        resources={"cpu": "100m", "memory": "256Mi"},
        placement={"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
        scaling=spec,
    )
    del manifest["spec"]["replicas"]
    return manifest


class Sizes:
    """The stable Deployment's spec.replicas over time, polled (bounded by the caller)."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl, self.namespace = kubectl, namespace
        self.seen: list[int] = []

    def md(self) -> dict[str, Any]:
        got: dict[str, Any] = self.kubectl.json("get", "md", NAME, "-n", self.namespace)
        return got

    def poll(self) -> int:
        deps = self.kubectl.json("get", "deployments", "-n", self.namespace)["items"]
        size = int(deps[0]["spec"].get("replicas", 0)) if deps else 0
        if not self.seen or self.seen[-1] != size:
            self.seen.append(size)
        return size

    def changes(self) -> int:
        return max(0, len(self.seen) - 1)


def test_load_scales_up_holds_then_scales_down(
    scaling_ns: str, kubectl: Kubectl, toy_weights: Path, tmp_path: Path
) -> None:
    ns = scaling_ns
    with FastStopBacker(kubectl, ns, lambda _: slow_backing(toy_weights), tmp_path) as backer:
        kubectl.apply(md(), namespace=ns)
        sizes = Sizes(kubectl, ns)
        wait_for(
            lambda: sizes.md().get("status", {}).get("modelReadyReplicas") == 1,
            timeout=90,
            what="1 model-ready pod",
        )
        with LoadGenerator(
            backer_targets(backer), rate=20, max_requests=4000, max_duration=150
        ) as load:
            wait_for(lambda: sizes.poll() == 3, timeout=60, what="scale-up to 3")
            up = sizes.md()["status"]["scaling"]
            assert up["provider"] == "builtin"
            # The status says what the scaler saw and asked for.
            assert up["desiredReplicas"] == 3
            wait_for(
                lambda: sizes.md()["status"].get("modelReadyReplicas") == 3,
                timeout=90,
                what="3 serving",
            )
            # Steady load above what even 3 pods serve: held at max, no flapping.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                sizes.poll()
                time.sleep(1)
            assert sizes.seen[-1] == 3, sizes.seen
            at_max = condition(sizes.md(), "ScalingActive")
            assert (at_max["status"], at_max["reason"]) == ("True", "AtMaxReplicas"), at_max
            load.check()
        # Load gone: the queue empties; after the 20 s window, one pod per 5 s.
        wait_for(lambda: sizes.poll() == 1, timeout=90, interval=1, what="scale-down to 1")
        # 1 -> (2 ->) 3, then down: every change was in one direction at a time.
        ups = sizes.seen[: sizes.seen.index(3) + 1]
        assert ups == sorted(ups), sizes.seen
        downs = sizes.seen[sizes.seen.index(3) :]
        assert downs == sorted(downs, reverse=True), sizes.seen
        events = kubectl("get", "events", "-n", ns, "--field-selector", "reason=Rescaled").stdout
        assert "New size: 3" in events, events
        backer.check()
