"""``make demo`` / ``make demo-down``: Gantry's canary rollout, shown on the local control plane.

``python -m e2e.demo`` (``up``, the default):

1. the local control plane (built once from Go modules, then cached; a running one is reused);
2. the CRD, the operator (``gantry run``) and a pod backer, both detached processes recorded
   in ``.cluster/demo/state.json``: every pod of the ModelDeployment is a KWOK pod served by a
   real ``gantry serve`` (Triton + a toy torch model) on the pod's loopback IP;
3. ``examples/cpu-runtime.yaml`` with a canary policy, brought to Ready;
4. model version 2 rolled out as a canary under a bounded loopback load, with a live view of
   steps, weights and analysis verdicts, until promotion;
5. model version 3, faulty (it fails every real request), until the analysis rolls it back;
6. the operator and the runtimes keep running; the commands to try next are printed.

``python -m e2e.demo down`` stops what the state file records (operator, backer, runtimes) and
the control plane (``--keep-cluster`` leaves the control plane up and deletes the namespace).

Every wait is bounded and says, when it times out, what it waited for and the last status seen.
Nothing here imports test code: the processes come from :mod:`e2e.runtimes`, the backer from
:mod:`e2e.backing`, the views from :mod:`e2e.demo_view`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from e2e.backing import ACCESS_TOKEN
from e2e.cluster import REPO_ROOT, Cluster, ClusterError, Kubectl, KubectlError, procs
from e2e.demo_plan import FAULTY, FIRST, FULL, HEALTHY, QUICK, Plan, manifest
from e2e.demo_procs import DemoState, StateDir, spawn, stop_recorded
from e2e.demo_view import frame_of, promoted, rolled_back, serving
from e2e.loadgen import LoadGenerator, Target

NAMESPACE = "gantry-demo"
EXAMPLE = REPO_ROOT / "examples" / "cpu-runtime.yaml"
STATE_DIR = REPO_ROOT / ".cluster" / "demo"
CRD = REPO_ROOT / "crds" / "serving.gantry.dev_modeldeployments.yaml"

# The operator as the e2e suite runs it: events and the work queue drive it; settling objects
# are polled every second and settled ones re-probed every 2 s, so each step shows at once.
OPERATOR_ENV = {
    "GANTRY_POLL_SECONDS": "1",
    "GANTRY_PROBE_SECONDS": "2",
    "GANTRY_PROBE_TIMEOUT": "1",
    "GANTRY_TRITON_ACCESS_TOKEN": ACCESS_TOKEN,
}
OPERATOR_LIVE_S = 90.0
OPERATOR_STOP_S = 20.0
# The backer stops its runtimes (each drains Triton) before it exits.
BACKER_STOP_S = 60.0
RUNTIME_STOP_S = 45.0


class DemoError(RuntimeError):
    """The demo could not go on; the message says what it waited for and what it saw."""


def say(text: str, out: TextIO = sys.stdout) -> None:
    print(f"\n==> {text}", file=out, flush=True)


# -- the live view ------------------------------------------------------------------------------


class Follower:
    """Polls the ModelDeployment once a second and prints the live view's changed lines.

    Each poll also checks that the demo's processes still run: a dead operator or backer ends
    the wait at once, with its log, instead of at the deadline.
    """

    def __init__(
        self, kubectl: Kubectl, namespace: str, name: str, state: StateDir, out: TextIO
    ) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.name = name
        self.state = state
        self.out = out

    def _check_processes(self) -> None:
        recorded = self.state.load()
        for proc in recorded.processes if recorded else ():
            if not procs.alive(proc):
                log = self.state.logs / f"{proc.name}.log"
                raise DemoError(f"the {proc.name} exited; its log:\n{_tail(log)}")

    def until(
        self, done: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        began = time.monotonic()
        deadline = began + timeout
        last_text, error = "", ""
        last_md: dict[str, Any] = {}
        while True:
            tick = time.monotonic()
            self._check_processes()
            try:
                md: dict[str, Any] = self.kubectl.json(
                    "get", "md", self.name, "-n", self.namespace, timeout=15
                )
            except (KubectlError, subprocess.TimeoutExpired, ValueError) as err:
                error = str(err).strip().splitlines()[-1]
            else:
                last_md, error = md, ""
                text = frame_of(md).text()
                if text != last_text:
                    print(f"  {tick - began:4.0f}s  {text}", file=self.out, flush=True)
                    last_text = text
                if done(md):
                    return md
            if time.monotonic() >= deadline:
                message = (last_md.get("status") or {}).get("message", "")
                raise DemoError(
                    f"timed out after {timeout:.0f}s waiting for {what}; last status: "
                    f"{last_text or '(none)'}; message: {message or '(none)'}"
                    + (f"; last error: {error}" if error else "")
                )
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def runtime_targets(state: StateDir) -> Callable[[], list[Target]]:
    """The backed pods the backer process records, as the load generator's targets."""

    def targets() -> list[Target]:
        try:
            entries = state.load_runtimes()
        except ValueError:
            return []  # caught mid-write by a non-atomic editor; the next tick reads it
        return [Target(e.pod, e.host, e.http, e.model, e.version) for e in entries]

    return targets


