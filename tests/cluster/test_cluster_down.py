"""``down`` and a failed ``up`` stop every process they started, whatever /proc says."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e.cluster import cluster as cluster_mod
from e2e.cluster import procs
from e2e.cluster.cluster import Cluster, ClusterError
from e2e.cluster.components import COMMANDS
from e2e.cluster.layout import Layout
from e2e.cluster.wait import WaitTimeoutError

SLEEP = shutil.which("sleep") or "/bin/sleep"
FALSE = shutil.which("false") or "/bin/false"
NAMES = list(COMMANDS)


def _reaped(pid: int) -> bool:
    """Our child ``pid`` has exited and been reaped (so nothing of it is left)."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False


def _confuse_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make /proc tell nothing: what a process inside execve, or a wrong check, looks like."""
    monkeypatch.setattr(procs, "_stat_fields", lambda pid: None)
    monkeypatch.setattr(procs, "_exe_of", lambda pid: None)


def _cluster(root: Path, processes: list[procs.Proc], log: list[str]) -> Cluster:
    cluster = Cluster(Layout(root / ".cluster"), {}, processes, started=True, log=log.append)
    cluster.layout.dir.mkdir(parents=True)
    cluster._save()
    return cluster


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started without ``procs``, as by an ``up`` in another Python process."""
    popens = [subprocess.Popen([SLEEP, "60"]) for _ in NAMES]
    yield popens
    for popen in popens:
        popen.kill()
        popen.wait()


def test_down_stops_own_children_even_when_proc_reads_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = [procs.start(name, [SLEEP, "60"], tmp_path / "logs") for name in NAMES]
    cluster = _cluster(tmp_path, list(started), [])
    _confuse_proc(monkeypatch)
    cluster.down()
    assert [p.name for p in started if not _reaped(p.pid)] == []
    assert not cluster.layout.state.exists()


def test_down_stops_processes_recorded_by_another_process(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    recorded = [procs.record(n, p.pid, SLEEP) for n, p in zip(NAMES, sleepers, strict=True)]
    _cluster(tmp_path, recorded, [])
    loaded = Cluster.load(tmp_path)
    assert loaded is not None
    assert loaded.processes == recorded
    loaded.down()
    assert [p.wait(timeout=10) for p in sleepers] == [-signal.SIGTERM] * len(NAMES)
    assert not loaded.layout.state.exists()


def test_down_keeps_what_it_could_not_stop_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = [procs.start(name, [SLEEP, "60"], tmp_path / "logs") for name in NAMES]
    cluster = _cluster(tmp_path, list(started), [])
    real_stop = procs.stop

    def stop_fails_for_apiserver(proc: procs.Proc, grace: float = 10.0) -> None:
        if proc.name == "kube-apiserver":
            raise procs.StopError("stuck")
        real_stop(proc, grace)

    monkeypatch.setattr(procs, "stop", stop_fails_for_apiserver)
    with pytest.raises(ClusterError, match=r"kube-apiserver \(pid \d+\)"):
        cluster.down()
    assert [p.name for p in started if not _reaped(p.pid)] == ["kube-apiserver"]
    left = Cluster.load(tmp_path)
    assert left is not None
    assert [p.name for p in left.processes] == ["kube-apiserver"]

    monkeypatch.setattr(procs, "stop", real_stop)
    left.down()
    assert all(_reaped(p.pid) for p in started)
    assert not left.layout.state.exists()


@dataclass
class FakeUp:
    """``up`` without a build: ``commands`` replaces the components, ``launched`` fills up."""

    commands: dict[str, Callable[[Layout, dict[str, int]], list[str]]]
    launched: list[procs.Proc] = field(default_factory=list)


@pytest.fixture
def fake_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeUp:
    fake = FakeUp({name: _argv(SLEEP, "60") for name in NAMES})
    bin_dir = tmp_path / "cache" / "cluster" / "key" / "bin"
    monkeypatch.setattr(cluster_mod, "build_binaries", lambda log: bin_dir)
    monkeypatch.setattr(cluster_mod, "_link_binaries", lambda layout, bin_dir: None)
    monkeypatch.setattr(cluster_mod, "COMMANDS", fake.commands)
    real_start = procs.start

    def recording_start(name: str, argv: list[str], log_dir: Path) -> procs.Proc:
        fake.launched.append(real_start(name, argv, log_dir))
        return fake.launched[-1]

    monkeypatch.setattr(procs, "start", recording_start)
    return fake


def _argv(*argv: str) -> Callable[[Layout, dict[str, int]], list[str]]:
    return lambda layout, ports: list(argv)


def test_failed_up_stops_what_it_launched_when_a_component_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_up: FakeUp
) -> None:
    fake_up.commands["kube-apiserver"] = _argv(FALSE)
    monkeypatch.setattr(Cluster, "_etcd_healthy", lambda self: True)
    with pytest.raises(ClusterError, match=r"kube-apiserver \(pid \d+\) exited"):
        Cluster.up(tmp_path, timeout=30, log=lambda message: None)
    assert [p.name for p in fake_up.launched] == ["etcd", "kube-apiserver"]
    assert [p.name for p in fake_up.launched if not _reaped(p.pid)] == []
    assert Cluster.load(tmp_path) is None


def test_failed_up_stops_what_it_launched_when_proc_reads_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_up: FakeUp
) -> None:
    _confuse_proc(monkeypatch)
    monkeypatch.setattr(Cluster, "_etcd_healthy", lambda self: True)
    # The fake API server never answers, so up times out with both processes running.
    with pytest.raises(WaitTimeoutError, match="kube-apiserver /readyz"):
        Cluster.up(tmp_path, timeout=0.5, log=lambda message: None)
    assert [p.name for p in fake_up.launched] == ["etcd", "kube-apiserver"]
    assert [p.name for p in fake_up.launched if not _reaped(p.pid)] == []
    assert Cluster.load(tmp_path) is None
