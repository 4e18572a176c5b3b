"""Backing simulated pods with real serving runtimes.

KWOK pods never run containers, but on the local control plane they get
loopback IPs (see ``e2e/cluster/components.py``). A :class:`PodBacker` watches
the pods of one namespace and, for each running pod, starts a real
``gantry serve`` process bound to that pod's IP and the ports of its container
spec. The operator then probes and scrapes pod IPs exactly as in a real
cluster; no test-only path exists in the operator. A pod that goes away has its
process stopped.

Which model a pod serves is the test's choice (``choose``), typically by the
pod's model-version label, so a canary revision can serve a faulty model.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.cluster import Kubectl
from e2e.runtimes import RuntimePorts, RuntimeProcess

SELECTOR = "app.kubernetes.io/managed-by=gantry"
ACCESS_TOKEN = "gantry-e2e-token"

Pod = dict[str, Any]


@dataclass(frozen=True)
class Backing:
    """What a backed pod serves: runtime arguments plus the model's name and version.

    Attributes:
        metrics_port: Serve ``/metrics`` on this port instead of the pod's own
            ``metrics`` container port, so whoever scrapes the pod as its spec says
            finds nothing there (a pod that gives no metrics, its model still serving).
    """

    args: Sequence[str]
    model_name: str
    model_version: int = 1
    metrics_port: int | None = None


Chooser = Callable[[Pod], Backing | None]


def toy_backing(
    weights: Path,
    factory: str,
    *,
    model_name: str,
    version: int = 1,
    metrics_port: int | None = None,
) -> Backing:
    """A pod serving ``e2e.toy_models:<factory>`` (4 float inputs, one torch thread)."""
    args = [
        str(weights),
        "--format=pytorch",
        f"--module=e2e.toy_models:{factory}",
        "--input=x:float32:4",
        "--torch-threads=1",
    ]
    return Backing(args, model_name=model_name, model_version=version, metrics_port=metrics_port)


def _ports(pod: Pod, backing: Backing) -> RuntimePorts:
    named = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0].get("ports", [])}
    metrics = named["metrics"] if backing.metrics_port is None else backing.metrics_port
    if metrics in (named["http"], named["grpc"]):
        raise ValueError(f"metrics port {metrics} clashes with the pod's http or grpc port")
    return RuntimePorts(
        http=named["http"],
        grpc=named["grpc"],
        metrics=metrics,
        host=pod["status"]["podIP"],
    )


class PodBacker:
    """Keeps one runtime process per running pod of a namespace.

    Args:
        kubectl: Cluster access.
        namespace: Whose pods to back.
        choose: Runtime arguments (model, name, version...) for a pod, or None to
            leave it unbacked (its probes then fail as a dead pod's would).
        log_dir: One log file per pod.
        max_processes: Safety bound: more running pods than this is a test bug.
        interval: Seconds between pod listings.
    """

    def __init__(
        self,
        kubectl: Kubectl,
        namespace: str,
        choose: Chooser,
        log_dir: Path,
        *,
        max_processes: int = 6,
        interval: float = 0.5,
    ) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.choose = choose
        self.log_dir = log_dir
        self.max_processes = max_processes
        self.interval = interval
        self.processes: dict[str, RuntimeProcess] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"backer-{namespace}", daemon=True)

    def __enter__(self) -> PodBacker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # reported by check(); the loop must survive a blip
                self.errors.append(repr(exc))

    def sync(self) -> None:
        pods = self.kubectl.json("get", "pods", "-n", self.namespace, "-l", SELECTOR)["items"]
        live = {}
        for pod in pods:
            status = pod.get("status", {})
            if pod["metadata"].get("deletionTimestamp") or status.get("phase") != "Running":
                continue
            ip = status.get("podIP", "")
            if not ip or not ipaddress.ip_address(ip).is_loopback:
                # Only loopback targets are ever backed (and so ever receive traffic).
                continue
            live[pod["metadata"]["name"]] = pod
        for name in set(self.processes) - set(live):
            self.processes.pop(name).stop()
        for name, pod in live.items():
            if name in self.processes:
                continue
            backing = self.choose(pod)
            if backing is None:
                continue
            if len(self.processes) >= self.max_processes:
                self.errors.append(f"more than {self.max_processes} pods to back")
                continue
            proc = RuntimeProcess(
                backing.args,
                log_path=self.log_dir / f"{name}.log",
                model_name=backing.model_name,
                model_version=backing.model_version,
                ports=_ports(pod, backing),
                access_token=ACCESS_TOKEN,
            )
            self.processes[name] = proc.start()

    def check(self) -> None:
        """Fail the test with the backer's own errors, if any."""
        assert not self.errors, f"pod backer errors: {self.errors}"

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        while self.processes:
            _, proc = self.processes.popitem()
            proc.stop()
