"""The builtin scaler on a load step: how fast the capacity comes, how far it overshoots, how calm.

    python -m bench.scaling_bench [--low-rate 1] [--high-rate 8] [--utilization 0.8]
                                  [--warm-seconds 15] [--steady-seconds 90]
                                  [--scale-interval 2] [--max-replicas 4] [--json out.json]

Runs on the local control plane (``python -m e2e.cluster up``; reused, never taken down), in a
namespace of its own with its own ``gantry run`` limited to it, deleted at the end. Every pod is a
KWOK pod backed by a real ``gantry serve`` (``e2e.backing``) serving a model that takes 300 ms
per request (``e2e.toy_models:slow``, one instance), so load queues inside Triton and the scaler
reads ``nv_inference_queue_duration_us`` from the pods, as in production. Load is bounded
loopback HTTP (``e2e.loadgen``).

Phases, all in one run:

1. cold start: apply the ModelDeployment (1 replica), time until its model answers ready; this is
   the baseline the reaction time is divided by (no scaler can beat one model load);
2. ``--warm-seconds`` at ``--low-rate`` (1 pod is enough);
3. the step to ``--high-rate``: *time to capacity* is from the step until the pods needed
   (``needed``, below) serve the model; *overshoot* is the largest size asked for minus
   ``needed``;
4. ``--steady-seconds`` more at the high rate: *changes per 10 min* is the number of size changes
   in that window scaled to 10 minutes (0 is the aim: no flapping);
5. load stops: time until the scaler is back at 1 (after the behavior's scale-down window).

``needed`` is the fewest pods that keep each below ``--utilization`` (0.8) busy:
``ceil(rate * service / utilization)``.

An HPA reading the same metric is not measured: it needs the queue time through the
custom or external metrics API, and here nothing serves it. There is no metrics-server (KWOK
pods report no usage either, so not even cpu works), no prometheus-adapter, and KEDA's metrics
adapter (``e2e/keda``) is a heavy opt-in build whose APIService is cluster-wide, so it is only
registered on a private second control plane (``e2e/test_keda_operator.py``), not this shared one.
The bench prints that line instead of a made-up comparison.

Figures vary run to run on a shared 2-core machine: compare ratios from the same run only.
Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from e2e.backing import ACCESS_TOKEN, Backing, Pod, toy_backing
from e2e.canary_fixtures import FastStopBacker
from e2e.cluster import Cluster, Kubectl
from e2e.loadgen import LoadGenerator, backer_targets
from e2e.operator_proc import OperatorProcess

# Run as a module (python -m bench.scaling_bench): as a script, bench/ would come first on
# sys.path and bench/operator/ would shadow the standard library's operator module.
REPO = Path(__file__).resolve().parents[1]

NAME = "bench"
SERVICE_S = 0.3  # e2e.toy_models:slow, per request
HPA_NOT_RUN = (
    "HPA on the same metric: not run here: no custom.metrics.k8s.io or external.metrics.k8s.io "
    "server on this cluster (no prometheus-adapter; KEDA's adapter is opt-in and registered only "
    "on a private control plane, e2e/test_keda_operator.py); no metrics-server either"
)


# --- pure: the figures from a timeline ---------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One look at the ModelDeployment: seconds since the step, size asked, pods serving."""

    t: float
    desired: int
    serving: int


def needed_replicas(rate: float, service_s: float, utilization: float) -> int:
    """The fewest pods that keep each at or below ``utilization`` busy at ``rate`` requests/s."""
    if rate <= 0 or service_s <= 0:
        raise ValueError(f"rate and service time must be positive, got {rate}, {service_s}")
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be within (0, 1], got {utilization}")
    # round() first: 2.4 / 0.8 is 2.9999999999999996 in floats, and must read as 3.
    return max(1, math.ceil(round(rate * service_s / utilization, 9)))


@dataclass(frozen=True)
class StepFigures:
    """What the step did (seconds; None: not reached within the run)."""

    needed: int
    time_to_capacity_s: float | None
    overshoot: int
    max_desired: int
    steady_changes: int
    steady_seconds: float
    changes_per_10min: float | None


def changes(samples: Sequence[Sample]) -> int:
    """How many times the size asked for changed between consecutive samples."""
    return sum(1 for a, b in itertools.pairwise(samples) if a.desired != b.desired)


