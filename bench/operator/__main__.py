"""``python -m bench.operator``: the operator at N ModelDeployments against a bare client.

    python -m bench.operator [--sizes 100,300,1000] [--steady-seconds 300] [--edits 50]
                             [--noise-pods 5000] [--soak-minutes 0] [--quick]
                             [--operator-env NAME=VALUE ...]

Runs on the local control plane (``python -m e2e.cluster up``; reused when running, never
taken down) in a corner of its own (:mod:`bench.operator.cluster`), removed at the end. For
each N, in the same run: the bare client's first-reconcile writes (:mod:`bench.operator.bare`)
and a fresh ``gantry run`` process creating the same N CRs, their ratio; a steady window with
nothing changing (API requests per object per minute, counted by the API server for the
operator's identity alone; operator CPU from ``/proc``); spec edits until the Deployment
has them (p50/p95, timed by a watch); at the largest N the operator's RSS with unrelated pods
in namespaces it watches. ``--soak-minutes`` adds a churn soak. Prints one table, a column
per N, and how busy the machine was. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.operator import procfs
from bench.operator.cluster import BenchCluster
from bench.operator.phases import (
    Operator,
    Options,
    SizeResult,
    bare_phase,
    operator_phases,
    soak,
    workdir_for,
)
from bench.operator.report import Table
from bench.operator.workload import BenchError
from e2e.cluster import Cluster
from gantry.kube import load

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "serving.gantry.dev_modeldeployments.yaml"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sizes(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes: {text!r} is not a list such as 100,300"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} needs positive sizes")
    return values


def env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--operator-env: {text!r} is not NAME=VALUE")
    return name, value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.operator", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--sizes", type=sizes, default=[100, 300, 1000], help="default 100,300,1000"
    )
    parser.add_argument("--steady-seconds", type=float, default=300.0, help="default 300")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=20.0,
        help="wait after create before the steady window, and after the noise pods (default 20)",
    )
    parser.add_argument("--edits", type=int, default=50, help="spec edits per N (default 50)")
    parser.add_argument(
        "--noise-pods",
        type=int,
        default=5000,
        help="unrelated pods for the RSS figure at the largest N (default 5000; 0 skips)",
    )
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="churn soak (default 0)")
    parser.add_argument("--concurrency", type=int, default=32, help="CRs in flight (default 32)")
    parser.add_argument(
        "--operator-env",
        type=env_pair,
        action="append",
        default=[],
        help="NAME=VALUE for the operator process (e.g. GANTRY_RESYNC_SECONDS=30); repeatable",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized: N=20, 30 s steady, 10 edits, 200 noise pods, 5 s settles",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.steady_seconds, args.edits = [20], 30.0, 10
        args.noise_pods, args.settle_seconds = min(args.noise_pods, 200), 5.0
    if args.concurrency < 1 or args.edits < 0 or args.noise_pods < 0 or args.soak_minutes < 0:
        parser.error("--concurrency must be positive; --edits, --noise-pods, --soak-minutes >= 0")
    return args


def code_fingerprint() -> str:
    """Which operator code was measured (the tree may hold uncommitted changes)."""
    import gantry

    root = Path(gantry.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{digest.hexdigest()[:12]} ({root})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    opts = Options(
        concurrency=args.concurrency,
        steady_seconds=args.steady_seconds,
        settle_seconds=args.settle_seconds,
        edits=args.edits,
        noise_pods=args.noise_pods,
        operator_env=dict(args.operator_env),
    )
    others = procfs.other_operator_pids()
    load_at_start = os.getloadavg()
    cluster = Cluster.up(REPO, log=log)
    admin = load(str(cluster.kubeconfig))
    workdir = Path(tempfile.mkdtemp(prefix="gantry-operator-bench-"))
    bench = BenchCluster(cluster.kubectl, cluster.kubeconfig, workdir, log)
    bench.workdir = workdir_for(workdir, bench.run)
    table, breakdown = Table(), Table()
    machine = procfs.MachineCpu.now()
    try:
        bench.open(CRD_PATH)
        log(
            f"run {bench.run}: operator counted by FlowSchema "
            f"{bench.identities['operator'].flow_schema}"
        )
        for n in args.sizes:
            deadline = 120.0 + 0.5 * n
            result = SizeResult(n)
            result.bare_seconds, result.bare_requests, result.bare_busy = asyncio.run(
                bare_phase(bench, admin, n, opts, deadline, log)
            )
            operator = Operator(bench, opts.operator_env, f"n{n}")
            operator.start()
            try:
                asyncio.run(
                    operator_phases(
                        bench,
                        admin,
                        operator,
                        result,
                        opts,
                        deadline,
                        noise=n == max(args.sizes),
                        log=log,
                    )
                )
            finally:
                operator.stop()
            table.put_all(f"N={n}", result.figures())
            breakdown.put_all(f"N={n}", result.steady_by_request())
        if args.soak_minutes:
            operator = Operator(bench, opts.operator_env, "soak")
            operator.start()
            try:
                soaked = asyncio.run(soak(bench, admin, operator, args.soak_minutes, opts, log))
            finally:
                operator.stop()
            table.put_all("soak", soaked.figures())
    except (BenchError, TimeoutError) as exc:
        log(f"FAILED: {exc!r}; logs in {bench.workdir}")
        return 1
    finally:
        log("cleaning up")
        bench.close()
    busy = procfs.MachineCpu.now().busy_since(machine)
    print()
    print("Gantry operator bench (python -m bench.operator)")
    print(f"operator code: {code_fingerprint()}")
    print(f"operator env: {opts.operator_env or 'defaults'}")
    print(
        f"machine: {os.cpu_count()} CPUs; load average at start {load_at_start[0]:.2f}; "
        f"CPU busy over the whole run {100 * busy:.0f}% of all cores; "
        f"other gantry operators running: {len(others)} (pids {others})"
    )
    print()
    print(table.render())
    print()
    print(
        "Steady window, whole API server (every client of the shared cluster), requests per "
        "bench object per minute:"
    )
    print(breakdown.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
