"""ModelDeployments through create -> edit -> canary promote -> canary rollback -> delete,
with the operator behind a fault-injecting proxy, against the same run without faults.

Both runs use a private operator (``gantry run`` limited to the run's namespace, which has a
prefix the session operator does not watch) talking to the API server through
``e2e.faults.FaultProxy``: switched off for the baseline, so requests are counted the same way
in both. Pods are KWOK pods backed by real runtimes (``e2e.backing``); canaries pause until
promoted or aborted by hand, so the scenario needs no traffic or Prometheus.

Judged against the baseline: the same end state per ModelDeployment (phase, revisions,
children by kind and name), no child duplicated or left behind, no canary decided twice (never
more than one CanaryStarted per canary, one CanaryPromoted, one rollback event), the operator
never crashed (exit status, no "crashed" in its log), and requests with faults at most
``MAX_REQUEST_RATIO`` times the baseline's (no retry storm).

An event whose create is refused by an injected fault is lost: the operator writes the status
first (the decision is recorded there, and the end state proves it happened) and does not write
the event again. Lost decision events are counted and printed, not failed.

CI size: ``GANTRY_E2E_FAULTS_MDS`` ModelDeployments (3), one faulty round. Long form:
``GANTRY_E2E_FAULTS_MDS=20 GANTRY_E2E_FAULTS_ROUNDS=3`` (each round a new seed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.canary_fixtures import FastStopBacker, toy_weights
from e2e.cluster import Kubectl
from e2e.conftest import OPERATOR_ENV
from e2e.faults import Fault, FaultConfig, FaultProxy, ProxyStats
from e2e.faults.scenario import Driver, Result
from e2e.faults.workload import crash_lines, healthy_backing, manifest, private_namespace
from e2e.operator_proc import OperatorProcess
from gantry.kube.config import from_kubeconfig
from tests.support.runtime_proc import requires_runtime

__all__ = ["toy_weights"]

MDS = int(os.environ.get("GANTRY_E2E_FAULTS_MDS", "3"))
ROUNDS = int(os.environ.get("GANTRY_E2E_FAULTS_ROUNDS", "1"))
# ModelDeployments in flight at once: each has up to two backed pods (a real Triton each).
CONCURRENCY = int(os.environ.get("GANTRY_E2E_FAULTS_CONCURRENCY", "6"))
SEED = int(os.environ.get("GANTRY_E2E_FAULTS_SEED", "11"))
MAX_REQUEST_RATIO = 5.0
RUN_TIMEOUT_S = 120.0 + 40.0 * MDS
# Runtimes backing pods at once: a ModelDeployment in flight has up to three pods (stable,
# canary, a surge pod), and a finished one's pods run on until the garbage collector reaches
# them (seconds to minutes on a loaded API server). The long form found 2 per slot too few.
MAX_BACKED = 3 * min(CONCURRENCY, MDS) + 4

pytestmark = [
    pytest.mark.runtime,
    requires_runtime,
    pytest.mark.timeout(int((1 + ROUNDS) * (RUN_TIMEOUT_S + 120))),
]

RATES = {
    Fault.HTTP_429: 0.02,
    Fault.HTTP_500: 0.02,
    Fault.HTTP_503: 0.02,
    Fault.HTTP_409: 0.03,
    Fault.RESET: 0.01,
    Fault.RESET_AFTER: 0.02,
    Fault.DELAY: 0.05,
    Fault.WATCH_CUT: 0.3,
}
# Canaries started, promoted and rolled back per ModelDeployment: two canaries, one each.
EXPECTED_DECISIONS = (2, 1, 1)


def faults(seed: int) -> FaultConfig:
    return FaultConfig(
        rates=RATES,
        seed=seed,
        max_faults=100_000,
        max_delay_s=0.5,
        watch_max_events=20,
        watch_max_s=10.0,
    )


@dataclass
class Run:
    """One run of the scenario and what its operator and proxy saw."""

    label: str
    result: Result
    stats: ProxyStats
    exit_code: int
    crashes: list[str]


def run_scenario(
    kubectl: Kubectl,
    kubeconfig: Path,
    work: Path,
    weights: Path,
    *,
    label: str,
    config: FaultConfig | None,
    mds: int = MDS,
) -> Run:
    """The whole scenario in a fresh namespace with a private operator behind the proxy."""
    work.mkdir(parents=True, exist_ok=True)

    upstream = from_kubeconfig(kubeconfig)
    with (
        private_namespace(kubectl, label) as ns,
        FastStopBacker(
            kubectl, ns, healthy_backing(weights), work / "pods", max_processes=MAX_BACKED
        ) as backer,
        FaultProxy(upstream, work, config or FaultConfig(), enabled=config is not None) as proxy,
    ):
        proxied = proxy.write_kubeconfig(kubeconfig, work / "kubeconfig")
        operator = OperatorProcess(
            work / "operator.log", kubeconfig=proxied, env=OPERATOR_ENV, namespaces=[ns]
        )
        operator.start(timeout=120)
        try:
            names = [f"md-{i}" for i in range(mds)]
            driver = Driver(
                kubectl, ns, names, manifest, concurrency=CONCURRENCY, timeout=RUN_TIMEOUT_S
            )
            result = driver.run()
        except BaseException:
            print(f"--- operator log tail ({operator.log_path}) ---\n{operator.tail(60)}")
            raise
        finally:
            code = operator.stop()
        backer.check()
        stats = proxy.stats()
    return Run(label, result, stats, code, crash_lines(work / "operator.log"))


def lost_events(run: Run) -> int:
    """Decision events that never reached the API server (the status still has the decision:
    the end state proves it); reported, not failed: see the module docstring."""
    missing = 0
    for events in run.result.rollout_events.values():
        decided = (events["Started"], events["Promoted"], events["RolledBack"])
        missing += sum(
            max(0, most - n) for n, most in zip(decided, EXPECTED_DECISIONS, strict=True)
        )
    return missing


def judge(run: Run, baseline: Run) -> list[str]:
    """Everything wrong with ``run``, compared with the fault-free ``baseline``."""
    problems: list[str] = []
    r, b = run.result, baseline.result
    for name, expected in b.end_states.items():
        got = r.end_states.get(name)
        if got != expected:
            problems.append(f"{name}: end state {got} != baseline {expected}")
    for name, most in r.max_deployments.items():
        if most > 2:
            problems.append(f"{name}: {most} Deployments at once (stable + canary is 2)")
    for name, most in r.max_services.items():
        if most > 1:
            problems.append(f"{name}: {most} Services")
    for name, events in r.rollout_events.items():
        decided = (events["Started"], events["Promoted"], events["RolledBack"])
        if any(n > most for n, most in zip(decided, EXPECTED_DECISIONS, strict=True)):
            problems.append(f"{name}: canaries (started, promoted, rolled back) {decided}")
    if r.leftovers:
        problems.append(f"children left after delete: {r.leftovers}")
    if run.exit_code != 0:
        problems.append(f"operator exited with {run.exit_code}")
    if run.crashes:
        problems.append(f"operator log says crashed: {run.crashes[:5]}")
    return problems


def summary(run: Run, baseline: Run) -> str:
    ratio = run.stats.total_requests / max(1, baseline.stats.total_requests)
    return (
        f"[faults] {run.label}: {len(run.result.end_states)} ModelDeployments in "
        f"{run.result.seconds:.0f}s; requests {run.stats.total_requests} vs "
        f"{baseline.stats.total_requests} without faults (x{ratio:.2f}); by verb "
        f"{dict(sorted(run.stats.requests.items()))} vs "
        f"{dict(sorted(baseline.stats.requests.items()))}; "
        f"faults {run.stats.total_faults} {dict(sorted(run.stats.faults.items()))}; "
        f"decision events lost {lost_events(run)}; operator exit {run.exit_code}, "
        f"'crashed' lines {len(run.crashes)}"
    )


def test_faults_at_the_api_boundary_change_nothing_but_the_request_count(
    crd_installed: None,
    kubectl: Kubectl,
    kubeconfig: Path | None,
    toy_weights: Path,
    tmp_path: Path,
) -> None:
    if kubeconfig is None:
        pytest.skip("the fault proxy needs the cluster's kubeconfig as one file")
    baseline = run_scenario(
        kubectl, kubeconfig, tmp_path / "baseline", toy_weights, label="base", config=None
    )
    assert baseline.stats.total_faults == 0
    problems = judge(baseline, baseline)
    assert not problems, "the fault-free run itself went wrong:\n" + "\n".join(problems)
    print(f"\n[faults] baseline: {MDS} ModelDeployments in {baseline.result.seconds:.0f}s")
    failures: list[str] = []
    for round_ in range(ROUNDS):
        run = run_scenario(
            kubectl,
            kubeconfig,
            tmp_path / f"faults-{round_}",
            toy_weights,
            label=f"round{round_}",
            config=faults(SEED + round_),
        )
        print(summary(run, baseline))
        failures += [f"round {round_}: {p}" for p in judge(run, baseline)]
        ratio = run.stats.total_requests / max(1, baseline.stats.total_requests)
        if ratio > MAX_REQUEST_RATIO:
            failures.append(f"round {round_}: requests x{ratio:.1f} > x{MAX_REQUEST_RATIO}")
        if run.stats.total_faults == 0:
            failures.append(f"round {round_}: no fault was injected")
    assert not failures, "\n".join(failures)
