"""Benchmark of the Gantry serving runtime against baselines measured in the same run.

    python bench/runtime_bench.py [--device cpu|cuda] [--quick] [--json out.json]

Model: a 512 -> 8192 -> 8192 -> 10 MLP in fp32, TorchScript (``--quick``:
512 -> 2048 -> 2048 -> 10 and shorter windows). Every request carries one
sample; load comes from ``bench/loadgen.py`` in a separate process (asyncio
gRPC, closed loop, bounded by time and count, loopback only). Servers run one at
a time so they never compete with each other.

Measured, all in this run:

* direct: the same TorchScript model called in this process at batch 32
  (samples/s); the ceiling the servers are compared with;
* runtime: ``gantry.runtime`` (dynamic batching on) at concurrency 1, 8, 32, 64
  and 16, with Triton's own statistics (average batch size, queue time, time
  in the model per execution) read from its statistics endpoint;
* plain: a plain PyTriton binding of the same model (``bench/runtime_plain.py``,
  default ``ModelConfig()``) at concurrency 1, 8, 32, 64;
* plain-mbs64: the same binding with ``max_batch_size=64`` (the runtime's
  default), to show what the runtime gains beyond its batch limit;
* runtime with dynamic batching off, at concurrency 16.

Printed: a table, then the ratios runtime/plain, runtime/direct and batching
on/off, with the targets next to them.

Trading latency for throughput is a flag away, e.g. batches held for up to
50 ms until 32 or 64 requests are queued::

    python bench/runtime_bench.py --variants runtime \
        --runtime-arg=--max-queue-delay-us=50000 \
        --runtime-arg=--preferred-batch-size=32 --runtime-arg=--preferred-batch-size=64

Figures vary run to run by about 10% on a shared 2-core machine; compare ratios
from the same run only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gantry.runtime.libpython import prefer_own_libpython

REPO = Path(__file__).resolve().parents[1]

TOKEN = "gantry-bench-token"
#: The runtime's own defaults, spelled out: dynamic batching up to 64, no queue delay and
#: no preferred sizes (lowest latency at low load). --runtime-arg adds tuning flags.
RUNTIME_FLAGS = ("--max-batch-size=64",)
LEVELS = (1, 8, 32, 64)
BATCHING_LEVEL = 16


@dataclass(frozen=True)
class Plan:
    """Sizes and windows of one benchmark run."""

    dims: tuple[int, ...]
    duration_s: float
    warmup_s: float
    direct_s: float


FULL = Plan(dims=(512, 8192, 8192, 10), duration_s=8.0, warmup_s=2.0, direct_s=6.0)
QUICK = Plan(dims=(512, 2048, 2048, 10), duration_s=3.0, warmup_s=1.0, direct_s=2.0)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def build_model(dims: Sequence[int], path: Path) -> Any:
    """The MLP, scripted and saved; returns the in-process module for the direct baseline."""
    import warnings

    import torch

    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(torch.nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript deprecation notice
        scripted = torch.jit.script(torch.nn.Sequential(*layers).eval())
        scripted.save(str(path))
    return scripted


def direct_baseline(model: Any, in_features: int, device: str, seconds: float) -> dict[str, float]:
    """Samples/s of the model called in this process at batch 32 (and 1, for latency)."""
    import torch

    out: dict[str, float] = {}
    model = model.to(device)
    for batch in (32, 1):
        x = torch.randn(batch, in_features, device=device)
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            runs, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / 2 and runs < 100_000:
                model(x)
                runs += 1
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
        out[f"batch{batch}_ms"] = elapsed / runs * 1000
        out[f"batch{batch}_samples_per_s"] = runs * batch / elapsed
    return out


@dataclass
class Server:
    """A server process under test."""

    name: str
    model: str
    proc: subprocess.Popen[bytes]
    http: int
    grpc: int
    log: Path
    stop_signal: int


def _env() -> dict[str, str]:
    env = dict(os.environ)
    prefer_own_libpython(env)  # both servers need it here; see gantry.runtime.libpython
    env["GANTRY_TRITON_ACCESS_TOKEN"] = TOKEN
    return env


def _wait_ready(server: Server, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{server.http}/v2/models/{server.model}/ready"
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited early; see {server.log}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
    raise RuntimeError(f"{server.name} not ready in {timeout:g}s; see {server.log}")


@contextmanager
def serving(
    name: str, model: str, cmd: list[str], ports: list[int], logdir: Path, sig: int
) -> Iterator[Server]:
    """Start a server, wait for its model, stop it on exit (bounded)."""
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
        server = Server(name, model, proc, ports[0], ports[1], log, sig)
        try:
            _wait_ready(server)
            yield server
        finally:
            if proc.poll() is None:
                proc.send_signal(sig)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def runtime_cmd(
    model_path: Path,
    dims: Sequence[int],
    ports: list[int],
    device: str,
    *,
    dynamic: bool,
    extra: Sequence[str],
) -> list[str]:
    return [
        sys.executable, "-m", "gantry.runtime", str(model_path),
        "--model-name", "mlp", f"--input=x:float32:{dims[0]}", f"--device={device}",
        "--host", "127.0.0.1", f"--http-port={ports[0]}", f"--grpc-port={ports[1]}",
        f"--metrics-port={ports[2]}", "--dynamic-batching" if dynamic else "--no-dynamic-batching",
        "--log-level=WARNING", *extra,
    ]  # fmt: skip


def plain_cmd(
    model_path: Path, dims: Sequence[int], ports: list[int], device: str, max_batch: int = 0
) -> list[str]:
    return [
        sys.executable, str(REPO / "bench" / "runtime_plain.py"), "--model-file", str(model_path),
        f"--max-batch-size={max_batch}",
        f"--in-features={dims[0]}", f"--out-features={dims[-1]}", f"--device={device}",
        f"--http-port={ports[0]}", f"--grpc-port={ports[1]}", f"--metrics-port={ports[2]}",
    ]  # fmt: skip


def load(server: Server, in_features: int, concurrency: int, plan: Plan) -> dict[str, Any]:
    """One load level from a separate loadgen process."""
    cmd = [
        sys.executable, str(REPO / "bench" / "loadgen.py"), "--url", f"127.0.0.1:{server.grpc}",
        "--model", server.model, "--input", f"x:{in_features}", "--concurrency", str(concurrency),
        "--duration", str(plan.duration_s), "--warmup", str(plan.warmup_s),
    ]  # fmt: skip
    budget = plan.duration_s + plan.warmup_s + 60
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        print(f"  ! {server.name} c={concurrency}: {result['errors']} errors")
        print(f"    e.g. {result['first_error']}")
    return result


def triton_stats(server: Server) -> dict[str, float]:
    """Cumulative counters from Triton's statistics endpoint (runtime only: needs the token)."""
    url = f"http://127.0.0.1:{server.http}/v2/models/{server.model}/stats"
    stats = httpx.get(url, headers={"triton-access-token": TOKEN}, timeout=10).json()
    s = stats["model_stats"][0]
    inf = s["inference_stats"]
    return {
        "inferences": float(s["inference_count"]),
        "executions": float(s["execution_count"]),
        "requests": float(inf["success"]["count"]),
        "queue_ns": float(inf["queue"]["ns"]),
        "infer_ns": float(inf["compute_infer"]["ns"]),
    }


