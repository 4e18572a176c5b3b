"""Canary rollouts end to end: real control plane, real runtimes, real Prometheus.

Every pod of the ModelDeployment is a KWOK pod backed by a real ``gantry serve``
process (``e2e.backing``) that serves the model its version label names: v1 is
the healthy stable, v2 the canary (healthy, failing or slow). A load generator
plays the Service's clients, spreading requests evenly over the ready pods, so a
1-of-3 canary gets a third of the traffic. Prometheus (Debian's package, on
loopback) scrapes the runtimes' Triton metrics with the ``namespace``/``pod``
labels a PodMonitor would attach; the operator (``gantry run``, its own process)
judges the canary from PromQL, or from scraping the pods itself.

Analysis intervals are 2 s, so every scenario runs in well under two minutes.
Everything the operator writes is recorded through ``kubectl get -w``, so the
assertions see every status write and every Deployment change, not samples.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from e2e.backing import Backing
from e2e.canary_fixtures import FastStopBacker, Watch, WatchEvent, prometheus, toy_weights
from e2e.cluster import Kubectl
from e2e.cluster.api import KubectlError
from e2e.loadgen import LoadGenerator, backer_targets
from e2e.operator_proc import OperatorProcess
from e2e.prometheus_proc import PodTargets, PrometheusProcess
from e2e.test_operator import condition, cpu_model
from e2e.waiting import wait_for
from tests.support.runtime_proc import requires_runtime

__all__ = ["prometheus", "toy_weights"]  # session fixtures used here

pytestmark = [
    pytest.mark.usefixtures("operator"),
    pytest.mark.runtime,
    requires_runtime,
    pytest.mark.timeout(300),
]

NAME = "tiny"
VERSION_LABEL = "app.kubernetes.io/version"
INTERVAL_S = 2.0
FAILURE_LIMIT = 1
STABLE_REPLICAS = 2
LOAD_RATE = 20.0
# Operator resync (1 s), probes, Prometheus discovery (file_sd 1 s + scrape 1 s)
# and the 0.5 s polls of this test all sit between "pod ready" and "Aborted".
ROLLBACK_SLACK_S = 12.0

PROMOTE_STEPS: list[dict[str, Any]] = [
    {"setWeight": 34},  # 1 canary beside 2 stable: 33%
    {"analysis": {"intervals": 2}},
    {"setWeight": 50},  # 2 beside 2: 50%
    {"analysis": {"intervals": 1}},
]


def backing(weights: Path, factory: str, version: int) -> Backing:
    return Backing(
        [
            str(weights),
            "--format=pytorch",
            f"--module=e2e.toy_models:{factory}",
            "--input=x:float32:4",
            "--torch-threads=1",
        ],
        model_name=NAME,
        model_version=version,
    )


def analysis_spec(provider: dict[str, Any], **checks: Any) -> dict[str, Any]:
    return {
        "interval": f"{INTERVAL_S:g}s",
        "failureLimit": FAILURE_LIMIT,
        "inconclusiveLimit": 3,
        "minRequestCount": 3,
        "successRate": {"min": 0.99},
        "provider": provider,
        **checks,
    }


def prometheus_provider(prom: PrometheusProcess) -> dict[str, Any]:
    return {"type": "prometheus", "address": prom.url}


SCRAPE = {"type": "scrape"}


def canary_md(
    version: int, steps: list[dict[str, Any]], analysis: dict[str, Any]
) -> dict[str, Any]:
    return cpu_model(
        NAME,
        model={"name": NAME, "uri": "https://models.example/tiny.tar.gz", "version": str(version)},
        replicas=STABLE_REPLICAS,
        # Small requests, and the GPU nodes' CPUs allowed too: the local cluster is shared
        # (a benchmark may fill its one CPU node), and these pods only need to be placed.
        resources={"cpu": "100m", "memory": "256Mi"},
        placement={"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
        rollout={"strategy": "canary", "canary": {"steps": steps, "analysis": analysis}},
    )


def pod_regex(deployment: str) -> re.Pattern[str]:
    """Pods of one Deployment and no other (as the operator's PromQL selects them)."""
    return re.compile(re.escape(deployment) + r"-[a-z0-9]+-[a-z0-9]+")


def status_of(event: WatchEvent) -> dict[str, Any]:
    status: dict[str, Any] = event.obj.get("status") or {}
    return status


@dataclass
class Sample:
    """One poll: the ModelDeployment and the Deployments, as the test saw them."""

    at: float
    md: dict[str, Any]
    deployments: dict[str, dict[str, Any]]


@dataclass
class Scenario:
    """A backed namespace with recorders; everything stops on exit, in reverse order."""

    kubectl: Kubectl
    namespace: str
    work: Path
    models: dict[int, Backing]
    operator: OperatorProcess
    prometheus: PrometheusProcess | None = None
    samples: list[Sample] = field(default_factory=list)
    pids: dict[str, set[int]] = field(default_factory=dict)
    load: LoadGenerator | None = None

    def __post_init__(self) -> None:
        self._stack = ExitStack()
        self.backer = FastStopBacker(
            self.kubectl, self.namespace, self._choose, self.work / "pods", max_processes=6
        )
        self.md_watch = Watch(
            self.kubectl, "md", "-n", self.namespace, log_path=self.work / "md-watch.err"
        )
        self.deploy_watch = Watch(
            self.kubectl, "deployments", "-n", self.namespace, log_path=self.work / "dep-watch.err"
        )

    def _choose(self, pod: dict[str, Any]) -> Backing | None:
        return self.models.get(int(pod["metadata"]["labels"][VERSION_LABEL]))

    def __enter__(self) -> Scenario:
        try:
            self._stack.enter_context(self.backer)
            if self.prometheus is not None:
                self._stack.enter_context(PodTargets(self.prometheus, self.backer))
            self._stack.enter_context(self.md_watch)
            self._stack.enter_context(self.deploy_watch)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc is not None:
                self.dump()
            if self.load is not None:
                self.load.stop()
            self.save_history()
            self.backer.pause()
            self.delete_md()
        finally:
            self._stack.close()

    def save_history(self) -> None:
        """Every status write and Deployment change, one JSON line each, for post-mortems."""
        with contextlib.suppress(Exception), (self.work / "history.jsonl").open("w") as out:
            events = [("md", e) for e in self.md_watch.snapshot()]
            events += [("deployment", e) for e in self.deploy_watch.snapshot()]
            for kind, e in sorted(events, key=lambda pair: pair[1].at):
                body = e.obj.get("status") if kind == "md" else e.obj
                out.write(json.dumps({"at": e.at, "kind": kind, "type": e.type, "body": body}))
                out.write("\n")

    def delete_md(self) -> None:
        """Delete the ModelDeployment while its namespace is active (bounded wait).

        The operator then sees the deletion itself: an object that goes only with
        its namespace depends on the operator still watching a namespace marked for
        deletion (kopf stops as soon as no deletion condition blocks), and an
        operator holding a finalizer on it would keep the namespace Terminating.
        """
        with contextlib.suppress(Exception):
            self.kubectl(
                "delete",
                "md",
                NAME,
                "-n",
                self.namespace,
                "--ignore-not-found",
                "--wait=true",
                "--timeout=60s",
                timeout=75,
            )

    def dump(self) -> None:
        """What a failure needs: the status, the Deployments, the operator's log tail."""
        with contextlib.suppress(Exception):
            print("--- ModelDeployment ---")
            print(self.kubectl("get", "md", NAME, "-n", self.namespace, "-o", "yaml").stdout)
        with contextlib.suppress(Exception):
            print(self.kubectl("get", "deploy,rs,pods,svc", "-n", self.namespace).stdout)
        with contextlib.suppress(Exception):
            print(self.kubectl("get", "events", "-n", self.namespace).stdout)
        print(f"--- operator log ({self.operator.log_path}) ---\n{self.operator.tail(80)}")
        if self.load is not None:
            print(f"--- load ---\n{self.load.snapshot()}")

    def start_load(self, rate: float = LOAD_RATE) -> LoadGenerator:
        self.load = LoadGenerator(
            backer_targets(self.backer), rate=rate, max_requests=8000, max_duration=240.0
        )
        self._stack.enter_context(self.load)
        return self.load

    # -- observing -------------------------------------------------------------------------

    def poll(self) -> Sample:
        items: list[dict[str, Any]] = self.kubectl.json(
            "get", "md,deployments", "-n", self.namespace
        )["items"]
        md: dict[str, Any] = next((i for i in items if i["kind"] == "ModelDeployment"), {})
        deps = {i["metadata"]["name"]: i for i in items if i["kind"] == "Deployment"}
        sample = Sample(time.monotonic(), md, deps)
        self.samples.append(sample)
        for pod, proc in list(self.backer.processes.items()):
            with contextlib.suppress(Exception):
                self.pids.setdefault(pod, set()).add(proc.pid)
        return sample

    def wait_md(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll (recording every sample) until the ModelDeployment satisfies ``predicate``."""

        def probe() -> dict[str, Any] | None:
            self.backer.check()
            md = self.poll().md
            return md if md and predicate(md) else None

        return wait_for(probe, timeout=timeout, interval=0.5, what=what)

    def deploy_stable(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Apply the first revision and wait until both its pods serve the model."""
        self.kubectl.apply(manifest, namespace=self.namespace)

        def ready(md: dict[str, Any]) -> bool:
            status = md.get("status") or {}
            stable = status.get("stable") or {}
            return (
                status.get("phase") == "Ready"
                and stable.get("modelReadyReplicas") == STABLE_REPLICAS
            )

        return self.wait_md(ready, timeout=120, what="stable v1 Ready with every model ready")

    def backed_pods(self, deployment: str) -> dict[str, int]:
        """Backed pods of one Deployment and their runtime pids."""
        regex = pod_regex(deployment)
        return {
            name: proc.pid
            for name, proc in list(self.backer.processes.items())
            if regex.fullmatch(name)
        }

    def md_history(self) -> list[tuple[float, dict[str, Any]]]:
        """Every status the API server sent for the ModelDeployment, in order."""
        return [(e.at, status_of(e)) for e in self.md_watch.snapshot() if e.name == NAME]

    def canary_history(self, revision: str) -> list[tuple[float, dict[str, Any]]]:
        return [
            (at, s["canary"])
            for at, s in self.md_history()
            if (s.get("canary") or {}).get("revision") == revision
        ]

    def deployment_events(self) -> list[WatchEvent]:
        return self.deploy_watch.snapshot()

    def events(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kubectl.json("get", "events", "-n", self.namespace)[
            "items"
        ]
        return [e for e in items if e["involvedObject"].get("kind") == "ModelDeployment"]


@pytest.fixture
def scenario_factory(
    kubectl: Kubectl, namespace: str, tmp_path: Path, operator: OperatorProcess
) -> Callable[..., Scenario]:
    def make(models: dict[int, Backing], prom: PrometheusProcess | None = None) -> Scenario:
        return Scenario(kubectl, namespace, tmp_path, models, operator, prometheus=prom)

    return make


def dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def assert_capacity_never_dropped(
    events: list[WatchEvent], samples: list[Sample], *, stable: str, since: float
) -> tuple[int, int]:
    """The stable Deployment held its replicas, all ready, from ``since`` on: in the state
    it had then and in every later watch event and poll. Returns (events, polls) checked."""
    seen_events = 0
    mine = [e for e in events if e.name == stable]
    # The state at ``since`` is the last event before it; then every later event.
    before = [e for e in mine if e.at < since][-1:]
    for e in before + [e for e in mine if e.at >= since]:
        assert e.type != "DELETED", "the stable Deployment was deleted"
        spec = e.obj["spec"].get("replicas")
        ready = e.obj.get("status", {}).get("readyReplicas", 0)
        assert spec == STABLE_REPLICAS, f"stable scaled to {spec}: {e.obj.get('status')}"
        assert ready >= STABLE_REPLICAS, f"stable ready {ready} < {STABLE_REPLICAS}"
        seen_events += 1
    seen_polls = 0
    for s in samples:
        if s.at < since:
            continue
        dep = s.deployments.get(stable)
        assert dep is not None, "the stable Deployment disappeared"
        ready = dep.get("status", {}).get("readyReplicas", 0)
        assert dep["spec"]["replicas"] == STABLE_REPLICAS
        assert ready >= STABLE_REPLICAS, f"stable ready {ready} < {STABLE_REPLICAS} in a poll"
        seen_polls += 1
    return seen_events, seen_polls


def assert_serving_capacity_held(events: list[WatchEvent], *, since: float) -> None:
    """Ready pods over all Deployments never fell below the stable size after ``since``
    (the promotion handover gives up a stable pod only for an available canary pod)."""
    ready: dict[str, int] = {}
    for e in events:
        if e.type == "DELETED":
            ready.pop(e.name, None)
        else:
            ready[e.name] = e.obj.get("status", {}).get("readyReplicas", 0)
        if e.at >= since:
            total = sum(ready.values())
            assert total >= STABLE_REPLICAS, f"ready pods fell to {total}: {ready}"


def promoted_to(revision_of: Callable[[], str]) -> Callable[[dict[str, Any]], bool]:
    def check(md: dict[str, Any]) -> bool:
        status = md.get("status") or {}
        canary, stable = status.get("canary") or {}, status.get("stable") or {}
        return (
            canary.get("phase") == "Promoted"
            and stable.get("revision") == canary.get("revision") == revision_of()
            and status.get("phase") == "Ready"
        )

    return check


def stable_health_during_canary(sc: Scenario, revision: str) -> set[tuple[Any, ...]]:
    """(phase, ModelReady status and reason, stable model-ready pods) in every status
    written while the canary was in flight."""
    seen = set()
    for _, status in sc.md_history():
        canary = status.get("canary") or {}
        if canary.get("revision") != revision or canary.get("phase") not in (
            "Progressing",
            "Paused",
        ):
            continue
        cond = condition({"status": status}, "ModelReady")
        stable = status.get("stable") or {}
        seen.add(
            (
                status.get("phase"),
                cond.get("status"),
                cond.get("reason"),
                stable.get("modelReadyReplicas"),
            )
        )
    return seen


def note_stable_health(health: set[tuple[Any, ...]]) -> None:
    """The status never called the stable's models unready during the canary.

    The load generator meanwhile got only successful answers from the stable pods;
    each pod must be probed for the model version its own revision serves.
    """
    wrong = {h for h in health if h[1] != "True" or h[3] != STABLE_REPLICAS}
    assert not wrong, (
        f"status reported the serving stable as not model-ready during the canary: "
        f"{sorted(wrong, key=str)} (phase, ModelReady, reason, stable.modelReadyReplicas)"
    )


def assert_continuous(sc: Scenario, revision: str) -> list[int]:
    """The canary's step never went back in any status write; returns the step indexes.

    A canary starts once: a second ``startedAt`` for the same revision means a
    reconcile decided from a stale copy of the object.
    """
    history = sc.canary_history(revision)
    indexes = [c["stepIndex"] for _, c in history]
    assert indexes == sorted(indexes), f"the canary's step went back: {dedupe(indexes)}"
    starts = dedupe([c["startedAt"] for _, c in history])
    assert len(starts) == len(set(starts)), f"an earlier canary start came back: {starts}"
    assert len(starts) == 1, f"canary {revision} started {len(starts)} times: {starts}"
    return indexes


def canary_revision(md: dict[str, Any]) -> str | None:
    canary = (md.get("status") or {}).get("canary") or {}
    return canary.get("revision")


def assert_promoted_end_state(
    sc: Scenario, md: dict[str, Any], *, old_stable: str, canary_pods: dict[str, int]
) -> str:
    """The promoted canary is the only Deployment, with the same pods, and nothing is left."""
    status = md["status"]
    canary, stable = status["canary"], status["stable"]
    new = canary["deployment"]
    assert stable["deployment"] == new
    assert stable["revision"] == canary["revision"]
    assert stable["modelVersion"] == "2"
    assert canary["phase"] == "Promoted"
    assert canary["reason"] == "Promoted"
    assert status["phase"] == "Ready"
    assert condition(md, "Ready")["status"] == "True"
    assert condition(md, "Degraded").get("status") != "True"
    ns = sc.namespace

    def settled() -> dict[str, list[str]] | None:
        # Garbage collection of the old ReplicaSet and pods is asynchronous: bounded wait.
        kinds = sc.kubectl.json("get", "deployments,replicasets,pods,services,pdb", "-n", ns)
        names: dict[str, list[str]] = {}
        for item in kinds["items"]:
            names.setdefault(item["kind"], []).append(item["metadata"]["name"])
        pods = names.get("Pod", [])
        rss = names.get("ReplicaSet", [])
        done = (
            names.get("Deployment") == [new]
            and len(rss) == 1
            and rss[0].startswith(f"{new}-")
            and sorted(pods) == sorted(canary_pods)
        )
        return names if done else None

    names = wait_for(settled, timeout=45, what="only the promoted Deployment's children left")
    with pytest.raises(KubectlError):
        sc.kubectl("get", "deployment", old_stable, "-n", ns)
    assert names.get("Service") == [NAME], names
    assert len(names.get("PodDisruptionBudget", [])) <= 1, names
    # The pods that served as canary serve as stable: same pods, same processes.
    final = sc.backed_pods(new)
    assert final == canary_pods, (final, canary_pods)
    for pod in final:
        assert len(sc.pids[pod]) == 1, f"{pod} was restarted: {sc.pids[pod]}"
    return str(new)


# -- promote ---------------------------------------------------------------------------------


def test_healthy_canary_is_promoted_step_by_step(
    scenario_factory: Callable[..., Scenario],
    prometheus: PrometheusProcess,
    toy_weights: Path,
    kubectl: Kubectl,
) -> None:
    models = {1: backing(toy_weights, "healthy", 1), 2: backing(toy_weights, "healthy", 2)}
    analysis = analysis_spec(prometheus_provider(prometheus), latency={"maxMs": 250})
    begin = time.monotonic()
    with scenario_factory(models, prometheus) as sc:
        sc.deploy_stable(canary_md(1, PROMOTE_STEPS, analysis))
        load = sc.start_load()
        applied = time.monotonic()
        sc.kubectl.apply(canary_md(2, PROMOTE_STEPS, analysis), namespace=sc.namespace)
        revision = ""
        canary_pods: dict[str, int] = {}

        def watch_canary(md: dict[str, Any]) -> bool:
            nonlocal revision, canary_pods
            revision = canary_revision(md) or revision
            canary = md["status"].get("canary") or {}
            if canary.get("phase") == "Progressing" and canary.get("stepIndex", 0) >= 3:
                canary_pods = sc.backed_pods(canary["deployment"])
            return promoted_to(lambda: revision)(md)

        md = sc.wait_md(watch_canary, timeout=150, what="canary v2 promoted")
        took = time.monotonic() - applied
        canary = md["status"]["canary"]

        # Every step, in order, as the status showed it (every write, from the watch).
        history = sc.canary_history(revision)
        steps = dedupe([c["stepIndex"] for _, c in history if c["phase"] == "Progressing"])
        assert steps == [0, 1, 2, 3, 4], steps
        assert_continuous(sc, revision)
        weights = {
            c["stepIndex"]: (c["weight"], c["actualWeight"])
            for _, c in history
            if c["phase"] == "Progressing"
        }
        assert weights == {0: (34, 33), 1: (34, 33), 2: (50, 50), 3: (50, 50), 4: (100, 100)}
        assert canary["analysis"]["failures"] == 0
        assert canary["analysis"]["successes"] >= 3
        verdicts = {run["verdict"] for run in canary["analysis"]["history"]}
        assert "Failed" not in verdicts, canary["analysis"]["history"]
        last = {m["name"]: m for m in canary["analysis"]["last"]["metrics"]}
        assert last["success-rate"]["verdict"] == "Successful"
        assert last["success-rate"]["value"] == pytest.approx(1.0)
        assert last["latency-mean"]["verdict"] == "Successful"
        assert "namespace=" in last["request-count"]["query"], last["request-count"]

        note_stable_health(stable_health_during_canary(sc, revision))
        assert len(canary_pods) == 2, canary_pods
        new = assert_promoted_end_state(sc, md, old_stable=NAME, canary_pods=canary_pods)
        assert new == canary["deployment"]
        assert_serving_capacity_held(sc.deployment_events(), since=applied)

        reasons = [e["reason"] for e in sc.events()]
        for reason in ("CanaryStarted", "CanaryStep", "CanaryPromoting", "CanaryPromoted"):
            assert reason in reasons, reasons
        assert "AnalysisIntervalFailed" not in reasons, reasons

        load.check()
        v2 = load.totals(version=2)
        v1 = load.totals(version=1)
        assert v2.ok > 0, load.snapshot()
        assert v2.failed == 0, load.snapshot()
        assert v1.ok > 0, load.snapshot()
        # The old stable's pods go at the handover: a request sent in the moment between
        # a pod's deletion and the next refresh of the client's endpoints may fail, as
        # with a Service whose endpoints lag; never more than a few.
        assert v1.failed + v1.unreachable <= 5, load.snapshot()
        sc.backer.check()
        print(
            f"\n[promote] canary {revision}: promoted {took:.1f}s after the spec change "
            f"(scenario {time.monotonic() - begin:.1f}s); steps seen {steps}; "
            f"load v1 ok={v1.ok} failed={v1.failed} unreachable={v1.unreachable}, "
            f"v2 ok={v2.ok} failed={v2.failed} unreachable={v2.unreachable}"
        )


# -- rollback --------------------------------------------------------------------------------

ROLLBACK_STEPS: list[dict[str, Any]] = [{"setWeight": 34}, {"analysis": {"intervals": 5}}]


@pytest.mark.parametrize(
    ("factory", "checks", "failing"),
    [
        ("fails_on_traffic", {}, "success-rate"),
        ("slow", {"latency": {"maxMs": 100}}, "latency-mean"),
    ],
    ids=["errors", "slow"],
)
def test_faulty_canary_is_rolled_back_in_time(
    scenario_factory: Callable[..., Scenario],
    prometheus: PrometheusProcess,
    toy_weights: Path,
    factory: str,
    checks: dict[str, Any],
    failing: str,
) -> None:
    models = {1: backing(toy_weights, "healthy", 1), 2: backing(toy_weights, factory, 2)}
    analysis = analysis_spec(prometheus_provider(prometheus), **checks)
    begin = time.monotonic()
    with scenario_factory(models, prometheus) as sc:
        sc.deploy_stable(canary_md(1, ROLLBACK_STEPS, analysis))
        load = sc.start_load()
        applied = time.monotonic()
        sc.kubectl.apply(canary_md(2, ROLLBACK_STEPS, analysis), namespace=sc.namespace)

        def aborted(md: dict[str, Any]) -> bool:
            return (md["status"].get("canary") or {}).get("phase") == "Aborted"

        md = sc.wait_md(aborted, timeout=120, what="canary v2 Aborted")
        status, canary = md["status"], md["status"]["canary"]
        assert canary["reason"] == "AnalysisFailed", canary
        assert canary["analysis"]["failures"] == FAILURE_LIMIT + 1, canary["analysis"]
        assert canary["stepIndex"] <= 1
        degraded = condition(md, "Degraded")
        assert degraded["status"] == "True", degraded
        assert degraded["reason"] == "AnalysisFailed", degraded
        assert status["stable"]["deployment"] == NAME
        assert status["stable"]["modelVersion"] == "1"
        assert failing in canary["message"], canary["message"]

        last = {m["name"]: m for m in canary["analysis"]["last"]["metrics"]}
        assert canary["analysis"]["last"]["verdict"] == "Failed"
        bad = last[failing]
        assert bad["verdict"] == "Failed", bad
        assert bad["value"] is not None, bad
        if failing == "success-rate":
            assert bad["value"] == pytest.approx(0.0), bad
            assert bad["threshold"] == ">= 0.99", bad
        else:
            assert bad["value"] > 100, bad
            assert bad["threshold"] == "<= 100ms", bad
        assert last["request-count"]["value"] >= 3, last

        # The rollback deletes the canary Deployment; the spec is not retried.
        canary_dep = canary["deployment"]

        def canary_gone() -> bool:
            return canary_dep not in sc.poll().deployments and not sc.backed_pods(canary_dep)

        wait_for(canary_gone, timeout=30, what=f"{canary_dep} deleted")
        time.sleep(2 * INTERVAL_S)
        assert list(sc.poll().deployments) == [NAME]

        # Timing: from the first canary pod answering ready to the Aborted status.
        (pod,) = [p for p, s in load.snapshot().items() if s.model_version == 2]
        ready_at = load.snapshot()[pod].ready_at
        assert ready_at is not None
        aborted_at = next(
            at for at, c in sc.canary_history(canary["revision"]) if c["phase"] == "Aborted"
        )
        elapsed = aborted_at - ready_at
        bound = INTERVAL_S * (FAILURE_LIMIT + 1) + INTERVAL_S
        assert elapsed <= bound + ROLLBACK_SLACK_S, (elapsed, bound)

        # The stable held every replica, ready, throughout, and never failed a request.
        n_events, n_polls = assert_capacity_never_dropped(
            sc.deployment_events(), sc.samples, stable=NAME, since=applied
        )
        assert n_events >= 1
        assert n_polls >= 5
        load.check()
        v1, v2 = load.totals(version=1), load.totals(version=2)
        assert v1.ok > 0, load.snapshot()
        assert (v1.failed, v1.unreachable) == (0, 0), load.snapshot()
        if failing == "success-rate":
            assert v2.failed > 0, load.snapshot()
            assert v2.ok == 0, load.snapshot()
        reasons = [e["reason"] for e in sc.events()]
        assert "AnalysisIntervalFailed" in reasons, reasons
        assert "AnalysisFailed" in reasons, reasons
        assert "CanaryPromoted" not in reasons
        sc.backer.check()
        print(
            f"\n[rollback-{factory}] Aborted {elapsed:.1f}s after the canary pod was ready "
            f"(bound interval*(failureLimit+1)+interval = {bound:g}s, +{ROLLBACK_SLACK_S:g}s "
            f"slack); {aborted_at - applied:.1f}s after the spec change; scenario "
            f"{time.monotonic() - begin:.1f}s; stable checked in {n_events} watch events and "
            f"{n_polls} polls; load v1 ok={v1.ok}, v2 ok={v2.ok} failed={v2.failed}; "
            f"{failing}={bad['value']:.4g} vs {bad['threshold']}"
        )


# -- no traffic ------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["scrape", "prometheus"])
def test_canary_without_traffic_is_inconclusive_and_pauses(
    scenario_factory: Callable[..., Scenario],
    request: pytest.FixtureRequest,
    toy_weights: Path,
    provider: str,
) -> None:
    models = {1: backing(toy_weights, "healthy", 1), 2: backing(toy_weights, "healthy", 2)}
    # Prometheus only where this case uses it: the scrape case runs without one.
    prom = request.getfixturevalue("prometheus") if provider == "prometheus" else None
    source = prometheus_provider(prom) if prom is not None else SCRAPE
    limit = 2
    analysis = {**analysis_spec(source), "inconclusiveLimit": limit}
    steps: list[dict[str, Any]] = [{"setWeight": 34}, {"analysis": {"intervals": 1}}]
    begin = time.monotonic()
    with scenario_factory(models, prom) as sc:
        sc.deploy_stable(canary_md(1, steps, analysis))
        applied = time.monotonic()
        sc.kubectl.apply(canary_md(2, steps, analysis), namespace=sc.namespace)

        def paused(md: dict[str, Any]) -> bool:
            return (md["status"].get("canary") or {}).get("phase") == "Paused"

        md = sc.wait_md(paused, timeout=90, what="canary v2 Paused")
        took = time.monotonic() - applied
        canary = md["status"]["canary"]
        assert canary["reason"] == "InconclusiveAnalysis", canary
        a = canary["analysis"]
        assert a["last"]["verdict"] == "Inconclusive", a["last"]
        assert a["inconclusive"] == limit + 1, a
        assert (a["successes"], a["failures"], a["stepSuccesses"]) == (0, 0, 0), a
        assert {run["verdict"] for run in a["history"]} == {"Inconclusive"}, a["history"]
        count = next(m for m in a["last"]["metrics"] if m["name"] == "request-count")
        assert "too little traffic" in count["message"], count
        assert count["value"] in (0, None), count
        assert canary["stepIndex"] <= 1
        assert md["status"]["stable"]["deployment"] == NAME
        assert "InconclusiveAnalysis" in md["status"]["message"] or "evidence" in (
            md["status"]["message"] + canary["message"]
        )

        # Held, not promoted: the canary keeps its pod and its place for a while.
        time.sleep(3 * INTERVAL_S)
        later = sc.poll().md["status"]["canary"]
        assert later["phase"] == "Paused", later
        assert later["stepIndex"] == canary["stepIndex"], later
        assert canary["deployment"] in sc.poll().deployments
        history = sc.canary_history(canary["revision"])
        assert all(c["phase"] in ("Progressing", "Paused") for _, c in history)
        assert all(c["analysis"]["successes"] == 0 for _, c in history)
        reasons = [e["reason"] for e in sc.events()]
        assert "CanaryPaused" in reasons, reasons
        assert "CanaryPromoted" not in reasons, reasons
        sc.backer.check()
        print(
            f"\n[no-traffic-{provider}] Paused (InconclusiveAnalysis) {took:.1f}s after the "
            f"spec change; scenario {time.monotonic() - begin:.1f}s"
        )


# -- operator killed mid-rollout --------------------------------------------------------------

RESTART_STEPS: list[dict[str, Any]] = [
    {"setWeight": 34},
    {"analysis": {"intervals": 3}},
    {"setWeight": 50},
    {"analysis": {"intervals": 1}},
]


@pytest.mark.parametrize("provider", ["scrape"])
def test_operator_killed_mid_rollout_resumes(
    scenario_factory: Callable[..., Scenario],
    request: pytest.FixtureRequest,
    toy_weights: Path,
    operator: OperatorProcess,
    provider: str,
) -> None:
    models = {1: backing(toy_weights, "healthy", 1), 2: backing(toy_weights, "healthy", 2)}
    # Prometheus only where this case uses it: the scrape case runs without one.
    prom = request.getfixturevalue("prometheus") if provider == "prometheus" else None
    source = prometheus_provider(prom) if prom is not None else SCRAPE
    analysis = analysis_spec(source)
    begin = time.monotonic()
    with scenario_factory(models, prom) as sc:
        sc.deploy_stable(canary_md(1, RESTART_STEPS, analysis))
        load = sc.start_load()
        applied = time.monotonic()
        sc.kubectl.apply(canary_md(2, RESTART_STEPS, analysis), namespace=sc.namespace)

        def at_analysis(md: dict[str, Any]) -> bool:
            canary = md["status"].get("canary") or {}
            return canary.get("phase") == "Progressing" and canary.get("stepIndex", 0) >= 1

        before = sc.wait_md(at_analysis, timeout=90, what="canary at step >= 1")["status"]
        revision = before["canary"]["revision"]
        code = operator.stop(sig=signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            assert code == -signal.SIGKILL, code
            time.sleep(3 * INTERVAL_S)  # traffic keeps flowing; nobody acts
            frozen = sc.poll().md["status"]
        finally:
            restarting = time.monotonic()
            operator.start()  # returns once live; it may have written the status by then
        restarted_at = time.monotonic()
        # Nothing wrote the status while the operator was dead (the watch may deliver
        # the killed operator's last write a moment late), and it stayed as it was left.
        writes = [at for at, _ in sc.md_history() if killed_at + 1.0 < at < restarting]
        assert not writes, f"status written while the operator was down: {writes}"
        left = [st for at, st in sc.md_history() if at < restarting][-1]
        assert frozen["canary"] == left["canary"]
        assert frozen["canary"]["stepIndex"] >= 1

        canary_pods: dict[str, int] = {}

        def done(md: dict[str, Any]) -> bool:
            nonlocal canary_pods
            canary = md["status"].get("canary") or {}
            if canary.get("phase") == "Progressing" and canary.get("stepIndex", 0) >= 3:
                canary_pods = sc.backed_pods(canary["deployment"])
            return promoted_to(lambda: revision)(md)

        md = sc.wait_md(done, timeout=150, what="canary promoted after the restart")
        took = time.monotonic() - applied
        note_stable_health(stable_health_during_canary(sc, revision))
        assert len(canary_pods) == 2, canary_pods
        assert_promoted_end_state(sc, md, old_stable=NAME, canary_pods=canary_pods)

        # Continuity: the canary the operator left is the one it resumed, its step never
        # going back; one canary revision only.
        indexes = assert_continuous(sc, revision)
        assert dedupe(indexes) == [0, 1, 2, 3, 4], dedupe(indexes)
        after = {c["startedAt"] for at, c in sc.canary_history(revision) if at >= restarting}
        assert after == {before["canary"]["startedAt"]}, (after, before["canary"])
        revisions = dedupe([(s.get("canary") or {}).get("revision") for _, s in sc.md_history()])
        assert revisions in ([None, revision], [revision]), revisions
        # No duplicate or orphaned children at any time: one stable, one canary.
        names = {e.name for e in sc.deployment_events()}
        assert names == {NAME, md["status"]["stable"]["deployment"]}, names
        reasons = [e["reason"] for e in sc.events()]
        assert "CanaryAbandoned" not in reasons
        assert "CanaryStepsChanged" not in reasons
        assert_serving_capacity_held(sc.deployment_events(), since=applied)
        load.check()
        assert load.totals(version=2).failed == 0, load.snapshot()
        sc.backer.check()
        print(
            f"\n[restart-{provider}] killed at step {before['canary']['stepIndex']}, down "
            f"{restarted_at - killed_at:.1f}s, promoted {took:.1f}s after the spec change; "
            f"scenario {time.monotonic() - begin:.1f}s; steps {dedupe(indexes)}"
        )