# -- starting ---------------------------------------------------------------------------------


def _start_operator(
    state: StateDir, cluster_kubeconfig: Path, namespace: str, out: TextIO
) -> procs.Proc:
    metrics, liveness = procs.free_ports(2)
    argv = [
        sys.executable,
        "-m",
        "gantry.cli",
        "run",
        f"--metrics-port={metrics}",
        f"--liveness-port={liveness}",
        f"--namespace={namespace}",
    ]
    env = {**OPERATOR_ENV, "KUBECONFIG": str(cluster_kubeconfig)}
    proc = spawn("operator", argv, state.logs, env, cwd=REPO_ROOT)
    say(
        f"operator started (pid {proc.pid}, metrics http://127.0.0.1:{metrics}/metrics, "
        f"log {_shown(state.logs / 'operator.log')})",
        out,
    )
    deadline = time.monotonic() + OPERATOR_LIVE_S
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if not procs.alive(proc):
                raise DemoError(
                    f"the operator exited at start:\n{_tail(state.logs / 'operator.log')}"
                )
            try:
                if client.get(f"http://127.0.0.1:{liveness}/healthz").is_success:
                    return proc
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    raise DemoError(
        f"the operator's /healthz did not answer within {OPERATOR_LIVE_S:g}s:\n"
        f"{_tail(state.logs / 'operator.log')}"
    )


def _start_backer(
    state: StateDir, cluster: Cluster, namespace: str, model: str, out: TextIO
) -> procs.Proc:
    argv = [
        sys.executable,
        "-m",
        "e2e.demo_backer",
        f"--kubectl={cluster.kubectl.binary}",
        f"--kubeconfig={cluster.kubeconfig}",
        f"--namespace={namespace}",
        f"--state-dir={state.path}",
        f"--model={model}",
        f"--serve={FAULTY}=fails_on_traffic",
        "--default=healthy",
    ]
    proc = spawn("backer", argv, state.logs, {}, cwd=REPO_ROOT)
    say(
        f"pod backer started (pid {proc.pid}): each pod gets a real Triton on its IP; "
        f"version {FAULTY} serves a model that fails every request",
        out,
    )
    return proc


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _prepare(cluster: Cluster, namespace: str, name: str, out: TextIO) -> None:
    kubectl = cluster.kubectl
    say("installing the ModelDeployment CRD", out)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl(
        "wait", "--for=condition=Established", "crd/modeldeployments.serving.gantry.dev",
        "--timeout=60s", timeout=75,
    )  # fmt: skip
    if kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kubectl("create", "namespace", namespace)
    # A model left by an earlier demo would turn the first act into a canary.
    kubectl(
        "delete", "md", name, "-n", namespace, "--ignore-not-found", "--wait=true",
        "--timeout=60s", timeout=75,
    )  # fmt: skip


# -- the acts ---------------------------------------------------------------------------------


def _apply(kubectl: Kubectl, md: dict[str, Any]) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(md))


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "no data"


def _canary_summary(md: dict[str, Any]) -> str:
    canary = (md.get("status") or {}).get("canary") or {}
    analysis = canary.get("analysis") or {}
    last = analysis.get("last") or {}
    metrics = ", ".join(
        f"{m.get('name')}={_number(m.get('value'))} ({m.get('verdict')}, {m.get('threshold')})"
        for m in last.get("metrics") or []
        if m.get("name") != "request-count"
    )
    return f"{canary.get('reason', '')}: {canary.get('message', '')}\n    last analysis: {metrics}"


