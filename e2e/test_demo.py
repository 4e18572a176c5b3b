"""``make demo`` in CI-sized form, so it cannot rot, and ``make demo-down`` stopping all of it.

The demo runs as users run it (``python -m e2e.demo``, its own process, ``--quick``: one stable
pod, 2 s analysis intervals) on the shared local control plane, which it reuses, in a namespace
of its own that no other operator of the suite watches, with its records in a temporary
directory. It must promote the healthy canary, roll back the faulty one, and return with its
operator, backer and runtimes still serving; ``down --keep-cluster`` must then stop every one of
them and every process they started (Triton included), and leave the control plane up.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.cluster import REPO_ROOT, Kubectl, procs
from e2e.conftest import ClusterInfo
from e2e.demo_procs import StateDir
from tests.support.runtime_proc import requires_runtime

pytestmark = [pytest.mark.runtime, requires_runtime, pytest.mark.timeout(600)]

DEMO_TIMEOUT_S = 420
DOWN_TIMEOUT_S = 180


def demo(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "e2e.demo", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def descendants(roots: list[int]) -> list[procs.Proc]:
    """Every running process below ``roots`` (the runtimes, their Triton servers, ...)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: list[procs.Proc] = []
    frontier = list(roots)
    while frontier:
        pid = frontier.pop()
        for child in [c for c, p in parent.items() if p == pid]:
            with contextlib.suppress(OSError):
                found.append(procs.record(f"pid-{child}", child, os.readlink(f"/proc/{child}/exe")))
            frontier.append(child)
    return found


@pytest.fixture
def local(cluster: ClusterInfo) -> ClusterInfo:
    if not cluster.local:
        pytest.skip("the demo runs on the local control plane (KUBECONFIG names another)")
    return cluster


@pytest.fixture
def demo_namespace(kubectl: Kubectl) -> Iterator[str]:
    # Not the session's prefix: the demo brings its own operator, and two must never act on one
    # object. ``down --keep-cluster`` deletes it; this only covers a demo that never got there.
    name = f"gdemo-{uuid.uuid4().hex[:8]}"
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def test_the_demo_promotes_a_canary_rolls_back_a_faulty_one_and_down_stops_everything(
    local: ClusterInfo, demo_namespace: str, tmp_path: Path
) -> None:
    state = StateDir(tmp_path / "demo")
    kubectl = local.kubectl
    args = ("--namespace", demo_namespace, "--state-dir", str(state.path))
    try:
        result = demo("--quick", *args, timeout=DEMO_TIMEOUT_S)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        print(output)

        # The live view showed each act, in order, one line per change.
        lines = result.stdout.splitlines()
        marks = [
            "Ready        serving v1",
            "canary v2 Progressing  step 1/2 setWeight 50",
            "canary v2 Progressing  step 2/2 analysis x2  weight 50%  analysis Successful",
            "Ready        serving v2  canary v2 Promoted",
            "canary v3 Progressing  step 1/2 setWeight 50",
            "analysis Failed",
            "Failed       serving v2  canary v3 Aborted",
        ]
        at = [next((i for i, ln in enumerate(lines) if m in ln), -1) for m in marks]
        assert -1 not in at, list(zip(marks, at, strict=True))
        assert at == sorted(at), list(zip(marks, at, strict=True))
        view = [re.fullmatch(r"\s+\d+s  (.*)", ln) for ln in lines]
        repeated = [
            m.group(1)
            for prev, m in itertools.pairwise(view)
            if prev is not None and m is not None and prev.group(1) == m.group(1)
        ]
        assert not repeated, f"the live view printed an unchanged line again: {repeated}"
        assert "v3 rolled back automatically: AnalysisFailed" in output
        assert "success-rate 0 is not >= 0.99" in output
        assert "kubectl gantry get md/echo-cpu" in output

        # What the demo left: v2 serving, v3 rolled back, and its processes still running.
        md = kubectl.json("get", "md", "echo-cpu", "-n", demo_namespace)["status"]
        assert md["stable"]["modelVersion"] == "2", md
        assert md["canary"]["phase"] == "Aborted", md["canary"]
        assert md["canary"]["reason"] == "AnalysisFailed", md["canary"]
        recorded = state.load()
        assert recorded is not None
        assert [p.name for p in recorded.processes] == ["backer", "operator"]
        runtimes = state.load_runtimes()
        assert [e.version for e in runtimes] == [2], runtimes
        left = [*recorded.processes, *(e.proc for e in runtimes)]
        assert all(procs.alive(p) for p in left), left
        below = descendants([p.pid for p in recorded.processes])
        # Each runtime runs a Triton server below it.
        assert len(below) > len(runtimes), below
    finally:
        down = demo("down", "--keep-cluster", *args, timeout=DOWN_TIMEOUT_S)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped: operator, backer" in down.stdout, down.stdout

    still = [p for p in (*left, *below) if procs.alive(p)]
    assert not still, f"demo-down left these running: {still}"
    assert state.load() is None
    assert not state.runtimes.exists()
    phase = kubectl(
        "get", "namespace", demo_namespace, "-o", "jsonpath={.status.phase}", check=False
    ).stdout
    assert phase in ("", "Terminating"), phase
    # The control plane stays: --keep-cluster.
    assert kubectl("get", "--raw", "/readyz", check=False).returncode == 0


def test_down_without_a_demo_says_so_and_succeeds(tmp_path: Path) -> None:
    result = demo("down", "--keep-cluster", "--state-dir", str(tmp_path), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "no demo recorded" in result.stdout


def test_the_demo_imports_no_test_code() -> None:
    check = (
        "import sys, e2e.demo, e2e.demo_backer; "
        "bad = sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('tests', 'pytest', '_pytest')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"the demo imports test code: {result.stdout}{result.stderr}"
