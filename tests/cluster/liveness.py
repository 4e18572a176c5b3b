"""Measuring ``procs.alive()`` right after ``procs.start()``, as ``up`` calls it, under CPU load.

Shared by the unit tests (a plain long-running process) and the e2e tests (the built etcd and
kube-apiserver). Every process started here runs until it is stopped, so any "dead" answer is
wrong; the ground truth taken right after the answer says whether the process really was
running (a false "dead") or had exited (then its log says why).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from e2e.cluster import procs

REPO_ROOT = Path(__file__).resolve().parents[2]
# More burners than cores, so the starting process and the prober both wait for a CPU, as on
# a busy CI machine; capped so a big machine does not spend its time spawning them.
_MAX_BURNERS = 16
_STOP_GRACE = 5.0
_HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class DeadAnswer:
    """``alive()`` answered "dead" for the process of start number ``start``."""

    start: int
    pid: int
    running: bool  # the kernel's view right after the answer
    log: str

    def __str__(self) -> str:
        truth = "still running (false dead)" if self.running else "had exited"
        return f"start {self.start}: pid {self.pid} {truth}\n{self.log}"


@contextlib.contextmanager
def cpu_load(workers: int | None = None) -> Iterator[int]:
    """Keep ``workers`` (default: twice the cores) busy-looping processes running."""
    count = workers or min(2 * (os.cpu_count() or 1), _MAX_BURNERS)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield count
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def child_running(pid: int) -> bool:
    """Whether our child ``pid`` has not exited, asked without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False  # already reaped: it exited


def dead_answers_after_start(
    name: str,
    argv: list[str],
    log_dir: Path,
    starts: int,
    after_stop: Callable[[], None] | None = None,
) -> list[DeadAnswer]:
    """Start ``argv`` ``starts`` times in this process, ask ``alive()`` at once, stop it."""
    answers = []
    for start in range(starts):
        proc = procs.start(name, argv, log_dir)
        try:
            if not procs.alive(proc):
                running = child_running(proc.pid)
                answers.append(
                    DeadAnswer(start, proc.pid, running, procs.log_excerpt(log_dir, name, 5))
                )
        finally:
            procs.stop(proc, grace=_STOP_GRACE)
        if after_stop is not None:
            after_stop()
    return answers


def dead_answers_from_another_process(
    name: str, argv: list[str], log_dir: Path, starts: int
) -> list[DeadAnswer]:
    """As :func:`dead_answers_after_start`, but the process is started by another Python
    process (``tests.cluster.recorder``), as when ``up`` ran in ``make cluster-up``."""
    command = [sys.executable, "-m", "tests.cluster.recorder", name, str(log_dir), "--", *argv]
    helper = subprocess.Popen(
        command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert helper.stdin is not None
    assert helper.stdout is not None
    answers = []
    try:
        for start in range(starts):
            helper.stdin.write("start\n")
            helper.stdin.flush()
            proc = procs.Proc.from_json(json.loads(helper.stdout.readline()))
            said_alive = procs.alive(proc)
            helper.stdin.write("stop\n")
            helper.stdin.flush()
            running = helper.stdout.readline().strip() == "running"
            if not said_alive:
                log = procs.log_excerpt(log_dir, name, 5)
                answers.append(DeadAnswer(start, proc.pid, running, log))
    finally:
        helper.stdin.close()
        code = helper.wait(timeout=_HELPER_TIMEOUT)
    if code != 0:
        raise RuntimeError(f"{command} exited {code}")
    return answers
