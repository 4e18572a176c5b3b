"""``kubectl gantry``: look at ModelDeployments and work their manual gates.

kubectl runs any ``kubectl-gantry`` on PATH for ``kubectl gantry ...`` and passes every
argument after ``gantry`` through, so the flags kubectl users expect (``-n``,
``--kubeconfig``, ``--context``) are parsed here; ``$KUBECONFIG`` is honoured by the loader.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
from collections.abc import Sequence

from gantry.api.spec import GROUP, PLURAL, SHORT_NAMES, SINGULAR
from gantry.kube import KubeClient, KubeConfigError, load
from gantry.kubectl_plugin import commands
from gantry.kubectl_plugin.commands import FIELD_MANAGER, PluginError, Target

KIND_WORDS = frozenset(
    word for name in (SINGULAR, PLURAL, *SHORT_NAMES) for word in (name, f"{name}.{GROUP}")
) | {f"{short}s" for short in SHORT_NAMES}


class UsageError(Exception):
    """Arguments that name no ModelDeployment; argparse prints it with the usage."""


def parse_target(words: Sequence[str]) -> str:
    """The name in ``NAME``, ``md/NAME`` or ``md NAME`` (any of kubectl's spellings of the
    kind, e.g. ``modeldeployment.serving.gantry.dev/NAME``)."""
    if len(words) == 2:
        kind, name = words
    elif len(words) == 1 and "/" in words[0]:
        kind, name = words[0].split("/", 1)
    elif len(words) == 1:
        kind, name = SHORT_NAMES[0], words[0]
    else:
        raise UsageError(f"expected md/NAME, md NAME or NAME, got {' '.join(words)!r}")
    if kind.lower() not in KIND_WORDS:
        raise UsageError(f"only ModelDeployments (md) are supported, not {kind!r}")
    if not name or "/" in name:
        raise UsageError(f"{name!r} is not a ModelDeployment name")
    return name


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _connection_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # The flags work before and after the command (kubectl users write both). Below the top
    # level they default to SUPPRESS: a subparser default would overwrite a value given
    # before the command.
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--kubeconfig", default=default, help="path of the kubeconfig file")
    parser.add_argument("--context", default=default, help="kubeconfig context to use")
    parser.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the context's)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl gantry", description=__doc__.split("\n")[0])
    _connection_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    get = sub.add_parser("get", help="draw a ModelDeployment as a tree")
    get.add_argument("target", nargs="+", metavar="md/NAME")
    get.add_argument("-w", "--watch", action="store_true", help="redraw on every change")
    get.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=None,
        help="with --watch: stop after this many seconds",
    )
    _connection_flags(get, top=False)

    for verb, text in (
        ("promote", "promote the canary (all remaining steps, or --step: the current one)"),
        ("abort", "roll the canary back to the stable revision"),
        ("pause", "hold the canary at its current step"),
        ("resume", "continue a paused canary (or retry an aborted one)"),
    ):
        cmd = sub.add_parser(verb, help=text)
        cmd.add_argument("target", nargs="+", metavar="NAME")
        if verb == "promote":
            cmd.add_argument("--step", action="store_true", help="complete the current step only")
        _connection_flags(cmd, top=False)
    return parser


async def _run(args: argparse.Namespace, name: str) -> None:
    try:
        config = load(args.kubeconfig, context=args.context)
        client = KubeClient(config, field_manager=FIELD_MANAGER)
    except (KubeConfigError, OSError, KeyError, TypeError, ValueError) as exc:
        raise PluginError(f"cannot use the kubeconfig: {exc}") from exc
    target = Target(name, args.namespace or config.namespace)
    async with client:
        if args.command == "get" and args.watch:
            await commands.watch(
                client, target, sys.stdout, tty=sys.stdout.isatty(), duration=args.timeout
            )
        elif args.command == "get":
            await commands.get(client, target, sys.stdout)
        else:
            g = commands.gate(args.command, step=getattr(args, "step", False))
            print(await commands.request_gate(client, target, g))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        name = parse_target(args.target)
    except UsageError as exc:
        parser.error(str(exc))
    if args.command == "get" and args.timeout is not None and not args.watch:
        parser.error("--timeout needs --watch")
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A terminal without UTF-8 gets "?" for the icons rather than a crash.
        sys.stdout.reconfigure(errors="replace")
    try:
        asyncio.run(_run(args, name))
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0  # Ctrl-C ends a watch; that is how it is meant to end.
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, and keep Python's own flush at exit
        # from raising again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
