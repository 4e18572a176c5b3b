"""The operator SIGKILLed at random moments of the fault scenario, Sieve-style, and the
leader of two replicas killed mid-canary, with the API server's audit log as the witness.

* ``test_killed_at_random_moments_same_end_state``: the lifecycle of ``e2e.faults`` (create ->
  canary promoted -> canary rolled back -> delete) for ``GANTRY_E2E_KILL_MDS`` ModelDeployments
  (2), ``GANTRY_E2E_KILL_RUNS`` times (2; long form 30). Each run SIGKILLs its private operator
  at a moment drawn from a seeded generator and starts it again at once. Every run must end in
  the same state, with no child duplicated or left behind and no canary decided twice.
* ``test_the_audit_log_names_each_writer``: the audit policy and reader on a private cluster
  started with them (the shared cluster only gets the audit log at its next ``up``).
* ``test_leader_killed_mid_canary_standby_resumes``: two replicas with leader election on a
  private audited cluster; the leader is SIGKILLed while a canary waits; the standby takes
  the Lease, finishes that same canary, and the audit log shows that the two never wrote in
  the same window: all writes of one, then all writes of the other.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.canary_fixtures import FastStopBacker, toy_weights
from e2e.cluster import REPO_ROOT, Cluster, Kubectl
from e2e.cluster import audit as audit_log
from e2e.conftest import OPERATOR_ENV
from e2e.faults.lifecycle import EndState, Stage
from e2e.faults.scenario import Driver, Result, ScenarioTimeout
from e2e.faults.workload import crash_lines, healthy_backing, manifest, private_namespace
from e2e.operator_proc import OperatorProcess
from tests.support.runtime_proc import requires_runtime

__all__ = ["toy_weights"]

RUNS = int(os.environ.get("GANTRY_E2E_KILL_RUNS", "2"))
MDS = int(os.environ.get("GANTRY_E2E_KILL_MDS", "2"))
SEED = int(os.environ.get("GANTRY_E2E_KILL_SEED", "7"))
# The kill falls somewhere in KILL_WINDOW_S of a run: a run takes 25-45 s on a 2-core machine,
# so every run is killed, in any stage from creation to deletion.
KILL_WINDOW_S = (1.0, 25.0)
RUN_TIMEOUT_S = 300.0 + 30.0 * MDS

pytestmark = [pytest.mark.runtime, requires_runtime]


def _external_cluster() -> bool:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or os.environ.get("GANTRY_E2E_OWN_CLUSTER"):
        return False
    return Path(kubeconfig).resolve() != (REPO_ROOT / ".cluster" / "kubeconfig").resolve()


def check_result(result: Result, expected: dict[str, EndState] | None) -> list[str]:
    """What is wrong with one run: end states (against ``expected``), duplicates, leftovers,
    canaries decided twice."""
    problems = []
    for name, end in result.end_states.items():
        if (end.stable_version, end.canary_version, end.canary_phase) != ("2", "3", "Aborted"):
            problems.append(f"{name}: end state {end}")
        if expected is not None and expected.get(name) != end:
            problems.append(f"{name}: end state {end} != first run's {expected.get(name)}")
    for name, most in result.max_deployments.items():
        if most > 2:
            problems.append(f"{name}: {most} Deployments at once")
    for name, events in result.rollout_events.items():
        decided = (events["Started"], events["Promoted"], events["RolledBack"])
        if any(n > most for n, most in zip(decided, (2, 1, 1), strict=True)):
            problems.append(f"{name}: canaries (started, promoted, rolled back) {decided}")
    if result.leftovers:
        problems.append(f"children left after delete: {result.leftovers}")
    return problems


class Killer:
    """SIGKILLs the operator once, at a drawn moment of the run, and starts it again."""

    def __init__(self, operator: OperatorProcess, rng: random.Random) -> None:
        self.operator = operator
        self.kill_at = rng.uniform(*KILL_WINDOW_S)
        self.kills: list[tuple[float, dict[str, Stage]]] = []

    def __call__(self, driver: Driver) -> None:
        elapsed = time.monotonic() - driver.started
        if self.kills or elapsed < self.kill_at:
            return
        code = self.operator.stop(sig=signal.SIGKILL)
        assert code == -signal.SIGKILL, f"operator had already exited with {code}"
        self.kills.append((elapsed, driver.stages()))
        self.operator.start(timeout=120)


@pytest.mark.skipif(_external_cluster(), reason="kills a local operator on the local cluster")
@pytest.mark.timeout(int(RUNS * (RUN_TIMEOUT_S + 90)))
def test_killed_at_random_moments_same_end_state(
    crd_installed: None,
    kubectl: Kubectl,
    kubeconfig: Path | None,
    toy_weights: Path,
    tmp_path: Path,
) -> None:
    first: dict[str, EndState] | None = None
    failures: list[str] = []
    kills = 0
    started = time.monotonic()
    for run in range(RUNS):
        rng = random.Random(SEED + run)
        work = tmp_path / f"run-{run}"
        work.mkdir()
        with (
            private_namespace(kubectl, f"kill{run}") as ns,
            FastStopBacker(
                kubectl, ns, healthy_backing(toy_weights), work / "pods", max_processes=2 * MDS + 2
            ) as backer,
        ):
            operator = OperatorProcess(
                work / "operator.log", kubeconfig=kubeconfig, env=OPERATOR_ENV, namespaces=[ns]
            )
            operator.start(timeout=120)
            killer = Killer(operator, rng)
            names = [f"md-{i}" for i in range(MDS)]
            driver = Driver(
                kubectl, ns, names, manifest, concurrency=MDS, timeout=RUN_TIMEOUT_S, on_tick=killer
            )
            result: Result | None = None
            problems: list[str] = []
            try:
                result = driver.run()
            except ScenarioTimeout as err:
                problems.append(f"{err}; killed at {killer.kills}")
            finally:
                code = operator.stop()
            backer.check()
        kills += len(killer.kills)
        if result is not None:
            problems += check_result(result, first)
            first = first if first is not None else result.end_states
        if code != 0:
            problems.append(f"operator exited with {code}")
        problems += [f"log: {line}" for line in crash_lines(work / "operator.log")[:5]]
        failures += [f"run {run}: {p}" for p in problems]
        where = killer.kills[0] if killer.kills else (None, {})
        took = f"{result.seconds:.0f}s" if result is not None else "-"
        print(
            f"\n[kill] run {run}: killed at {where[0] and round(where[0], 1)}s in stages "
            f"{sorted(str(s) for s in set(where[1].values()))}, done in {took}, "
            f"problems {len(problems)}"
        )
    print(
        f"[kill] {RUNS} runs x {MDS} ModelDeployments, {kills} kills, "
        f"{len(failures)} problems in {time.monotonic() - started:.0f}s"
    )
    assert not failures, "\n".join(failures)


# --- a private cluster with the audit log ------------------------------------------------------


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster of this module's own, started with the audit policy; stopped afterwards."""
    if _external_cluster():
        pytest.skip("starts a private local cluster; KUBECONFIG points at another cluster")
    cluster = Cluster.up(tmp_path_factory.mktemp("audited"))
    try:
        yield cluster
    finally:
        cluster.down()


