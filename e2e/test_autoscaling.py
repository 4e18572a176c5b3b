"""Autoscaling on the model's own load: the builtin scaler on real Triton metrics.

Every pod is a KWOK pod backed by a real ``gantry serve`` process (``e2e.backing``
starts one per running pod and stops it when the pod goes), serving a model that
takes 0.3 s per request on one instance, so bounded loopback load queues up in
Triton and ``nv_inference_queue_duration_us`` rises. The operator scrapes the
pods itself; nothing else is installed.

This module runs its own operator, limited to its own namespace, with a 2 s
scrape interval (``GANTRY_SCALE_INTERVAL``); the session's operator keeps the
default 15 s and never sees this namespace (it has another prefix). Each test
deletes its ModelDeployment when done, so the next starts from an empty namespace.

Scenarios: load up, hold at max, down after the window; a pod that serves its
model but no metrics (``Backing.metrics_port``) holds the size and is named; a
canary started under load leaves the stable's size alone until promotion, then
the scaler sizes the promoted Deployment with no dip in model-ready replicas.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.backing import Backing, Pod, toy_backing
from e2e.canary_fixtures import FastStopBacker, toy_weights
from e2e.cluster import Kubectl
from e2e.conftest import OPERATOR_ENV, SESSION_PREFIX
from e2e.loadgen import LoadGenerator, backer_targets
from e2e.operator_proc import OperatorProcess
from e2e.runtimes import free_ports
from e2e.test_operator import condition, cpu_model
from e2e.waiting import wait_for
from tests.support.runtime_proc import requires_runtime

__all__ = ["toy_weights"]

pytestmark = [pytest.mark.runtime, requires_runtime, pytest.mark.timeout(240)]

NAME = "tiny"
MANAGED = "app.kubernetes.io/managed-by=gantry"
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


@pytest.fixture
def clean_ns(scaling_ns: str, kubectl: Kubectl) -> Iterator[str]:
    """The namespace, with every ModelDeployment and every child gone after the test.

    Children go by garbage collection after their ModelDeployment: a pod of a test's
    ``tiny`` still running would be counted by the next test's ``tiny`` (same labels).
    """
    try:
        yield scaling_ns
    finally:
        with contextlib.suppress(Exception):
            kubectl(
                "delete", "md", "--all", "-n", scaling_ns, "--wait=true", "--timeout=60s",
                timeout=75,
            )  # fmt: skip
        for kind in ("service", "deployment", "pod"):
            with contextlib.suppress(Exception):
                kubectl(
                    "wait", "--for=delete", kind, "-l", MANAGED, "-n", scaling_ns,
                    "--timeout=90s", timeout=100,
                )  # fmt: skip


def slow_backing(weights: Path, *, version: int = 1, metrics_port: int | None = None) -> Backing:
    """0.3 s per request on one instance: bounded load queues up inside Triton."""
    return toy_backing(weights, "slow", model_name=NAME, version=version, metrics_port=metrics_port)


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


def one_serving(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> Sizes:
    """Apply ``manifest``; return once its first pod serves the model."""
    kubectl.apply(manifest, namespace=namespace)
    sizes = Sizes(kubectl, namespace)
    wait_for(
        lambda: sizes.md().get("status", {}).get("modelReadyReplicas") == 1,
        timeout=90,
        what="1 model-ready pod",
    )
    return sizes


def test_load_scales_up_holds_then_scales_down(
    clean_ns: str, kubectl: Kubectl, toy_weights: Path, tmp_path: Path
) -> None:
    ns = clean_ns
    with FastStopBacker(kubectl, ns, lambda _: slow_backing(toy_weights), tmp_path) as backer:
        sizes = one_serving(kubectl, ns, md())
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
        events = md_events(kubectl, sizes, "Rescaled")
        assert "New size: 3" in events, events
        backer.check()


def md_events(kubectl: Kubectl, sizes: Sizes, reason: str) -> str:
    """Events of this very ModelDeployment (an earlier test's namesake left its own)."""
    uid = sizes.md()["metadata"]["uid"]
    fields = f"reason={reason},involvedObject.uid={uid}"
    return str(kubectl("get", "events", "-n", sizes.namespace, "--field-selector", fields).stdout)


def scaling_condition(sizes: Sizes) -> dict[str, Any]:
    return condition(sizes.md(), "ScalingActive")


def test_a_pod_without_metrics_holds_the_size_and_is_named(
    clean_ns: str, kubectl: Kubectl, toy_weights: Path, tmp_path: Path
) -> None:
    """The first pod reports; the ones scale-up adds serve the model but no metrics.

    With load gone the reporting pod is idle, which alone would scale down to 1
    after the 20 s window: the pods without metrics may be the busy ones, so the
    size is held, and the status names them.
    """
    ns = clean_ns
    (elsewhere,) = free_ports(1)
    first: list[str] = []

    def choose(pod: Pod) -> Backing:
        name = pod["metadata"]["name"]
        if not first:
            first.append(name)
        if name == first[0]:
            return slow_backing(toy_weights)
        return slow_backing(toy_weights, metrics_port=elsewhere)

    with FastStopBacker(kubectl, ns, choose, tmp_path) as backer:
        sizes = one_serving(kubectl, ns, md())
        with LoadGenerator(
            backer_targets(backer), rate=20, max_requests=3000, max_duration=120
        ) as load:
            wait_for(lambda: sizes.poll() >= 2, timeout=60, what="scale-up")
            wait_for(
                lambda: sizes.md()["status"].get("modelReadyReplicas") == sizes.poll(),
                timeout=90,
                what="the added pods serving",
            )
            load.check()
        size = sizes.poll()
        silent = wait_for(
            lambda: (
                scaling_condition(sizes).get("reason") == "MetricUnavailable"
                and sizes.md()["status"]["scaling"]["podsWithoutMetrics"]
            ),
            timeout=30,
            what="MetricUnavailable naming the pods",
        )
        assert first[0] not in silent, silent
        assert len(silent) == size - 1, (silent, size)
        # Idle, past the 20 s scale-down window and then some: the size is held.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert sizes.poll() == size, sizes.seen
            time.sleep(1)
        held = scaling_condition(sizes)
        assert (held["status"], held["reason"]) == ("False", "MetricUnavailable"), held
        for pod in silent:
            assert pod in held["message"], held
        assert "(no scale-down)" in held["message"], held
        events = md_events(kubectl, sizes, "MetricUnavailable")
        assert silent[0] in events, events
        backer.check()


def deployment_sizes(kubectl: Kubectl, namespace: str) -> dict[str, tuple[int, int]]:
    """Each Deployment's (spec.replicas, status.readyReplicas)."""
    items = kubectl.json("get", "deployments", "-n", namespace)["items"]
    return {
        d["metadata"]["name"]: (
            int(d["spec"].get("replicas", 0)),
            int(d.get("status", {}).get("readyReplicas", 0)),
        )
        for d in items
    }


@pytest.mark.timeout(300)
def test_canary_under_load_freezes_the_stable_then_the_scaler_owns_the_promoted(
    clean_ns: str, kubectl: Kubectl, toy_weights: Path, tmp_path: Path
) -> None:
    ns = clean_ns
    models = {v: slow_backing(toy_weights, version=v) for v in (1, 2)}

    def choose(pod: Pod) -> Backing | None:
        return models.get(int(pod["metadata"]["labels"]["app.kubernetes.io/version"]))

    manifest = md(maxReplicas=2)
    steps = [{"setWeight": 50}, {"pause": {}}]
    manifest["spec"]["rollout"] = {"strategy": "canary", "canary": {"steps": steps}}
    with FastStopBacker(kubectl, ns, choose, tmp_path, max_processes=5) as backer:
        sizes = one_serving(kubectl, ns, manifest)
        stable = sizes.md()["status"]["stable"]["deployment"]
        # 6 req/s on 0.3 s requests: 1.8 pods busy, the queue above target on 2.
        with LoadGenerator(
            backer_targets(backer), rate=6, max_requests=2000, max_duration=240
        ) as load:
            wait_for(lambda: sizes.poll() == 2, timeout=60, what="scale-up to 2")
            wait_for(
                lambda: sizes.md()["status"].get("modelReadyReplicas") == 2,
                timeout=90,
                what="2 serving",
            )
            kubectl(
                "patch", "md", NAME, "-n", ns, "--type=merge",
                "-p", '{"spec": {"model": {"version": "2"}}}',
            )  # fmt: skip

            def paused_canary() -> str | None:
                status = sizes.md()["status"]
                canary = status.get("canary") or {}
                frozen = deployment_sizes(kubectl, ns)[stable][0]
                assert frozen == 2, f"the stable was resized during the canary: {frozen}"
                ready = canary.get("phase") == "Paused" and canary.get("stepIndex") == 1
                return str(canary["deployment"]) if ready else None

            canary = wait_for(paused_canary, timeout=120, interval=1, what="canary at 50%")
            frozen = scaling_condition(sizes)
            assert (frozen["status"], frozen["reason"]) == ("False", "FrozenForCanary"), frozen
            # Held while the canary takes its share of the load, the stable is not resized.
            for _ in range(6):
                assert deployment_sizes(kubectl, ns)[stable][0] == 2
                time.sleep(1)
            kubectl("annotate", "md", NAME, "-n", ns, "serving.gantry.dev/promote=true")
            serving: list[int] = []

            def promoted() -> bool:
                status = sizes.md()["status"]
                if status["stable"]["deployment"] != canary:
                    return False
                serving.append(int(status.get("modelReadyReplicas", 0)))
                return True

            wait_for(promoted, timeout=60, interval=0.5, what="promotion")
            for _ in range(5):  # the handover, read under load
                ready = deployment_sizes(kubectl, ns).get(canary, (0, 0))[1]
                serving.append(min(ready, int(sizes.md()["status"]["modelReadyReplicas"])))
                time.sleep(1)
            assert min(serving) >= 2, f"ready replicas dipped at the handover: {serving}"
            load.check()
        owned = wait_for(
            lambda: (s := sizes.md()["status"]["scaling"])["reason"] != "FrozenForCanary" and s,
            timeout=30,
            what="the scaler sizing the promoted Deployment",
        )
        assert owned["provider"] == "builtin", owned
        # Load gone: after the 20 s window the scaler brings the promoted Deployment to 1.
        wait_for(
            lambda: deployment_sizes(kubectl, ns).get(canary, (0, 0))[0] == 1,
            timeout=90,
            interval=1,
            what="the promoted Deployment scaled down by the builtin scaler",
        )
        assert stable not in deployment_sizes(kubectl, ns)
        events = md_events(kubectl, sizes, "Rescaled")
        assert "New size: 1 (was 2)" in events, events
        backer.check()
