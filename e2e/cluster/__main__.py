"""``python -m e2e.cluster up|down|status|env [--root DIR]`` (run from the repository root)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from e2e.cluster.api import ApiError
from e2e.cluster.cluster import REPO_ROOT, Cluster, ClusterError
from e2e.cluster.wait import WaitTimeoutError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m e2e.cluster", description=__doc__)
    parser.add_argument(
        "command",
        choices=("up", "down", "status", "env"),
        help="up: start or reuse; down: stop and clean; status: JSON summary; "
        'env: shell exports (eval "$(python -m e2e.cluster env)")',
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="checkout whose .cluster/ directory holds the cluster (default: this repository)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for each start-up phase"
    )
    return parser


def _env(cluster: Cluster) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in cluster.env().items())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root: Path = args.root.resolve()
    if args.command == "up":
        cluster = Cluster.up(root, timeout=args.timeout)
        print(_env(cluster), end="")
        return 0
    existing = Cluster.load(root)
    if args.command == "down":
        if existing is not None:
            existing.down()
        return 0
    if existing is None:
        print(f"no cluster recorded under {root / '.cluster'}", file=sys.stderr)
        return 1
    if args.command == "status":
        status = existing.status()
        print(json.dumps(status, indent=2))
        return 0 if status["healthy"] else 1
    print(_env(existing), end="")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ClusterError, WaitTimeoutError, ApiError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