def run_acts(
    cluster: Cluster, state: StateDir, plan: Plan, namespace: str, out: TextIO
) -> dict[str, Any]:
    """The three acts; returns the ModelDeployment as the last act left it."""
    kubectl = cluster.kubectl
    example: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    name = str(example["metadata"]["name"])
    follow = Follower(kubectl, namespace, name, state, out).until

    def at(version: int) -> dict[str, Any]:
        return manifest(example, namespace=namespace, version=version, plan=plan)

    first = at(FIRST)
    say(f"applying {_shown(EXAMPLE)} (model version {FIRST}) with this rollout policy:", out)
    print(
        yaml.safe_dump({"spec": {"rollout": first["spec"]["rollout"]}}, sort_keys=False), file=out
    )
    _apply(kubectl, first)
    say(f"waiting for md/{name} to be Ready on {plan.replicas} model servers", out)
    follow(lambda md: serving(md, plan.replicas), timeout=plan.ready_timeout_s, what="Ready")
    print(kubectl("get", "md", "-n", namespace).stdout, file=out, end="")

    load = LoadGenerator(
        runtime_targets(state),
        rate=plan.load_rate,
        max_requests=int(plan.load_rate * plan.load_seconds),
        max_duration=plan.load_seconds,
    )

    def canary(version: int, ends: Callable[[dict[str, Any], str], bool], outcome: str) -> None:
        _apply(kubectl, at(version))
        md = follow(
            lambda md: ends(md, str(version)),
            timeout=plan.canary_timeout_s,
            what=f"canary v{version} {outcome}",
        )
        say(f"v{version} {outcome}: {_canary_summary(md)}", out)

    with load:
        say(
            f"sending {plan.load_rate:g} requests/s over the ready pods (loopback, bounded "
            f"to {plan.load_seconds:.0f}s); rolling out model version {HEALTHY} as a canary",
            out,
        )
        canary(HEALTHY, promoted, "promoted")
        say(f"rolling out model version {FAULTY}, which fails every real request", out)
        canary(FAULTY, rolled_back, "rolled back automatically")
    totals = {v: load.totals(version=v) for v in (FIRST, HEALTHY, FAULTY)}
    print(
        "    requests: "
        + ", ".join(f"v{v} {t.ok} ok / {t.failed} failed" for v, t in totals.items()),
        file=out,
    )
    md: dict[str, Any] = kubectl.json("get", "md", name, "-n", namespace)
    print(kubectl("get", "md", "-n", namespace).stdout, file=out, end="")
    return md


def next_steps(cluster: Cluster, state: StateDir, namespace: str, name: str) -> str:
    bins = f"{REPO_ROOT / '.venv' / 'bin'}:{cluster.bin_dir}"
    return f"""
The operator and the model servers keep running. Try:

  export KUBECONFIG={cluster.kubeconfig} PATH={bins}:$PATH
  kubectl get md -n {namespace}
  kubectl gantry get md/{name} -n {namespace}          # the tree: revisions, steps, analyses
  kubectl gantry get md/{name} -n {namespace} --watch  # redraws on every change (Ctrl-C ends)
  kubectl describe md {name} -n {namespace}            # conditions and events
  .venv/bin/python -m e2e.demo load --seconds 120 &  # traffic: analysis judges requests
  kubectl patch md {name} -n {namespace} --type merge -p '{{"spec":{{"model":{{"version":"4"}}}}}}'
      # a new canary (every version but 3 is healthy); kubectl gantry pause|resume|abort too

Logs: {_shown(state.logs)} (operator.log, backer.log, pods/)
`make demo-down` stops the operator, the model servers and the control plane.
"""


# -- up and down ------------------------------------------------------------------------------


