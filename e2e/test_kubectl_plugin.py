"""``kubectl gantry`` as users run it: found by kubectl on PATH, drawing in a real terminal.

kubectl discovers ``kubectl-gantry`` (the package's console script, in the virtualenv's bin)
and execs it with the arguments after ``gantry``. ``get --watch`` runs in a pseudo-terminal,
so it takes its terminal path (repainting with ANSI codes) exactly as in a user's shell.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Kubectl
from e2e.test_operator import cpu_model
from e2e.waiting import wait_for

VENV_BIN = Path(sys.executable).parent
PLUGIN = VENV_BIN / "kubectl-gantry"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Fully qualified: a short name ("md") can be claimed by another CRD on a shared cluster.
MD = "modeldeployments.serving.gantry.dev"


def get_md(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    md: dict[str, Any] = kubectl.json("get", MD, name, "-n", namespace)
    return md


def plugin_env(kubectl: Kubectl) -> dict[str, str]:
    """kubectl's environment with the virtualenv's bin first on PATH, where the plugin is."""
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} is missing: install the package (pip install -e .)")
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, **kubectl.env, "PATH": path}


def gantry_argv(kubectl: Kubectl, kubeconfig: Path | None, *args: str) -> list[str]:
    # Flags go after the plugin name: kubectl looks the plugin up from the words before the
    # first flag. Without --kubeconfig the plugin reads $KUBECONFIG, as kubectl does.
    extra = [f"--kubeconfig={kubeconfig}"] if kubeconfig is not None else []
    return [kubectl.binary, "gantry", *args, *extra]


def run_gantry(
    kubectl: Kubectl, kubeconfig: Path | None, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        gantry_argv(kubectl, kubeconfig, *args),
        env=plugin_env(kubectl),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Terminal:
    """A process on a pseudo-terminal, its output collected as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.raw = b""

    def _pump(self, wait: float) -> bool:
        """Read what is there within ``wait`` seconds; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every writer of the terminal has exited
            return False
        self.raw += chunk
        return bool(chunk)

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace").replace("\r", "")

    def frames(self) -> list[str]:
        """Whole frames drawn so far, escape codes removed: each starts at the cursor-home
        code and ends with clear-below."""
        parts = self.text.split("\x1b[H")[1:]
        return [ANSI.sub("", p) for p in parts if p.endswith("\x1b[J")]

    def wait_frame(self, ok: Callable[[str], bool], *, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            frames = self.frames()
            if frames and ok(frames[-1]):
                return frames[-1]
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(min(left, 0.5)):
                last = frames[-1] if frames else self.text[-2000:]
                raise AssertionError(f"no frame with {what} within {timeout}s; last:\n{last}")

    def finish(self, timeout: float) -> int:
        """The exit status, reading the rest of the output meanwhile."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.2)
        while self._pump(0):
            pass
        try:
            return self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def ungated_namespace(kubectl: Kubectl, crd_installed: None) -> Iterator[str]:
    """A namespace no operator of this session watches (its names start with the session
    prefix), so a gate annotation stays on the object to be read back instead of being
    consumed."""
    name = f"kgp-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false")


def test_kubectl_finds_the_plugin(kubectl: Kubectl) -> None:
    listed = subprocess.run(
        [kubectl.binary, "plugin", "list", "--name-only"],
        env=plugin_env(kubectl),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "kubectl-gantry" in listed.stdout.split(), listed.stdout + listed.stderr


@pytest.mark.usefixtures("operator")
def test_get_watch_redraws_as_the_object_changes(
    kubectl: Kubectl, kubeconfig: Path | None, namespace: str
) -> None:
    kubectl.apply(cpu_model("tiny", replicas=1), namespace=namespace)
    wait_for(
        lambda: get_md(kubectl, namespace, "tiny").get("status", {}).get("observedGeneration"),
        timeout=60,
        what="the operator's first status",
    )
    argv = gantry_argv(kubectl, kubeconfig, "get", "md/tiny", "-n", namespace, "--watch")
    term = Terminal([*argv, "--timeout", "30"], plugin_env(kubectl))
    try:
        first = term.wait_frame(
            lambda f: "Generation:      1 (observed 1)" in f, timeout=30, what="generation 1"
        )
        assert "Name:            tiny" in first
        assert f"Namespace:       {namespace}" in first
        assert "⟳ tiny" in first
        assert re.search(r"^(✔|✖|\?) Ready ", first, re.M), first
        assert re.search(r"^Status:\s+\S+ (Progressing|Ready)", first, re.M), first

        kubectl("patch", MD, "tiny", "-n", namespace, "--type=merge", "-p",
                '{"spec": {"model": {"version": "2"}}}')  # fmt: skip
        later = term.wait_frame(
            lambda f: "Generation:      2 (observed 2)" in f, timeout=30, what="generation 2"
        )
        assert "Model:           tiny version 2 (spec)" in later
        assert term.text.count("\x1b[2J") == 1, "only the first frame clears the screen"

        term.proc.send_signal(signal.SIGINT)  # Ctrl-C
        status = term.finish(timeout=15)
    finally:
        term.kill()
    assert status == 0, term.text[-2000:]
    assert "Traceback" not in term.text


GATES = [
    (("promote", "tiny"), "serving.gantry.dev/promote", "true"),
    (("promote", "md/tiny", "--step"), "serving.gantry.dev/promote", "step"),
    (("abort", "tiny"), "serving.gantry.dev/abort", "true"),
    (("pause", "tiny"), "serving.gantry.dev/pause", "true"),
    (("resume", "tiny"), "serving.gantry.dev/resume", "true"),
]


def test_gates_land_on_the_object(
    kubectl: Kubectl, kubeconfig: Path | None, ungated_namespace: str
) -> None:
    ns = ungated_namespace
    kubectl.apply(cpu_model("tiny", replicas=1), namespace=ns)
    for args, annotation, value in GATES:
        result = run_gantry(kubectl, kubeconfig, *args, "-n", ns)
        assert result.returncode == 0, result.stderr
        assert f"requested ({annotation}={value})" in result.stdout
        annotations = get_md(kubectl, ns, "tiny")["metadata"].get("annotations", {})
        assert annotations.get(annotation) == value, (args, annotations)


def test_gate_on_a_missing_object_fails_clearly(
    kubectl: Kubectl, kubeconfig: Path | None, ungated_namespace: str
) -> None:
    result = run_gantry(kubectl, kubeconfig, "abort", "nope", "-n", ungated_namespace)
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        result.stderr.strip()
        == f'error: modeldeployment "nope" in namespace "{ungated_namespace}" not found'
    )
    missing = run_gantry(kubectl, kubeconfig, "get", "md/nope", "-n", ungated_namespace)
    assert missing.returncode == 1
    assert "not found" in missing.stderr
