"""``gantry serve``: command-line entry point of the serving runtime.

Examples::

    gantry serve model.pt --input x:float32:512 --http-port 8000
    gantry serve --config runtime.yaml --no-dynamic-batching
    python -m gantry.runtime --config runtime.yaml --print-config

Flags override the ``GANTRY_*`` environment, which overrides ``--config``
(see :mod:`gantry.runtime.config`). The access token for Triton's restricted
endpoints is read from ``GANTRY_TRITON_ACCESS_TOKEN`` only, never from argv,
where any local user could read it.

This module imports neither torch nor pytriton; :func:`main` loads them only
when it actually serves.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gantry.runtime.config import (
    DTYPES,
    RuntimeConfig,
    build_config,
    env_overrides,
    load_config_file,
)
from gantry.runtime.errors import ConfigError

__all__ = ["CONFIG_ENV", "TOKEN_ENV", "build_parser", "config_from_args", "main"]

#: Environment variable naming a config file when ``--config`` is absent.
CONFIG_ENV = "GANTRY_RUNTIME_CONFIG"
#: Environment variable holding the token for Triton's restricted endpoints.
TOKEN_ENV = "GANTRY_TRITON_ACCESS_TOKEN"


def _tensor(text: str) -> dict[str, Any]:
    """Parse ``NAME:DTYPE:D1,D2,...`` (dims exclude the batch dimension)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME:DTYPE:DIMS, e.g. x:float32:3,224,224"
        )
    name, dtype, dims = parts
    if dtype not in DTYPES:
        raise argparse.ArgumentTypeError(f"{text!r}: dtype must be one of {', '.join(DTYPES)}")
    try:
        shape = [int(d) for d in dims.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: dims must be integers (-1 = variable)"
        ) from None
    return {"name": name, "dtype": dtype, "shape": shape}


def _kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--module-kwargs: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--module-kwargs: must be a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every option defaults to ``None`` (= not given)."""
    p = argparse.ArgumentParser(
        prog="gantry serve",
        description="Serve a torch model behind Triton Inference Server (KServe v2 HTTP/gRPC).",
    )
    p.add_argument("uri", nargs="?", help="model file or directory (same as --model-uri)")
    p.add_argument("--config", type=Path, help=f"YAML/JSON runtime config (env {CONFIG_ENV})")
    m = p.add_argument_group("model")
    m.add_argument("--model-uri", help="path, file://, http(s):// or a model directory")
    m.add_argument("--model-name", help="name served at /v2/models/NAME (default: model)")
    m.add_argument("--model-version", type=int, help="version served (default: 1)")
    m.add_argument("--format", choices=["torchscript", "pytorch"], help="default: torchscript")
    m.add_argument("--module", help="package.module:attr building the nn.Module (format pytorch)")
    m.add_argument("--module-kwargs", type=_kwargs, help="JSON object passed to --module")
    m.add_argument("--input", action="append", type=_tensor, metavar="NAME:DTYPE:DIMS")
    m.add_argument(
        "--output",
        action="append",
        type=_tensor,
        metavar="NAME:DTYPE:DIMS",
        help="default: inferred by running the model once",
    )
    m.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: cpu)")
    m.add_argument("--torch-threads", type=int, help="torch intra-op threads")
    m.add_argument("--instances", type=int, help="model instances (default: 1)")
    b = p.add_argument_group("batching")
    b.add_argument("--dynamic-batching", action=argparse.BooleanOptionalAction, default=None)
    b.add_argument("--max-batch-size", type=int)
    b.add_argument("--preferred-batch-size", type=int, action="append", metavar="N")
    b.add_argument("--max-queue-delay-us", type=int)
    s = p.add_argument_group("server")
    s.add_argument("--host", help="bind address (default: 0.0.0.0)")
    s.add_argument("--http-port", type=int)
    s.add_argument("--grpc-port", type=int)
    s.add_argument("--metrics-port", type=int)
    s.add_argument("--drain-timeout", type=float, help="seconds to wait for in-flight requests")
    s.add_argument("--exit-timeout", type=int, help="tritonserver --exit-timeout-secs after drain")
    s.add_argument(
        "--tensor-transport",
        choices=["auto", "shared_memory", "inline"],
        help="how tensors reach the model process (default: auto, by tensor size)",
    )
    s.add_argument("--exit-on-load-error", action="store_true", default=None)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--print-config", action="store_true", help="print the effective config and exit"
    )
    return p


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    def pick(**fields: Any) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if v is not None}

    out: dict[str, Any] = {}
    model = pick(
        uri=args.model_uri or args.uri,
        name=args.model_name,
        version=args.model_version,
        format=args.format,
        module=args.module,
        module_kwargs=args.module_kwargs,
    )
    batching = pick(
        dynamic=args.dynamic_batching,
        max_batch_size=args.max_batch_size,
        preferred_batch_sizes=args.preferred_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
    )
    server = pick(
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        drain_timeout_s=args.drain_timeout,
        exit_timeout_s=args.exit_timeout,
        tensor_transport=args.tensor_transport,
    )
    for key, value in (("model", model), ("batching", batching), ("server", server)):
        if value:
            out[key] = value
    out.update(
        pick(
            inputs=args.input,
            outputs=args.output,
            device=args.device,
            torch_threads=args.torch_threads,
            instances=args.instances,
            exit_on_load_error=args.exit_on_load_error,
        )
    )
    return out


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> RuntimeConfig:
    """Assemble the config: file, then ``GANTRY_*`` environment, then flags.

    Raises:
        ConfigError: a layer is unreadable or the result is invalid.
    """
    config_path = args.config or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    file_layer = load_config_file(config_path) if config_path else {}
    return build_config(file_layer, env_overrides(environ), _flag_overrides(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gantry serve``; returns the process exit status.

    Args:
        argv: arguments after ``serve``; ``sys.argv[1:]`` when ``None``.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO; the drain loop's index polls would flood the log.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(args.log_level)))
    try:
        config = config_from_args(args, os.environ)
    except ConfigError as exc:
        print(f"gantry serve: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config.model_dump_json(indent=2))
        return 0
    from gantry.runtime.app import serve

    return serve(config, access_token=os.environ.get(TOKEN_ENV) or None)
