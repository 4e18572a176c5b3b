"""The local control plane started and stopped many times in a row, and its liveness check
asked right after starting the real etcd and kube-apiserver under CPU load.

Every cluster here lives in a temporary directory, on its own free ports and its own pod CIDR,
beside the session cluster that the other scenarios use; that one is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e.cluster import REPO_ROOT, Cluster, build_binaries, pki, procs
from e2e.cluster.components import COMMANDS, pod_cidr
from e2e.cluster.layout import Layout
from tests.cluster.liveness import (
    DeadAnswer,
    cpu_load,
    dead_answers_after_start,
    dead_answers_from_another_process,
)

# A warm start takes 3-4 s, so the default loop stays within a few minutes.
LOOPS = int(os.environ.get("GANTRY_E2E_START_LOOPS", "10"))
# Starts of each real binary. Under load a start and stop of etcd costs ~15 ms, of the API
# server ~120 ms, and ~400 ms when another process starts it (it is then further into its
# start-up when stopped).
REAL_STARTS = 200
REAL_STARTS_FROM_ANOTHER_PROCESS = {"etcd": 100, "kube-apiserver": 40}
UP_TIMEOUT = 120.0
CLI_TIMEOUT = 300.0


def _external_cluster() -> bool:
    """As e2e/conftest.py: with KUBECONFIG aimed elsewhere nothing local is started."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or os.environ.get("GANTRY_E2E_OWN_CLUSTER"):
        return False
    return Path(kubeconfig).resolve() != (REPO_ROOT / ".cluster" / "kubeconfig").resolve()


pytestmark = pytest.mark.skipif(
    _external_cluster(), reason="KUBECONFIG points at another cluster; nothing local is started"
)


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return build_binaries()


# --- liveness right after a start ------------------------------------------------------------


@pytest.fixture
def component_argv(tmp_path: Path, bin_dir: Path) -> dict[str, list[str]]:
    """Command lines of etcd and kube-apiserver as ``up`` builds them, in a throwaway layout.

    Nothing answers on the etcd port given to the API server, so it keeps retrying: both run
    until stopped, and every "dead" answer is wrong.
    """
    layout = Layout(tmp_path / "layout")
    layout.bin.mkdir(parents=True)
    for name in ("etcd", "kube-apiserver"):
        (layout.bin / name).symlink_to(bin_dir / name)  # argv[0] is a link, as in .cluster/bin
    pki.generate(layout.pki.dir)
    ports = dict(zip(("etcd_client", "etcd_peer", "apiserver"), procs.free_ports(3), strict=True))
    return {name: COMMANDS[name](layout, ports) for name in ("etcd", "kube-apiserver")}


def _fail_message(dead: list[DeadAnswer], starts: int) -> str:
    return f"{len(dead)} of {starts} answers were 'dead':\n" + "\n".join(map(str, dead))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["etcd", "kube-apiserver"])
def test_alive_right_after_starting_the_real_binary(
    name: str, component_argv: dict[str, list[str]], tmp_path: Path
) -> None:
    data = tmp_path / "layout" / "data"

    def fresh_data() -> None:
        # A fresh etcd each time: a WAL cut short by the stop could make the next one exit.
        shutil.rmtree(data, ignore_errors=True)

    with cpu_load():
        dead = dead_answers_after_start(
            name, component_argv[name], tmp_path / "logs", REAL_STARTS, fresh_data
        )
    assert dead == [], _fail_message(dead, REAL_STARTS)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["etcd", "kube-apiserver"])
def test_alive_of_the_real_binary_started_by_another_process(
    name: str, component_argv: dict[str, list[str]], tmp_path: Path
) -> None:
    starts = REAL_STARTS_FROM_ANOTHER_PROCESS[name]
    with cpu_load():
        dead = dead_answers_from_another_process(
            name, component_argv[name], tmp_path / "logs", starts
        )
    assert dead == [], _fail_message(dead, starts)


# --- start and stop in a row -----------------------------------------------------------------


@dataclass
class Round:
    """One start and stop: how long it took and everything that was wrong with it."""

    number: int
    how: str
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"round {self.number} ({self.how}, {self.seconds:.1f}s):", *self.problems]
        return "\n  ".join([*lines, "log:", *self.log[-20:]])