def token_kubeconfig(cluster: Cluster, namespace: str, account: str, dest: Path) -> Path:
    """A kubeconfig for ServiceAccount ``account``, admin of ``namespace`` only."""
    kubectl = cluster.kubectl
    kubectl("create", "serviceaccount", account, "-n", namespace)
    kubectl(
        "create",
        "rolebinding",
        f"{account}-admin",
        "--clusterrole=admin",
        f"--serviceaccount={namespace}:{account}",
        "-n",
        namespace,
    )
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": f"https://127.0.0.1:{cluster.ports['apiserver']}",
                    "certificate-authority": str(cluster.layout.pki.ca_cert),
                },
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": account}}],
        "current-context": "c",
    }
    dest.write_text(yaml.safe_dump(config))
    dest.chmod(0o600)
    return dest


@pytest.mark.timeout(180)
def test_the_audit_log_names_each_writer(audited: Cluster, tmp_path: Path) -> None:
    kubectl = audited.kubectl
    since = datetime.now(UTC) - timedelta(seconds=1)
    kubectl("create", "namespace", "audit-e2e")
    one = token_kubeconfig(audited, "audit-e2e", "replica-one", tmp_path / "one")
    two = token_kubeconfig(audited, "audit-e2e", "replica-two", tmp_path / "two")
    for who, path in (("one", one), ("two", two)):
        as_replica = Kubectl(binary=kubectl.binary, kubeconfig=path)
        as_replica("create", "service", "clusterip", f"svc-{who}", "--tcp=80", "-n", "audit-e2e")
        as_replica("get", "services", "-n", "audit-e2e")  # a read: never in the log
    kubectl("delete", "service", "svc-one", "-n", "audit-e2e")
    until = datetime.now(UTC) + timedelta(seconds=1)

    entries = audit_log.read(
        audited.layout.audit_log,
        since=since,
        until=until,
        where=lambda e: e.namespace == "audit-e2e" and e.resource == "services",
    )
    got = [(e.verb, e.name, e.username.rsplit(":", 1)[-1], e.code) for e in entries]
    assert got == [
        ("create", "svc-one", "replica-one", 201),
        ("create", "svc-two", "replica-two", 201),
        ("delete", "svc-one", audited_admin(entries), 200),
    ], got
    assert all(e.user_agent.startswith("kubectl/") for e in entries)
    # The window excludes what came before it.
    assert audit_log.read(audited.layout.audit_log, until=since - timedelta(seconds=1)) == [
        e for e in audit_log.read(audited.layout.audit_log) if e.at < since - timedelta(seconds=1)
    ]