def step_figures(samples: Sequence[Sample], *, needed: int, steady_from: float) -> StepFigures:
    """The step's figures from samples taken after it (``t >= 0``).

    Args:
        samples: In time order.
        needed: Pods the high rate needs.
        steady_from: When the steady window starts (seconds after the step); it runs to the
            last sample.
    """
    after = [s for s in samples if s.t >= 0]
    reached = next((s.t for s in after if s.serving >= needed), None)
    max_desired = max((s.desired for s in after), default=0)
    steady = [s for s in after if s.t >= steady_from]
    span = steady[-1].t - steady[0].t if len(steady) >= 2 else 0.0
    n = changes(steady)
    return StepFigures(
        needed=needed,
        time_to_capacity_s=reached,
        overshoot=max(0, max_desired - needed),
        max_desired=max_desired,
        steady_changes=n,
        steady_seconds=span,
        changes_per_10min=n * 600.0 / span if span > 0 else None,
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Options:
    low_rate: float = 1.0
    high_rate: float = 8.0
    utilization: float = 0.8
    warm_seconds: float = 15.0
    steady_seconds: float = 90.0
    scale_interval: float = 2.0
    max_replicas: int = 4
    target_ms: float = 100.0
    scale_down_window: int = 30


@dataclass
class Result:
    options: Options
    cold_start_s: float | None = None
    step: StepFigures | None = None
    scale_down_s: float | None = None
    samples: list[Sample] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[scaling-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def manifest(opts: Options) -> dict[str, Any]:
    behavior = {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 10}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": opts.scale_down_window,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 10}],
        },
    }
    return {
        "apiVersion": "serving.gantry.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "model": {"name": NAME, "uri": "https://models.example/bench.tar.gz", "version": "1"},
            "resources": {"cpu": "100m", "memory": "256Mi"},
            "placement": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
            "scaling": {
                "minReplicas": 1,
                "maxReplicas": opts.max_replicas,
                "metric": {"type": "queueTimeMs", "target": opts.target_ms},
                "behavior": behavior,
            },
        },
    }


class Watcher:
    """Reads (spec.replicas, modelReadyReplicas) of the ModelDeployment's stable Deployment."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl, self.namespace = kubectl, namespace

    def look(self) -> tuple[int, int]:
        md = self.kubectl.json("get", "md", NAME, "-n", self.namespace)
        status = md.get("status", {})
        deployments = self.kubectl.json("get", "deployments", "-n", self.namespace)["items"]
        desired = sum(int(d["spec"].get("replicas", 0)) for d in deployments)
        return desired, int(status.get("modelReadyReplicas", 0))


def until(
    probe: Callable[[], bool], *, timeout: float, interval: float = 0.5, what: str
) -> float | None:
    """Seconds until ``probe`` is true, or None (logged) when ``timeout`` passes first."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(interval)
    log(f"not within {timeout:.0f}s: {what}")
    return None