def _cli(root: Path, command: str, result: Round) -> None:
    """``python -m e2e.cluster COMMAND --root ROOT``, as ``make cluster-up/-down`` run it."""
    argv = [sys.executable, "-m", "e2e.cluster", command, "--root", str(root)]
    done = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    result.log += done.stderr.splitlines()
    if done.returncode != 0:
        result.problems.append(f"`{command}` exited {done.returncode}")


def _cidr_users(cidr: str) -> int:
    """Processes whose command line carries ``--cidr=CIDR``, read from /proc directly."""
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        count += f"--cidr={cidr}".encode() in args
    return count


def _still_running(proc: procs.Proc) -> bool:
    """The recorded process still runs its binary: read from /proc, not through ``procs``."""
    try:
        exe = os.readlink(f"/proc/{proc.pid}/exe")
    except OSError:
        return False  # gone, or a zombie: either way no longer running
    return os.path.realpath(exe.removesuffix(" (deleted)")) == proc.exe


def _check_running(cluster: Cluster, session: Cluster | None, result: Round) -> None:
    if not cluster.healthy():
        result.problems.append(f"not healthy: {json.dumps(cluster.status())}")
    cidr = pod_cidr(cluster.ports)
    if _cidr_users(cidr) != 1:
        result.problems.append(f"pod CIDR {cidr} used by {_cidr_users(cidr)} processes")
    if session is not None and set(session.ports.values()) & set(cluster.ports.values()):
        result.problems.append(f"ports {cluster.ports} overlap the session's {session.ports}")


def _check_stopped(root: Path, recorded: list[procs.Proc], result: Round) -> None:
    left = [f"{p.name} (pid {p.pid})" for p in recorded if _still_running(p)]
    if left:
        result.problems.append(f"still running after down: {left}")
    if len(recorded) != len(COMMANDS):
        result.problems.append(f"recorded {[p.name for p in recorded]}")
    if Cluster.load(root) is not None:
        result.problems.append("state.json left after down")


def _round_in_process(root: Path, session: Cluster | None, result: Round) -> list[procs.Proc]:
    cluster = Cluster.up(root, timeout=UP_TIMEOUT, log=result.log.append)
    try:
        if not cluster.started:
            result.problems.append("reused a cluster instead of starting one")
        _check_running(cluster, session, result)
        return list(cluster.processes)
    finally:
        cluster.down()


def _round_by_cli(root: Path, session: Cluster | None, result: Round) -> list[procs.Proc]:
    _cli(root, "up", result)
    cluster = Cluster.load(root)
    if cluster is None:
        result.problems.append("`up` recorded no cluster")
        return []
    try:
        _check_running(cluster, session, result)  # judged from this process, not the child's
        _cli(root, "status", result)
        return list(cluster.processes)
    finally:
        _cli(root, "down", result)


def _round(root: Path, number: int, session: Cluster | None) -> Round:
    # Every other round runs up and down in their own Python processes, as make does, so down
    # finds the processes through state.json instead of Popen handles.
    by_cli = number % 2 == 1
    result = Round(number, "python -m e2e.cluster" if by_cli else "Cluster.up/down")
    started = time.monotonic()
    recorded: list[procs.Proc] = []
    try:
        run = _round_by_cli if by_cli else _round_in_process
        recorded = run(root, session, result)
    except Exception as err:
        result.problems.append(f"{type(err).__name__}: {err}")
    result.seconds = time.monotonic() - started
    _check_stopped(root, recorded, result)
    leftover = Cluster.load(root)
    if leftover is not None:  # so one bad round does not fail every later one
        leftover.down()
    return result


@pytest.mark.timeout(120 + 60 * LOOPS)
def test_cluster_starts_and_stops_many_times_in_a_row(tmp_path: Path, bin_dir: Path) -> None:
    session = Cluster.load(REPO_ROOT)  # may be running right now; its ports must stay its own
    started = time.monotonic()
    rounds = [_round(tmp_path, number, session) for number in range(LOOPS)]
    took = time.monotonic() - started
    failed = [r for r in rounds if r.problems]
    slowest = max((r.seconds for r in rounds), default=0.0)
    print(f"\n{LOOPS - len(failed)}/{LOOPS} rounds clean in {took:.0f}s (slowest {slowest:.1f}s)")
    assert failed == [], "\n".join(map(str, failed))