def breakdown(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Average batch size, queue ms per request and model ms per execution between two reads."""
    d = {k: after[k] - before[k] for k in after}
    if not d["executions"] or not d["requests"]:
        return {}
    return {
        "avg_batch": d["inferences"] / d["executions"],
        "queue_ms": d["queue_ns"] / d["requests"] / 1e6,
        # compute_infer is charged to every request of a batch: per request = per execution.
        "exec_ms": d["infer_ns"] / d["requests"] / 1e6,
    }


def sweep(
    server: Server, in_features: int, levels: Sequence[int], plan: Plan, *, stats: bool
) -> dict[int, dict[str, Any]]:
    """Run each concurrency level against ``server``; print a line per level."""
    results: dict[int, dict[str, Any]] = {}
    for c in levels:
        before = triton_stats(server) if stats else None
        result = load(server, in_features, c, plan)
        if before is not None:
            result.update(breakdown(before, triton_stats(server)))
        results[c] = result
        line = (
            f"  {server.name:<12} c={c:<3} {result['throughput']:9.1f} req/s"
            f"  p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms"
        )
        if "avg_batch" in result:
            line += (
                f"  | batch {result['avg_batch']:5.1f}  exec {result['exec_ms']:6.1f} ms"
                f"  queue {result['queue_ms']:6.1f} ms"
            )
        print(line, flush=True)
    return results


def report(
    direct: dict[str, float], runs: dict[str, dict[int, dict[str, Any]]]
) -> dict[str, float]:
    """Print the table and the ratios; return the ratios for --json."""
    base = direct["batch32_samples_per_s"]
    print(f"\ndirect (in-process, batch 32): {base:.1f} samples/s", end="")
    print(f" ({direct['batch32_ms']:.1f} ms per batch; batch 1: {direct['batch1_ms']:.2f} ms)")
    print(f"{'variant':<14}{'c':>4}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'/direct':>9}")
    for name, levels in runs.items():
        for c, r in levels.items():
            row = f"{name:<14}{c:>4}{r['throughput']:>10.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            print(f"{row}{r['throughput'] / base:>9.2f}")
    kinds = [
        ("runtime/plain", "runtime", "plain", "target >= 1.0"),
        ("runtime/plain-mbs64", "runtime", "plain-mbs64", "same binding, max_batch_size=64"),
        ("runtime/direct", "runtime", None, "a plain binding reached 0.57 @32, 0.65 @64 here"),
        ("plain/direct", "plain", None, ""),
        ("plain-mbs64/direct", "plain-mbs64", None, ""),
        ("batching on/off", "runtime", "batching-off", "target >= 2.0"),
    ]
    levels = sorted({c for by_level in runs.values() for c in by_level})
    ratios: dict[str, float] = {}
    print(f"\n{'ratio':<22}" + "".join(f"{'c=' + str(c):>8}" for c in levels))
    for label, top, bottom, note in kinds:
        cells = []
        for c in levels:
            a = runs.get(top, {}).get(c)
            b = runs.get(bottom, {}).get(c) if bottom else {"throughput": base}
            if a and b and b["throughput"]:
                ratios[f"{label} c={c}"] = value = a["throughput"] / b["throughput"]
                cells.append(f"{value:8.2f}")
            else:
                cells.append(f"{'-':>8}")
        if any(cell.strip() != "-" for cell in cells):
            print(f"{label:<22}{''.join(cells)}  {note}")
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    p = argparse.ArgumentParser(description="Gantry runtime benchmark (see module docstring).")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="smaller model, shorter windows")
    p.add_argument("--json", type=Path, help="also write all figures to this file")
    p.add_argument(
        "--variants", default="runtime,plain,plain-mbs64,batching-off", help="subset to run"
    )
    p.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrency levels")
    p.add_argument("--runtime-arg", action="append", default=[], help="extra runtime flag")
    args = p.parse_args(argv)
    plan = QUICK if args.quick else FULL
    variants = set(args.variants.split(","))
    levels = tuple(int(c) for c in args.levels.split(","))
    runtime_extra = [*RUNTIME_FLAGS, *args.runtime_arg]
    dims = plan.dims
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        root = Path(tmp)
        model_path = root / "model.pt"
        print(f"model {' -> '.join(map(str, dims))} fp32 on {args.device}, {os.cpu_count()} CPUs")
        print(f"runtime flags: {' '.join(runtime_extra)}", flush=True)
        module = build_model(dims, model_path)
        direct = direct_baseline(module, dims[0], args.device, plan.direct_s)
        del module
        print(
            f"  direct       batch 32 {direct['batch32_samples_per_s']:9.1f} samples/s", flush=True
        )
        if "runtime" in variants:
            ports = free_ports(3)
            cmd = runtime_cmd(
                model_path, dims, ports, args.device, dynamic=True, extra=runtime_extra
            )
            with serving("runtime", "mlp", cmd, ports, root, signal.SIGTERM) as server:
                sweep_levels = (*levels, BATCHING_LEVEL) if "batching-off" in variants else levels
                runs["runtime"] = sweep(server, dims[0], sweep_levels, plan, stats=True)
        if "plain" in variants:
            ports = free_ports(3)
            cmd = plain_cmd(model_path, dims, ports, args.device)
            with serving("plain", "plain", cmd, ports, root, signal.SIGINT) as server:
                runs["plain"] = sweep(server, dims[0], levels, plan, stats=False)
        if "plain-mbs64" in variants:
            ports = free_ports(3)
            cmd = plain_cmd(model_path, dims, ports, args.device, max_batch=64)
            with serving("plain-mbs64", "plain", cmd, ports, root, signal.SIGINT) as server:
                runs["plain-mbs64"] = sweep(server, dims[0], levels, plan, stats=False)
        if "batching-off" in variants:
            ports = free_ports(3)
            cmd = runtime_cmd(
                model_path, dims, ports, args.device, dynamic=False, extra=runtime_extra
            )
            with serving("batching-off", "mlp", cmd, ports, root, signal.SIGTERM) as server:
                runs["batching-off"] = sweep(server, dims[0], (BATCHING_LEVEL,), plan, stats=True)
    ratios = report(direct, runs)
    if args.json:
        figures = {"plan": plan.__dict__, "direct": direct, "runs": runs, "ratios": ratios}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
