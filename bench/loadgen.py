"""Closed-loop gRPC load generator for a KServe v2 (Triton) endpoint.

Run as its own process, so the client's CPU time is not charged to the server
under test (both still share the machine's cores, equally for every variant):

    python bench/loadgen.py --url 127.0.0.1:8001 --model mlp --input x:512 \
        --concurrency 32 --duration 5 --warmup 1 --max-requests 100000

``--concurrency`` workers each keep one request in flight (asyncio,
``tritonclient.grpc.aio``), one sample per request. Measurement stops at
``--duration`` seconds or ``--max-requests`` completions, whichever comes first;
every request has a client timeout. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpc_aio


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    index = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[index]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drive the load and return the measurement."""
    name, _, dims = args.input.partition(":")
    shape = [1, *(int(d) for d in dims.split(","))]
    data = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    client = grpc_aio.InferenceServerClient(args.url)
    inputs = [grpc_aio.InferInput(name, shape, "FP32")]
    inputs[0].set_data_from_numpy(data)
    latencies: list[float] = []
    errors: list[str] = []
    start = time.monotonic()
    measure_from = start + args.warmup
    stop_at = measure_from + args.duration
    measured = 0

    async def worker() -> None:
        nonlocal measured
        while True:
            now = time.monotonic()
            if now >= stop_at or measured >= args.max_requests:
                return
            try:
                await client.infer(args.model, inputs, client_timeout=args.request_timeout)
            except Exception as exc:  # a benchmark reports failures, it does not stop on them
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                if len(errors) > 100:
                    return
                continue
            done = time.monotonic()
            if now >= measure_from and done <= stop_at:
                latencies.append((done - now) * 1000.0)
                measured += 1

    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(args.concurrency))),
            timeout=args.warmup + args.duration + args.request_timeout + 5,
        )
    finally:
        await client.close()
    elapsed = min(time.monotonic(), stop_at) - measure_from
    latencies.sort()
    return {
        "concurrency": args.concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(elapsed, 3),
        "throughput": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, print JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="host:port of the gRPC endpoint (loopback)")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="NAME:D1,D2 (per-sample dims, FP32)")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--max-requests", type=int, default=1_000_000)
    p.add_argument("--request-timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    if not args.url.startswith(("127.", "localhost", "[::1]")):
        p.error("--url must be a loopback address")
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
