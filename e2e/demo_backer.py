"""``python -m e2e.demo_backer``: the demo's pod backer as a process of its own.

The e2e suite backs pods from a thread of the test (:class:`e2e.backing.PodBacker`); the demo's
pods must keep being served after ``make demo`` returns, so the same backer runs here in its own
process until SIGTERM (``make demo-down``), which stops its runtimes side by side and exits.

Which model a pod serves follows its model-version label: ``--serve VERSION=FACTORY`` names an
``e2e.toy_models`` factory per version, every other version serves ``--default`` (healthy), so a
version the user makes up after the demo gets a working server too. Every runtime started or
stopped is written to ``runtimes.json`` (see :mod:`e2e.demo_procs`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

from e2e.backing import Backing, Chooser, Pod, PodBacker, toy_backing
from e2e.cluster import Kubectl, procs
from e2e.demo_procs import RuntimeEntry, StateDir
from e2e.runtimes import RuntimeProcess

__all__ = ["VERSION_LABEL", "main", "parse_serve", "write_weights"]

VERSION_LABEL = "app.kubernetes.io/version"
# Runtimes one backer may run: the demo needs 4 at most (2 stable + 2 canary); more is a bug.
MAX_RUNTIMES = 6


def write_weights(models: Path) -> Path:
    """The toy models have no parameters: their weights file is an empty state dict."""
    import torch  # the runtime extra; only this process and the runtimes need it

    models.mkdir(parents=True, exist_ok=True)
    path = models / "empty.pt"
    if not path.exists():
        torch.save({}, path)
    return path


def parse_serve(items: Sequence[str]) -> dict[int, str]:
    """``["3=fails_on_traffic"]`` -> ``{3: "fails_on_traffic"}``, refusing what is not that."""
    out: dict[int, str] = {}
    for item in items:
        version, sep, factory = item.partition("=")
        if not sep or not version.isdigit() or not factory.isidentifier():
            raise ValueError(
                f"--serve wants VERSION=FACTORY (e.g. 3=fails_on_traffic), not {item!r}"
            )
        out[int(version)] = factory
    return out


# A Service drops a terminating pod from its endpoints before the kubelet stops the container;
# the demo's clients (the load generator) re-read runtimes.json four times a second.
ENDPOINT_LAG_S = 0.5


class _Runtimes(dict[str, RuntimeProcess]):
    """The backer's runtimes; ``pop`` (a pod going away) unlists the pod before it is stopped.

    :meth:`PodBacker.sync` pops a gone pod's runtime and stops it in one statement; without
    this the pod would stay listed as a target while its Triton drains and refuses requests.
    """

    def __init__(self, unlist: Callable[[str], None]) -> None:
        super().__init__()
        self._unlist = unlist

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self._unlist(key)
        return super().pop(key, *default)


class RecordingBacker(PodBacker):
    """A :class:`PodBacker` that records its runtimes in ``runtimes.json`` after each change."""

    def __init__(self, kubectl: Kubectl, namespace: str, choose: Chooser, state: StateDir) -> None:
        super().__init__(
            kubectl, namespace, choose, state.logs / "pods", max_processes=MAX_RUNTIMES
        )
        self.state = state
        self._recorded: list[RuntimeEntry] = []
        self.processes = _Runtimes(self._unlist)

    def _unlist(self, pod: str) -> None:
        self._recorded = [e for e in self._recorded if e.pod != pod]
        self.state.save_runtimes(self._recorded)
        time.sleep(ENDPOINT_LAG_S)

    def sync(self) -> None:
        try:
            super().sync()
        finally:
            self.record()

    def record(self) -> None:
        entries = []
        for pod, proc in sorted(self.processes.items()):
            known = next((e for e in self._recorded if e.pod == pod), None)
            if known is None or known.proc.pid != proc.pid:
                record = procs.record(f"runtime-{pod}", proc.pid, sys.executable)
            else:
                record = known.proc
            entries.append(
                RuntimeEntry(
                    pod=pod,
                    proc=record,
                    host=proc.ports.host,
                    http=proc.ports.http,
                    model=proc.model_name,
                    version=proc.model_version,
                )
            )
        if entries != self._recorded or not self.state.runtimes.exists():
            self.state.save_runtimes(entries)
            self._recorded = entries

    def close(self) -> None:
        """Stop every runtime at once: one after the other they take a few seconds each."""
        running = list(self.processes.values())
        self.processes.clear()
        if running:
            with ThreadPoolExecutor(max_workers=len(running)) as pool:
                list(pool.map(lambda p: p.stop(), running))
        self.record()


def chooser(weights: Path, model: str, serve: Mapping[int, str], default: str) -> Chooser:
    def choose(pod: Pod) -> Backing | None:
        label = pod["metadata"].get("labels", {}).get(VERSION_LABEL, "")
        if not label.isdigit():
            return None  # not a version Triton can serve; the pod stays unbacked
        version = int(label)
        return toy_backing(weights, serve.get(version, default), model_name=model, version=version)

    return choose


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.demo_backer", description=__doc__)
    parser.add_argument("--kubectl", required=True, help="the kubectl binary")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--model", required=True, help="the model name the runtimes serve")
    parser.add_argument("--serve", action="append", default=[], metavar="VERSION=FACTORY")
    parser.add_argument("--default", default="healthy", help="factory for every other version")
    args = parser.parse_args(argv)
    try:
        serve = parse_serve(args.serve)
    except ValueError as err:
        parser.error(str(err))
    state = StateDir(args.state_dir)
    weights = write_weights(state.models)
    kubectl = Kubectl(binary=args.kubectl, kubeconfig=args.kubeconfig)
    backer = RecordingBacker(
        kubectl, args.namespace, chooser(weights, args.model, serve, args.default), state
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"backing pods of namespace {args.namespace}; versions {serve}, others {args.default}")
    reported = 0
    try:
        while not stop.wait(backer.interval):
            try:
                backer.sync()
            except Exception:  # a blip of the API server must not end the demo's serving
                traceback.print_exc()
            for error in backer.errors[reported:]:
                print(f"backer: {error}", flush=True)
            reported = len(backer.errors)
    finally:
        backer.close()
    print("stopped: every runtime this backer started has exited", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
