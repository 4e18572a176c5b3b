"""``procs``: liveness right after a start, zombies, recycled pids, and stopping for sure."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.cluster import procs
from e2e.cluster.wait import poll
from tests.cluster.liveness import (
    child_running,
    cpu_load,
    dead_answers_after_start,
    dead_answers_from_another_process,
)

SLEEP = shutil.which("sleep") or "/bin/sleep"
TRUE = shutil.which("true") or "/bin/true"
# Hundreds of starts: the window in which a fresh process looked dead was hit a few times in
# 300 under load; a start and stop of `sleep` takes a few milliseconds.
STARTS = 300
STARTS_FROM_ANOTHER_PROCESS = 150
# Writes "ready" once SIGTERM is ignored, so a test knows the signal will not be obeyed.
IGNORES_SIGTERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A running process that this test started without ``procs`` (so not its child there)."""
    popen = subprocess.Popen([SLEEP, "60"])
    yield popen
    popen.kill()
    popen.wait()


def _exited_unreaped(pid: int) -> bool:
    return not child_running(pid)


@pytest.mark.timeout(120)
def test_alive_right_after_start_under_cpu_load(tmp_path: Path) -> None:
    with cpu_load():
        dead = dead_answers_after_start("sleeper", [SLEEP, "60"], tmp_path, STARTS)
    assert dead == [], "\n".join(map(str, dead))


@pytest.mark.timeout(120)
def test_alive_of_a_process_started_by_another_python_process(tmp_path: Path) -> None:
    with cpu_load():
        dead = dead_answers_from_another_process(
            "sleeper", [SLEEP, "60"], tmp_path, STARTS_FROM_ANOTHER_PROCESS
        )
    assert dead == [], "\n".join(map(str, dead))


def test_zombie_child_reads_dead(tmp_path: Path) -> None:
    proc = procs.start("quick", [TRUE], tmp_path)
    # Exited but not reaped: a zombie whose /proc entry is still there.
    poll("true to exit", lambda: _exited_unreaped(proc.pid), timeout=10, interval=0.01)
    assert procs.alive(proc) is False
    procs.stop(proc)  # nothing to stop; must not fail


def test_zombie_recorded_by_another_process_reads_dead() -> None:
    popen = subprocess.Popen([TRUE])
    proc = procs.record("quick", popen.pid, TRUE)
    poll("true to exit", lambda: _exited_unreaped(proc.pid), timeout=10, interval=0.01)
    try:
        assert procs.alive(proc) is False
    finally:
        popen.wait()


def test_recorded_process_reads_alive_and_is_stopped(sleeper: subprocess.Popen[bytes]) -> None:
    proc = procs.record("sleeper", sleeper.pid, SLEEP)
    assert procs.alive(proc) is True
    procs.stop(proc)
    assert sleeper.wait(timeout=10) == -signal.SIGTERM


def test_pid_recycled_by_another_program_is_not_ours(sleeper: subprocess.Popen[bytes]) -> None:
    # As after a reboot: the recorded etcd's pid now belongs to something else.
    proc = procs.Proc("etcd", sleeper.pid, os.path.realpath(sys.executable))
    assert procs.alive(proc) is False
    procs.stop(proc)
    assert sleeper.poll() is None, "stop() signalled a process that is not ours"


def test_pid_recycled_by_the_same_binary_is_not_ours(sleeper: subprocess.Popen[bytes]) -> None:
    # As with another checkout's cluster, started from the same build cache, on our old pid.
    ours = procs.record("sleeper", sleeper.pid, SLEEP)
    assert ours.start_id is not None
    boot, ticks = ours.start_id.rsplit(":", 1)
    older = procs.Proc("sleeper", sleeper.pid, ours.exe, f"{boot}:{int(ticks) - 1}")
    assert procs.alive(older) is False
    procs.stop(older)
    assert sleeper.poll() is None, "stop() signalled a process that is not ours"


def test_record_without_start_id_is_checked_by_executable(
    sleeper: subprocess.Popen[bytes],
) -> None:
    # state.json written before start ids were recorded.
    old_format = procs.Proc.from_json({"name": "sleeper", "pid": sleeper.pid, "exe": SLEEP})
    assert old_format.start_id is None
    assert procs.alive(old_format) is True


def test_own_child_is_judged_by_its_handle_not_by_proc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = procs.start("sleeper", [SLEEP, "60"], tmp_path)
    # A /proc that tells nothing (the state of a process inside execve, or a confused check).
    monkeypatch.setattr(procs, "_stat_fields", lambda pid: None)
    monkeypatch.setattr(procs, "_exe_of", lambda pid: None)
    assert procs.alive(proc) is True
    procs.stop(proc)
    assert procs.alive(proc) is False
    with pytest.raises(ChildProcessError):  # stopped and reaped
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG)


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    proc = procs.start("stubborn", [sys.executable, "-c", IGNORES_SIGTERM], tmp_path)
    log = tmp_path / "stubborn.log"
    poll("SIGTERM ignored", lambda: "ready" in log.read_text(), timeout=30, interval=0.01)
    procs.stop(proc, grace=0.2)
    assert procs.alive(proc) is False
    with pytest.raises(ChildProcessError):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG)


def test_stop_kills_a_recorded_process_that_ignores_sigterm() -> None:
    popen = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE)
    try:
        assert popen.stdout is not None
        assert popen.stdout.readline() == b"ready\n"
        proc = procs.record("stubborn", popen.pid, sys.executable)
        procs.stop(proc, grace=0.2)
        assert popen.wait(timeout=10) == -signal.SIGKILL
    finally:
        popen.kill()
        popen.wait()


def test_flag_values_reads_both_spellings() -> None:
    wanted = {"127.1.0.0/16", "127.2.0.0/16"}
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "--cidr=127.1.0.0/16"]
    popen = subprocess.Popen([*argv, "--cidr", "127.2.0.0/16"])
    try:
        # Other clusters on this machine add their own values; ours must be among them.
        poll("the flags", lambda: wanted <= procs.flag_values("--cidr"), timeout=10)
    finally:
        popen.kill()
        popen.wait()