def record(watch: Watcher, samples: list[Sample], t0: float, seconds: float) -> None:
    """Sample every 0.5 s for ``seconds``, times relative to ``t0``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        desired, serving = watch.look()
        samples.append(Sample(time.monotonic() - t0, desired, serving))
        time.sleep(0.5)


@contextlib.contextmanager
def bench_namespace(kubectl: Kubectl) -> Iterator[str]:
    ns = f"scbench-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    try:
        yield ns
    finally:
        with contextlib.suppress(Exception):
            kubectl("delete", "md", "--all", "-n", ns, "--wait=true", "--timeout=60s", timeout=75)
        kubectl("delete", "namespace", ns, "--wait=false")


def run(opts: Options, work: Path) -> Result:
    import torch  # the runtime's dependency; only the weights file is written here

    cluster = Cluster.up()
    kubectl = cluster.kubectl
    crd = (REPO / "crds" / "serving.gantry.dev_modeldeployments.yaml").read_text()
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crd)
    weights = work / "empty.pt"
    torch.save({}, weights)
    result = Result(options=opts)
    needed = needed_replicas(opts.high_rate, SERVICE_S, opts.utilization)
    if needed > opts.max_replicas:
        raise SystemExit(f"--high-rate needs {needed} pods, above --max-replicas")
    # e2e.toy_models:slow sleeps 300 ms per request.
    model = toy_backing(weights, "slow", model_name=NAME)
    env = {
        "GANTRY_POLL_SECONDS": "1",
        "GANTRY_PROBE_SECONDS": "2",
        "GANTRY_PROBE_TIMEOUT": "1",
        "GANTRY_TRITON_ACCESS_TOKEN": ACCESS_TOKEN,
        "GANTRY_SCALE_INTERVAL": str(opts.scale_interval),
    }

    def choose(_: Pod) -> Backing:
        return model

    with bench_namespace(kubectl) as ns:
        operator = OperatorProcess(
            work / "operator.log", kubeconfig=cluster.kubeconfig, env=env, namespaces=[ns]
        )
        operator.start()
        backer = FastStopBacker(
            kubectl, ns, choose, work / "pods", max_processes=opts.max_replicas + 1
        )
        try:
            with backer:
                watch = Watcher(kubectl, ns)
                kubectl.apply(manifest(opts), namespace=ns)
                log("cold start: 1 replica until its model serves")
                result.cold_start_s = until(
                    lambda: watch.look()[1] >= 1, timeout=180, what="the first pod serving"
                )
                if result.cold_start_s is None:
                    return result
                targets = backer_targets(backer)
                with LoadGenerator(
                    targets, rate=opts.low_rate, max_duration=opts.warm_seconds + 5
                ) as low:
                    log(f"warm: {opts.low_rate:g} req/s for {opts.warm_seconds:g}s")
                    time.sleep(opts.warm_seconds)
                    low.check()
                capacity_window = 180.0
                with LoadGenerator(
                    targets,
                    rate=opts.high_rate,
                    max_requests=int(opts.high_rate * (capacity_window + opts.steady_seconds)),
                    max_duration=capacity_window + opts.steady_seconds + 5,
                ) as high:
                    t0 = time.monotonic()
                    log(f"step: {opts.high_rate:g} req/s; {needed} pods needed")
                    until(
                        lambda: _sample(watch, result.samples, t0) >= needed,
                        timeout=capacity_window,
                        what=f"{needed} pods serving",
                    )
                    steady_from = time.monotonic() - t0
                    log(f"steady: {opts.steady_seconds:g}s at {opts.high_rate:g} req/s")
                    record(watch, result.samples, t0, opts.steady_seconds)
                    high.check()
                result.step = step_figures(result.samples, needed=needed, steady_from=steady_from)
                log("load stopped: back to 1")
                result.scale_down_s = until(
                    lambda: watch.look()[0] == 1,
                    timeout=opts.scale_down_window + 120,
                    what="scale-down to 1",
                )
                backer.check()
        finally:
            operator.stop()
    return result


def _sample(watch: Watcher, samples: list[Sample], t0: float) -> int:
    desired, serving = watch.look()
    samples.append(Sample(time.monotonic() - t0, desired, serving))
    return serving


def report(result: Result) -> str:
    opts, step = result.options, result.step
    lines = [
        f"load step {opts.low_rate:g} -> {opts.high_rate:g} req/s on a {SERVICE_S * 1000:g} ms "
        f"model; queueTimeMs target {opts.target_ms:g}; scrape every {opts.scale_interval:g}s",
        f"cold start (1 pod, baseline)          {fmt(result.cold_start_s, 's')}",
    ]
    if step is not None:
        lines += [
            f"pods needed at the high rate          {step.needed}",
            f"time to needed capacity serving       {fmt(step.time_to_capacity_s, 's')}",
            "  / cold start (ratio, same run)      "
            f"{fmt(ratio(step.time_to_capacity_s, result.cold_start_s), 'x', 2)}",
            f"overshoot (max asked - needed)        {step.overshoot} (max {step.max_desired})",
            f"size changes in steady load           {step.steady_changes} in "
            f"{step.steady_seconds:.0f}s = {fmt(step.changes_per_10min, '', 1)} per 10 min",
        ]
    lines += [
        f"scale-down to 1 after load stops      {fmt(result.scale_down_s, 's')} "
        f"(window {opts.scale_down_window}s)",
        HPA_NOT_RUN,
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    defaults = Options()
    for name, kind in (
        ("low_rate", float),
        ("high_rate", float),
        ("utilization", float),
        ("warm_seconds", float),
        ("steady_seconds", float),
        ("scale_interval", float),
        ("max_replicas", int),
        ("target_ms", float),
        ("scale_down_window", int),
    ):
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        parser.add_argument(flag, type=kind, default=default, help=f"default {default}")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    opts = Options(**{k: v for k, v in vars(args).items() if k != "json"})
    if not 0 < opts.low_rate < opts.high_rate <= 50:
        parser.error("rates: need 0 < --low-rate < --high-rate <= 50 requests/s")
    if opts.steady_seconds < 10 or opts.warm_seconds < 0:
        parser.error("--steady-seconds must be at least 10, --warm-seconds not negative")
    return opts, args.json


def main(argv: Sequence[str] | None = None) -> int:
    opts, json_path = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scaling-bench-") as tmp:
        result = run(opts, Path(tmp))
    print(report(result))
    if json_path is not None:
        json_path.write_text(json.dumps(asdict(result), indent=2))
    return 0 if result.step is not None else 1


if __name__ == "__main__":
    sys.exit(main())