def audited_admin(entries: list[audit_log.AuditEntry]) -> str:
    """The admin certificate's user name, as the last entry (the admin's delete) has it."""
    return entries[-1].username


# --- two replicas, leader election, the leader killed ------------------------------------------

LEASE = "gantry-leader"
UA = re.compile(r"^gantry/\S+ \((?P<identity>[^)]+)\)$")


def leader_election_wired() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "gantry.cli", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--leader-election" in done.stdout


def replica_of(entry: audit_log.AuditEntry) -> str | None:
    match = UA.match(entry.user_agent)
    return match["identity"] if match else None


def holder(kubectl: Kubectl, namespace: str) -> str | None:
    try:
        lease: dict[str, Any] = kubectl.json("get", "lease", LEASE, "-n", namespace)
    except Exception:
        return None
    return lease.get("spec", {}).get("holderIdentity") or None


@pytest.mark.timeout(420)
def test_leader_killed_mid_canary_standby_resumes(
    audited: Cluster, toy_weights: Path, tmp_path: Path
) -> None:
    if not leader_election_wired():
        pytest.skip("`gantry run` has no --leader-election yet: nothing to elect a leader")
    kubectl = audited.kubectl
    crd = (REPO_ROOT / "crds" / "serving.gantry.dev_modeldeployments.yaml").read_text()
    kubectl("apply", "--server-side", "-f", "-", input=crd)
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/modeldeployments.serving.gantry.dev",
        "--timeout=60s",
    )
    ns = "leader-kill"
    kubectl("create", "namespace", ns)
    since = datetime.now(UTC)
    replicas: dict[str, OperatorProcess] = {}
    for identity in ("replica-a", "replica-b"):
        env = {
            **OPERATOR_ENV,
            "GANTRY_LEADER_ELECTION": "true",
            "GANTRY_POD_NAME": identity,
            "GANTRY_LEADER_ELECTION_NAMESPACE": ns,
            "GANTRY_LEASE_DURATION_SECONDS": "8",
            "GANTRY_RENEW_DEADLINE_SECONDS": "5",
            "GANTRY_RETRY_PERIOD_SECONDS": "1",
        }
        replicas[identity] = OperatorProcess(
            tmp_path / f"{identity}.log", kubeconfig=audited.kubeconfig, env=env, namespaces=[ns]
        )
        replicas[identity].start(timeout=120)
    killed: dict[str, Any] = {}

    def kill_leader(driver: Driver) -> None:
        if killed or driver.stages()["md-0"] is not Stage.PROMOTING:
            return
        leader = holder(kubectl, ns)
        assert leader in replicas, f"Lease holder {leader!r} is not a replica"
        md = kubectl.json("get", "md", "md-0", "-n", ns)
        code = replicas[leader].stop(sig=signal.SIGKILL)
        assert code == -signal.SIGKILL
        killed.update(leader=leader, at=datetime.now(UTC), canary=md["status"].get("canary"))

    try:
        with FastStopBacker(kubectl, ns, healthy_backing(toy_weights), tmp_path / "pods") as b:
            driver = Driver(
                kubectl, ns, ["md-0"], manifest, concurrency=1, timeout=300, on_tick=kill_leader
            )
            result = driver.run()
            b.check()
    finally:
        codes = {name: proc.stop() for name, proc in replicas.items()}
    until = datetime.now(UTC) + timedelta(seconds=1)

    assert killed, "the leader was never killed: the canary stage was not seen"
    standby = next(name for name in replicas if name != killed["leader"])
    assert codes[standby] == 0, codes
    assert not crash_lines(tmp_path / f"{standby}.log")
    # The same canary, promoted by the standby: the revision in flight at the kill serves.
    assert result.end_states["md-0"].stable_revision == killed["canary"]["revision"], killed
    assert check_result(result, None) == []

    writes = audit_log.read(
        audited.layout.audit_log,
        since=since,
        until=until,
        where=lambda e: e.is_write and replica_of(e) is not None,
    )
    counts = {name: sum(replica_of(e) == name for e in writes) for name in replicas}
    terms = audit_log.terms(writes, replica_of)
    print(
        f"\n[leader] killed {killed['leader']} mid-canary; writes by replica {counts}; "
        f"terms {[(t.identity, t.writes, t.first.isoformat(), t.last.isoformat()) for t in terms]}"
    )
    # All of the leader's writes, then all of the standby's: never both in one window.
    assert [t.identity for t in terms] == [killed["leader"], standby], terms
    assert terms[0].last <= killed["at"] + timedelta(seconds=1)
