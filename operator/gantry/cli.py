"""The ``gantry`` command: run the operator, print the CRD, render children, serve models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from gantry.api.spec import API_VERSION, KIND


class CliError(Exception):
    """A user error: printed without a traceback, exit status 2."""


def _load_manifests(path: str) -> list[dict[str, object]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    found = [d for d in docs if d.get("apiVersion") == API_VERSION and d.get("kind") == KIND]
    if not found:
        raise CliError(f"{path}: no {KIND} ({API_VERSION}) found")
    return found


def cmd_crd(_: argparse.Namespace) -> int:
    from gantry.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from gantry.preview import preview_children

    out: list[dict[str, object]] = []
    for doc in _load_manifests(args.file):
        try:
            out.extend(preview_children(doc))
        except ValidationError as exc:
            name = doc.get("metadata", {})
            raise CliError(f"{args.file}: {name}: {exc}") from exc
    sys.stdout.write(yaml.safe_dump_all(out, sort_keys=False))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from gantry.handlers import run_operator

    run_operator(
        namespaces=args.namespace,
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        kubeconfig=args.kubeconfig,
        verbose=args.verbose,
        leader_election=args.leader_election,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gantry.runtime.cli import main as serve_main

    return serve_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gantry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable); all namespaces when omitted",
    )
    run.add_argument("--metrics-port", type=int, default=8080)
    run.add_argument("--liveness-port", type=int, default=8081)
    run.add_argument("--kubeconfig", default=None)
    run.add_argument(
        "--leader-election",
        action="store_true",
        help="campaign for a coordination.k8s.io Lease and reconcile only while holding it "
        "(for more than one replica; also GANTRY_LEADER_ELECTION=true)",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)

    crd = sub.add_parser("crd", help="print the ModelDeployment CRD")
    crd.set_defaults(func=cmd_crd)

    render = sub.add_parser(
        "render", help="print the children a ModelDeployment manifest produces (no cluster)"
    )
    render.add_argument("-f", "--file", required=True, help="manifest file, or - for stdin")
    render.set_defaults(func=cmd_render)

    serve = sub.add_parser("serve", help="run the reference serving runtime", add_help=False)
    serve.add_argument("rest", nargs=argparse.REMAINDER)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        # The runtime owns its flags (--config, --help...); argparse's REMAINDER
        # would refuse the ones that start with "--".
        return cmd_serve(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except CliError as exc:
        print(f"gantry: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
