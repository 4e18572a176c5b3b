"""The status contract, read by the clients users point at Gantry, on real runs.

For every state a ModelDeployment goes through (first reconcile, Ready, scale-up,
each canary step, paused, promoted, rolled back, no GPU, a model that will not
load) the object as the API server returns it is judged three ways, and all must
agree with the contract in the README:

* the conditions, phase and printer columns (``kubectl get md``);
* kstatus (sigs.k8s.io/cli-utils, what Flux and kpt decide on), built from its module;
* Argo CD's own Lua engine running ``argocd/serving.gantry.dev/ModelDeployment/health.lua``.

``kubectl wait --for=condition=Ready`` is run through a whole canary and must return only
once the new version is promoted. With ``GANTRY_RECORD_ARGOCD=1`` each judged object is
also written to the Argo CD customization's ``testdata/recorded-<state>.yaml`` (the unit
tests run Argo CD's engine over them, with the expectations in ``health_test.yaml``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.backing import Backing, PodBacker
from e2e.canary_fixtures import toy_weights
from e2e.cluster import REPO_ROOT, Kubectl
from e2e.gitops import argocd, kstatus
from e2e.gitops.contract import EXPECT
from e2e.test_canary import (
    SCRAPE,
    STABLE_REPLICAS,
    Scenario,
    analysis_spec,
    backing,
    canary_md,
    canary_revision,
    promoted_to,
    scenario_factory,
)
from e2e.test_operator import cpu_model, get_md
from e2e.waiting import wait_for
from tests.support.runtime_proc import requires_runtime

__all__ = ["scenario_factory", "toy_weights"]  # fixtures used here

pytestmark = [
    pytest.mark.usefixtures("operator"),
    pytest.mark.runtime,
    requires_runtime,
    pytest.mark.timeout(420),
]

RECORD_DIR = REPO_ROOT / "argocd" / "serving.gantry.dev" / "ModelDeployment" / "testdata"
FULL_NAME = "modeldeployments.serving.gantry.dev"


def cond(md: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in md.get("status", {}).get("conditions", []) if c["type"] == kind]
    return dict(found[0]) if found else {}


def columns(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    """``kubectl get md NAME`` as a person reads it: header -> cell."""
    out = kubectl("get", FULL_NAME, name, "-n", namespace).stdout.splitlines()
    header, row = out[0], out[1]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    cells = {}
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else None
        cells[header[start:end].strip()] = row[start:end].strip()
    return cells


def judge(kubectl: Kubectl, md: dict[str, Any], state: str) -> None:
    """Check one observed object against the contract for ``state``; record it if asked."""
    want = EXPECT[state]
    meta, status = md["metadata"], md.get("status", {})
    where = f"{state}: {status}"
    assert status.get("observedGeneration") == meta["generation"], where
    assert {c["observedGeneration"] for c in status["conditions"]} == {meta["generation"]}, where
    assert status["phase"] == want.phase, where
    ready = cond(md, "Ready")
    assert ready["status"] == want.ready[0], where
    if want.ready[1] is not None:
        assert ready["reason"] == want.ready[1], where
    assert cond(md, "Reconciling")["status"] == want.reconciling, where
    assert cond(md, "Stalled")["status"] == want.stalled, where
    assert kstatus.compute(md)[0] == want.kstatus, (state, kstatus.compute(md))
    assert argocd.health(md)[0] == want.argocd, (state, argocd.health(md))
    # No kopf bookkeeping on the user's object.
    annotations = meta.get("annotations") or {}
    assert not [k for k in annotations if "kopf" in k or k.startswith("serving.gantry.dev/last")]
    if os.environ.get("GANTRY_RECORD_ARGOCD"):
        record(md, state)


def judge_columns(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    """The printer columns show what serves: they match the status they were drawn from.

    The table and the object are two reads; they are compared only when the object did
    not change between them (same resourceVersion before and after the table).
    """
    for _ in range(10):
        before = get_md(kubectl, namespace, name)
        cells = columns(kubectl, namespace, name)
        after = get_md(kubectl, namespace, name)
        if before["metadata"]["resourceVersion"] != after["metadata"]["resourceVersion"]:
            continue
        status = after.get("status", {})
        assert cells["PHASE"] == status.get("phase", ""), (cells, status)
        assert cells["READY"] == status.get("servers", ""), (cells, status)
        # A field the status does not have is an empty cell.
        assert cells["VERSION"] == (status.get("stable") or {}).get("modelVersion", "")
        assert cells["CANARY"] == str(status.get("canaryVersion", ""))
        assert cells["WEIGHT"] == str(status.get("canaryWeight", ""))
        return cells
    raise AssertionError("the object changed during every one of 10 reads of the table")


def record(md: dict[str, Any], state: str) -> None:
    """Write the object as Argo CD would receive it, minus what only this cluster had."""
    meta = {k: v for k, v in md["metadata"].items() if k in ("name", "generation")}
    meta["namespace"] = "ml"
    obj = {"apiVersion": md["apiVersion"], "kind": md["kind"], "metadata": meta}
    obj["spec"], obj["status"] = md["spec"], md["status"]
    RECORD_DIR.mkdir(parents=True, exist_ok=True)
    (RECORD_DIR / f"recorded-{state}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))


def first_status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """The first status the operator writes for the current generation."""

    def written() -> dict[str, Any] | None:
        md = get_md(kubectl, namespace, name)
        current = md.get("status", {}).get("observedGeneration") == md["metadata"]["generation"]
        return md if current else None

    return wait_for(written, timeout=60, interval=0.2, what=f"a status for {name}")


class Waiter:
    """``kubectl wait --for=condition=Ready`` in the background, as a CI job would run it."""

    def __init__(self, kubectl: Kubectl, namespace: str, name: str) -> None:
        argv = [kubectl.binary]
        if kubectl.kubeconfig is not None:
            argv.append(f"--kubeconfig={kubectl.kubeconfig}")
        argv += ["wait", "--for=condition=Ready", f"{FULL_NAME}/{name}", "-n", namespace]
        argv.append("--timeout=300s")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.returned_at: float | None = None

    def done(self) -> bool:
        if self.proc.poll() is not None and self.returned_at is None:
            self.returned_at = time.monotonic()
        return self.returned_at is not None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


STEPS: list[dict[str, Any]] = [
    {"setWeight": 34},
    {"pause": {}},  # until a person resumes it
    {"analysis": {"intervals": 1}},
]


def test_contract_through_create_scale_canary_promote_and_rollback(
    scenario_factory: Callable[..., Scenario], toy_weights: Path, kubectl: Kubectl
) -> None:
    models = {
        1: backing(toy_weights, "healthy", 1),
        2: backing(toy_weights, "healthy", 2),
        3: backing(toy_weights, "fails_on_traffic", 3),
    }
    analysis = analysis_spec(SCRAPE)
    with scenario_factory(models) as sc:
        ns, name = sc.namespace, "tiny"
        sc.kubectl.apply(canary_md(1, STEPS, analysis), namespace=ns)
        judge(kubectl, first_status(kubectl, ns, name), "first-reconcile")
        sc.wait_md(lambda md: md["status"].get("phase") == "Ready", timeout=120, what="v1 Ready")
        judge(kubectl, get_md(kubectl, ns, name), "ready")
        assert judge_columns(kubectl, ns, name)["READY"] == f"{STABLE_REPLICAS}/{STABLE_REPLICAS}"

        # A scale-up: not done until the new pod's model answers.
        scaled = canary_md(1, STEPS, analysis)
        scaled["spec"]["replicas"] = STABLE_REPLICAS + 1
        sc.kubectl.apply(scaled, namespace=ns)
        md = first_status(kubectl, ns, name)
        if md["status"]["phase"] != "Ready":  # the new pod may already serve: then nothing to see
            judge(kubectl, md, "scale-up")
        sc.wait_md(
            lambda md: (
                md["status"].get("phase") == "Ready"
                and md["status"].get("servers") == f"{STABLE_REPLICAS + 1}/{STABLE_REPLICAS + 1}"
            ),
            timeout=120,
            what="3 model servers Ready",
        )
        sc.start_load()

        # v2: a canary that stops at an indefinite pause. kubectl wait must block throughout.
        v2 = canary_md(2, STEPS, analysis)
        v2["spec"]["replicas"] = STABLE_REPLICAS + 1
        sc.kubectl.apply(v2, namespace=ns)
        waiter = Waiter(kubectl, ns, name)
        try:
            md = sc.wait_md(
                lambda md: (
                    (md["status"].get("canary") or {}).get("phase") == "Progressing"
                    and md["status"]["observedGeneration"] == md["metadata"]["generation"]
                ),
                timeout=60,
                what="canary at step 0",
            )
            judge(kubectl, md, "canary-step")
            judge_columns(kubectl, ns, name)
            md = sc.wait_md(
                lambda md: md["status"].get("phase") == "Paused", timeout=90, what="paused"
            )
            judge(kubectl, md, "canary-paused")
            cells = judge_columns(kubectl, ns, name)
            assert (cells["VERSION"], cells["CANARY"], cells["WEIGHT"]) == ("1", "2", "34")
            assert not waiter.done(), "kubectl wait returned while the canary was paused"

            kubectl("annotate", FULL_NAME, name, "-n", ns, "serving.gantry.dev/resume=true")
            revision = canary_revision(md) or ""

            def analysing(md: dict[str, Any]) -> bool:
                canary = md["status"].get("canary") or {}
                current = md["status"]["observedGeneration"] == md["metadata"]["generation"]
                at_analysis = (
                    canary.get("phase") == "Progressing"
                    and canary.get("stepIndex") == len(STEPS) - 1
                )
                return current and (at_analysis or promoted_to(lambda: revision)(md))

            md = sc.wait_md(analysing, timeout=90, what="the analysis step")
            if not promoted_to(lambda: revision)(md):  # one interval may pass between polls
                judge(kubectl, md, "canary-analysis")
                assert not waiter.done(), "kubectl wait returned during the analysis step"
            md = sc.wait_md(promoted_to(lambda: revision), timeout=120, what="v2 promoted")
            promoted_at = time.monotonic()
            wait_for(waiter.done, timeout=60, what="kubectl wait to return after promotion")
            assert waiter.proc.returncode == 0, waiter.proc.stdout
            assert waiter.returned_at is not None
            # It returned for the promotion, not for an earlier Ready (0.5 s polling slack).
            assert waiter.returned_at >= promoted_at - 5.0
        finally:
            waiter.stop()
        md = sc.wait_md(
            lambda md: md["status"].get("phase") == "Ready", timeout=60, what="Ready at v2"
        )
        judge(kubectl, md, "promoted")
        cells = judge_columns(kubectl, ns, name)
        assert (cells["VERSION"], cells["CANARY"], cells["WEIGHT"]) == ("2", "", "")

        # v3 fails every request: rolled back, Stalled until the spec changes.
        v3 = canary_md(3, [{"setWeight": 34}, {"analysis": {"intervals": 3}}], analysis)
        v3["spec"]["replicas"] = STABLE_REPLICAS + 1
        sc.kubectl.apply(v3, namespace=ns)
        md = sc.wait_md(
            lambda md: (md["status"].get("canary") or {}).get("phase") == "Aborted",
            timeout=120,
            what="v3 rolled back",
        )
        judge(kubectl, md, "rolled-back")
        cells = judge_columns(kubectl, ns, name)
        assert (cells["VERSION"], cells["CANARY"]) == ("2", ""), cells


def test_contract_when_no_gpu_is_free(kubectl: Kubectl, namespace: str) -> None:
    greedy = cpu_model(
        "greedy",
        replicas=1,
        resources={"gpu": {"count": 16}, "cpu": "1", "memory": "1Gi"},
        rollout={"progressDeadlineSeconds": 30},
    )
    kubectl.apply(greedy, namespace=namespace)

    def reason(want: str, stalled: str) -> Callable[[], dict[str, Any] | None]:
        def probe() -> dict[str, Any] | None:
            md = get_md(kubectl, namespace, "greedy")
            ok = cond(md, "Degraded").get("reason") == want
            return md if ok and cond(md, "Stalled").get("status") == stalled else None

        return probe

    md = wait_for(reason("InsufficientGPU", "False"), timeout=60, what="InsufficientGPU")
    judge(kubectl, md, "insufficient-gpu")

    # Past rollout.progressDeadlineSeconds it needs a person: Stalled, Failed, Degraded.
    def stalled_now() -> dict[str, Any] | None:
        md = get_md(kubectl, namespace, "greedy")
        return md if cond(md, "Stalled").get("status") == "True" else None

    stalled = wait_for(stalled_now, timeout=90, what="Stalled after the progress deadline")
    judge(kubectl, stalled, "insufficient-gpu-stalled")


def test_contract_when_the_model_will_not_load(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a TorchScript archive")
    broken = Backing([str(corrupt), "--input=x:float32:4"], model_name="tiny")
    with PodBacker(kubectl, namespace, lambda _pod: broken, tmp_path / "logs"):
        kubectl.apply(
            cpu_model("tiny", replicas=1, rollout={"progressDeadlineSeconds": 30}),
            namespace=namespace,
        )

        def degraded(stalled: str) -> Callable[[], dict[str, Any] | None]:
            def probe() -> dict[str, Any] | None:
                md = get_md(kubectl, namespace, "tiny")
                ok = cond(md, "Degraded").get("reason") == "ModelLoadFailed"
                return md if ok and cond(md, "Stalled").get("status") == stalled else None

            return probe

        judge(
            kubectl,
            wait_for(degraded("False"), timeout=150, what="ModelLoadFailed"),
            "model-load-failed",
        )
        judge(
            kubectl,
            wait_for(degraded("True"), timeout=90, what="ModelLoadFailed past the deadline"),
            "model-load-failed-stalled",
        )
