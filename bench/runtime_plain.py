"""The baseline: a plain PyTriton binding of a TorchScript model, as a user writes it.

Minimal inference callable (``@batch``, ``torch.no_grad``), PyTriton's default
``ModelConfig()`` (dynamic batching with ``max_batch_size=4``), or the same with
``--max-batch-size`` raised, to separate what the runtime gains from its batch
limit from what it gains elsewhere. Started by
``bench/runtime_bench.py`` with the same libpython fix the runtime applies
(without it the Python backend stub cannot load any model on this machine).
Serves until SIGINT.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> int:
    """Bind and serve until SIGINT."""
    p = argparse.ArgumentParser()
    p.add_argument("--model-file", required=True)
    p.add_argument("--in-features", type=int, required=True)
    p.add_argument("--out-features", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--max-batch-size", type=int, default=0, help="0: PyTriton's default ModelConfig()"
    )
    args = p.parse_args()
    device = torch.device(args.device)
    model = torch.jit.load(args.model_file, map_location=device).eval()

    @batch
    def infer(x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            y = model(torch.from_numpy(x).to(device))
        return {"y": y.cpu().numpy()}

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        exit_timeout_secs=5,
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name="plain",
            infer_func=infer,
            inputs=[Tensor(name="x", dtype=np.float32, shape=(args.in_features,))],
            outputs=[Tensor(name="y", dtype=np.float32, shape=(args.out_features,))],
            config=ModelConfig(max_batch_size=args.max_batch_size)
            if args.max_batch_size
            else ModelConfig(),
        )
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