def up(state: StateDir, plan: Plan, namespace: str, out: TextIO = sys.stdout) -> int:
    previous = state.load()
    if previous is not None:
        say("stopping the processes of the previous demo", out)
        teardown(previous, state, delete_namespace=False, out=out)
    cluster = Cluster.up(REPO_ROOT)
    example: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    name, model = str(example["metadata"]["name"]), str(example["spec"]["model"]["name"])
    _prepare(cluster, namespace, name, out)
    started: list[procs.Proc] = []

    def record() -> None:
        state.save(
            DemoState(namespace, str(cluster.kubeconfig), cluster.kubectl.binary, tuple(started))
        )

    # Recorded as each starts, so that demo-down finds whatever started before a failure.
    started.append(_start_backer(state, cluster, namespace, model, out))
    record()
    started.append(_start_operator(state, cluster.kubeconfig, namespace, out))
    record()
    began = time.monotonic()
    try:
        run_acts(cluster, state, plan, namespace, out)
    except (DemoError, KubectlError) as err:
        print(f"\nerror: {err}", file=out)
        print(
            f"Logs: {_shown(state.logs)}. `make demo-down` stops what the demo started.", file=out
        )
        return 1
    print(f"\n(the rollouts took {time.monotonic() - began:.0f}s)", file=out)
    print(next_steps(cluster, state, namespace, name), file=out)
    return 0


def teardown(recorded: DemoState, state: StateDir, *, delete_namespace: bool, out: TextIO) -> None:
    """Stop the operator and the backer (which stops its runtimes), then any runtime left."""
    operator = [p for p in recorded.processes if p.name == "operator"]
    others = [p for p in reversed(recorded.processes) if p.name != "operator"]
    # The operator first, so that it does not react to pods losing their servers.
    stopped = stop_recorded(operator, grace=OPERATOR_STOP_S)
    stopped += stop_recorded(others, grace=BACKER_STOP_S)
    left = [e.proc for e in state.load_runtimes()]
    stopped += stop_recorded(left, grace=RUNTIME_STOP_S)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=out)
    if delete_namespace:
        kubectl = Kubectl(binary=recorded.kubectl, kubeconfig=Path(recorded.kubeconfig))
        kubectl("delete", "namespace", recorded.namespace, "--ignore-not-found", "--wait=false")
    state.forget()


def down(state: StateDir, *, keep_cluster: bool, out: TextIO = sys.stdout) -> int:
    recorded = state.load()
    if recorded is None:
        print(f"no demo recorded in {_shown(state.state)}", file=out)
    else:
        teardown(recorded, state, delete_namespace=keep_cluster, out=out)
    if not keep_cluster:
        cluster = Cluster.load(REPO_ROOT)
        if cluster is not None:
            cluster.down()
            print("the local control plane is stopped", file=out)
    return 0


MAX_LOAD_S = 600.0


def load(state: StateDir, seconds: float, rate: float, out: TextIO = sys.stdout) -> int:
    """Traffic for the user's own canaries after the demo: analysis judges only with requests."""
    if not 0 < seconds <= MAX_LOAD_S:
        raise ValueError(f"--seconds must be within (0, {MAX_LOAD_S:g}], got {seconds:g}")
    if state.load() is None:
        print(f"no demo recorded in {_shown(state.state)}: run `make demo` first", file=out)
        return 1
    generator = LoadGenerator(
        runtime_targets(state), rate=rate, max_requests=int(rate * seconds), max_duration=seconds
    )
    print(f"sending {rate:g} requests/s to the demo's ready pods for {seconds:g}s", file=out)
    with generator:
        while generator.running:
            time.sleep(0.5)
    for pod, stats in sorted(generator.snapshot().items()):
        print(f"  {pod} (v{stats.model_version}): {stats.ok} ok, {stats.failed} failed", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.demo", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", choices=("up", "down", "load"), default="up")
    parser.add_argument("--namespace", default=NAMESPACE, help="where the demo's model lives")
    parser.add_argument(
        "--state-dir", type=Path, default=STATE_DIR, help="records and logs (.cluster/demo)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="the CI-sized demo: one stable pod, 2 s intervals"
    )
    parser.add_argument(
        "--keep-cluster",
        action="store_true",
        help="down: leave the control plane running and delete the demo's namespace instead",
    )
    parser.add_argument(
        "--seconds", type=float, default=120.0, help=f"load: how long (at most {MAX_LOAD_S:g})"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="load: requests per second")
    args = parser.parse_args(argv)
    state = StateDir(args.state_dir.resolve())
    try:
        if args.command == "down":
            return down(state, keep_cluster=args.keep_cluster)
        if args.command == "load":
            return load(state, args.seconds, args.rate)
        return up(state, QUICK if args.quick else FULL, args.namespace)
    except (ClusterError, KubectlError, procs.StopError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
