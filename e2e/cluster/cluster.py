"""A local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes), all real binaries bound to 127.0.0.1.

Everything lives under ``<repo>/.cluster/`` (git-ignored):

* ``bin/``         links to the binaries built by ``e2e/cluster/build.sh`` into the user cache
* ``pki/``         throwaway CA and certificates (regenerated at every fresh ``up``)
* ``data/``        etcd data and the API server's cert dir
* ``logs/``        one log per component (kept after ``down`` for post-mortems)
* ``kubeconfig``   admin kubeconfig with embedded credentials
* ``state.json``   ports and pids, so another process (``down``, pytest) can find the cluster
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from e2e.cluster import nodes, pki, procs
from e2e.cluster.api import ApiClient, ApiError, Kubectl
from e2e.cluster.components import COMMANDS, pod_cidr, write_kubeconfig
from e2e.cluster.layout import Layout
from e2e.cluster.wait import poll

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
    "kubeconform",
)
_PORT_NAMES = ("etcd_client", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok")
# Pod CIDRs come from the API server port modulo 128: a few draws find one no cluster uses.
_PORT_DRAWS = 64

Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """The local cluster could not be built, started or reached."""


def _stderr_log(message: str) -> None:
    print(f"[e2e.cluster] {message}", file=sys.stderr, flush=True)


# --- binaries --------------------------------------------------------------------------------


def build_binaries(log: Log = _stderr_log) -> Path:
    """Run build.sh (a no-op when its cache is current) and return the cached bin directory."""
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=3600,  # a cold build takes ~8 min on 2 cores; bounded all the same
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        raise ClusterError(f"{BUILD_SCRIPT} failed: {err}") from err
    bin_dir = Path(result.stdout.strip().splitlines()[-1])
    log(f"binaries ready in {time.monotonic() - started:.1f}s: {bin_dir}")
    return bin_dir


def _link_binaries(layout: Layout, bin_dir: Path) -> None:
    """Point ``.cluster/bin/*`` and the kwok Stage file at the build cache."""
    layout.bin.mkdir(parents=True, exist_ok=True)
    links = {layout.bin / name: bin_dir / name for name in BINARIES}
    links[layout.kwok_stages] = bin_dir.parent / "share" / "kwok-stages.yaml"
    for link, target in links.items():
        if not target.exists():
            raise ClusterError(f"missing build output {target}")
        link.unlink(missing_ok=True)
        link.symlink_to(target)


# --- the cluster -----------------------------------------------------------------------------


@contextlib.contextmanager
def _flock(path: Path, log: Log | None = None, waiting_for: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path``; say so through ``log`` when it has to wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log(f"waiting for {waiting_for}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _locked(layout: Layout) -> contextlib.AbstractContextManager[None]:
    """Serialize up/down of one checkout (e.g. ``make cluster-up`` racing a pytest session)."""
    return _flock(layout.dir / ".lock")


def _start_slot(bin_dir: Path, log: Log) -> contextlib.AbstractContextManager[None]:
    """Serialize start-ups of all clusters of this user, from the choice of ports until every
    component listens: free ports and unused pod CIDRs are only known to be free while no
    other start-up is choosing them too."""
    # <cache>/cluster/<key>/bin: the lock sits beside the keys, shared by every checkout.
    return _flock(bin_dir.parents[1] / "start.lock", log, "another cluster's start-up")


def _choose_ports() -> dict[str, int]:
    """Free loopback ports whose pod CIDR (derived from the API server port) is not in use.

    Two clusters with one pod CIDR would hand out the same loopback pod IPs, and a test backing
    a pod with a process on its IP would answer for the other cluster's pod too. Running
    clusters are found by their kwok's ``--cidr`` flag, whatever checkout or user they belong to.
    """
    taken = procs.flag_values("--cidr")
    for _ in range(_PORT_DRAWS):
        ports = dict(zip(_PORT_NAMES, procs.free_ports(len(_PORT_NAMES)), strict=True))
        if pod_cidr(ports) not in taken:
            return ports
    raise ClusterError(f"no unused pod CIDR in {_PORT_DRAWS} draws of ports; in use: {taken}")


class Cluster:
    """A running (or stopped) local cluster rooted at ``<root>/.cluster``.

    ``Cluster.up(root)`` starts one or reuses a healthy one; ``started`` tells which, so a caller
    only tears down what it started. ``root`` is this repository by default; any other directory
    (a temporary one in tests) holds a cluster of its own, on its own ports and pod CIDR.
    """

    def __init__(
        self,
        layout: Layout,
        ports: dict[str, int],
        processes: list[procs.Proc],
        *,
        started: bool,
        log: Log = _stderr_log,
    ) -> None:
        self.layout = layout
        self.ports = ports
        self.processes = processes
        self.started = started
        self._log = log

    # -- public API ---------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    @property
    def bin_dir(self) -> Path:
        return self.layout.bin

    @property
    def kubectl(self) -> Kubectl:
        """``cluster.kubectl("get", "nodes")``; also ``.json(...)`` and ``.apply(...)``."""
        return Kubectl(binary=self.layout.tool("kubectl"), kubeconfig=self.kubeconfig)

    def env(self) -> dict[str, str]:
        """Environment variables that point kubectl/helm/clients at this cluster."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    @classmethod
    def up(
        cls, root: Path | None = None, *, timeout: float = 120.0, log: Log = _stderr_log
    ) -> Cluster:
        """Reuse the healthy cluster of ``root`` or start a new one; wait until it is usable."""
        layout = Layout((root or REPO_ROOT) / ".cluster")
        with _locked(layout):
            existing = cls.load(root, log=log)
            if existing is not None and existing.healthy():
                log(f"reusing running cluster (apiserver :{existing.ports['apiserver']})")
                existing._ensure_nodes(timeout)
                return existing
            if existing is not None:
                log("found a stale or unhealthy cluster; cleaning it up")
                existing._down_locked()
            cluster = cls(layout, {}, [], started=True, log=log)
            cluster._start(timeout)
            return cluster

    @classmethod
    def load(cls, root: Path | None = None, *, log: Log = _stderr_log) -> Cluster | None:
        """The cluster recorded in ``state.json``, or None; it may or may not be running."""
        layout = Layout((root or REPO_ROOT) / ".cluster")
        try:
            state = json.loads(layout.state.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        processes = [procs.Proc.from_json(p) for p in state.get("processes", [])]
        ports = {str(k): int(v) for k, v in state.get("ports", {}).items()}
        return cls(layout, ports, processes, started=False, log=log)

    def healthy(self) -> bool:
        """All recorded processes are alive and the API server reports ready."""
        if [p.name for p in self.processes] != list(COMMANDS):
            return False  # a start-up that died half-way
        if not all(procs.alive(p) for p in self.processes):
            return False
        return self._api().healthy("/readyz")

    def down(self) -> None:
        """Stop every recorded process (reverse start order) and delete the cluster's state.

        Raises :class:`ClusterError` when a process survives SIGKILL; it stays recorded in
        ``state.json`` so that the next ``down`` (or ``up``) tries again.
        """
        with _locked(self.layout):
            self._down_locked()

    def status(self) -> dict[str, Any]:
        """A JSON-able summary: ports, processes and whether each is alive."""
        return {
            "dir": str(self.layout.dir),
            "kubeconfig": str(self.kubeconfig),
            "healthy": self.healthy(),
            "ports": self.ports,
            "processes": [{**p.to_json(), "alive": procs.alive(p)} for p in self.processes],
        }

    # -- start-up -----------------------------------------------------------------------------

    def _start(self, timeout: float) -> None:
        t0 = time.monotonic()
        t_start = t0
        try:
            bin_dir = build_binaries(self._log)
            _link_binaries(self.layout, bin_dir)
            with _start_slot(bin_dir, self._log):
                self._prepare()
                t_start = time.monotonic()
                self._launch_all(timeout, t_start)
        except BaseException:
            # Everything launched is in self.processes, recorded the moment it started.
            self._log(f"start-up failed; logs are in {self.layout.logs}")
            self._down_locked()
            raise
        self._log(
            f"cluster up in {time.monotonic() - t0:.1f}s (processes started to all nodes Ready: "
            f"{time.monotonic() - t_start:.1f}s); KUBECONFIG={self.kubeconfig}"
        )

    def _launch_all(self, timeout: float, t_start: float) -> None:
        self._launch("etcd")
        # Starting the apiserver before etcd answers works, but floods its log with gRPC
        # dial errors that hide real problems; etcd is ready in well under a second.
        self._wait_for("etcd /health", self._etcd_healthy, timeout)
        self._launch("kube-apiserver")
        self._wait_for("kube-apiserver /readyz", lambda: self._api().healthy("/readyz"), timeout)
        self._log(f"apiserver ready in {time.monotonic() - t_start:.1f}s")
        self._launch("kube-controller-manager")
        self._launch("kube-scheduler")
        self._launch("kwok")
        self._ensure_nodes(timeout)
        self._wait_for_components(timeout)

    def _prepare(self) -> None:
        """Fresh PKI, ports and kubeconfig; old data is removed first."""
        shutil.rmtree(self.layout.data, ignore_errors=True)
        shutil.rmtree(self.layout.pki.dir, ignore_errors=True)
        self.layout.data.mkdir(parents=True)
        pki.generate(self.layout.pki.dir)
        self.ports = _choose_ports()
        write_kubeconfig(self.layout, self.ports["apiserver"])
        self._save()

    def _launch(self, name: str) -> None:
        argv = COMMANDS[name](self.layout, self.ports)
        self.processes.append(procs.start(name, argv, self.layout.logs))
        # Recorded at once, so a failure later in up (or a crash of this process) cannot leak it.
        self._save()

    def _save(self) -> None:
        state = {
            "ports": self.ports,
            "processes": [p.to_json() for p in self.processes],
            "kubeconfig": str(self.kubeconfig),
        }
        tmp = self.layout.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.layout.state)

    def _api(self, port_name: str = "apiserver", path_prefix: str = "") -> ApiClient:
        creds = self.layout.pki
        return ApiClient(
            base_url=f"https://127.0.0.1:{self.ports[port_name]}{path_prefix}",
            ca_file=creds.ca_cert,
            cert_file=creds.admin_cert,
            key_file=creds.admin_key,
        )

    def _etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.ports['etcd_client']}/health"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:
                return bool(json.load(resp).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _check_processes(self) -> None:
        """Fail fast, with the log, when a component died instead of waiting out a timeout."""
        for proc in self.processes:
            if not procs.alive(proc):
                tail = procs.log_excerpt(self.layout.logs, proc.name)
                raise ClusterError(f"{proc.name} (pid {proc.pid}) exited:\n{tail}")

    def _wait_for(
        self,
        what: str,
        check: Callable[[], Any],
        timeout: float,
        describe: Callable[[], str] | None = None,
    ) -> Any:
        def checked() -> Any:
            self._check_processes()
            return check()

        return poll(what, checked, timeout=timeout, describe=describe)

    def _ensure_nodes(self, timeout: float) -> None:
        """Create any missing fake node, then wait for every node to be Ready and untainted."""
        api = self._api()
        wanted = nodes.default_nodes()
        for node in wanted:
            try:
                api.request("POST", "/api/v1/nodes", node)
            except ApiError as err:
                if err.status != 409:  # already exists (reused cluster)
                    raise
        names = {n["metadata"]["name"] for n in wanted}
        t0 = time.monotonic()
        last: dict[str, bool] = {}

        def all_ready() -> bool:
            items = api.get("/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
            last.clear()
            last.update({n["metadata"]["name"]: nodes.is_ready(n) for n in items})
            return all(last.get(name, False) for name in names)

        self._wait_for("fake nodes Ready", all_ready, timeout, lambda: f"ready={last}")
        self._log(f"{len(names)} nodes Ready and untainted in {time.monotonic() - t0:.1f}s")

    def _wait_for_components(self, timeout: float) -> None:
        api = self._api()

        def default_sa() -> bool:
            try:
                api.get("/api/v1/namespaces/default/serviceaccounts/default")
            except ApiError:
                return False
            return True

        self._wait_for("default ServiceAccount", default_sa, timeout)
        for name, port in (
            ("kube-controller-manager", "controller_manager"),
            ("kube-scheduler", "scheduler"),
        ):
            probe = functools.partial(self._api(port).healthy, "/healthz")
            self._wait_for(f"{name} /healthz", probe, timeout)

    # -- tear-down ----------------------------------------------------------------------------

    def _down_locked(self) -> None:
        survivors = [p for p in reversed(self.processes) if not self._stop(p)][::-1]
        self.processes = survivors
        if survivors:
            self._save()
            names = ", ".join(f"{p.name} (pid {p.pid})" for p in survivors)
            raise ClusterError(f"could not stop {names}; still recorded in {self.layout.state}")
        shutil.rmtree(self.layout.data, ignore_errors=True)
        shutil.rmtree(self.layout.pki.dir, ignore_errors=True)
        for path in (self.layout.kubeconfig, self.layout.state):
            path.unlink(missing_ok=True)

    def _stop(self, proc: procs.Proc) -> bool:
        """Stop one process; False when it could not be, so the others are still stopped."""
        try:
            procs.stop(proc)
        except Exception as err:  # any failure must not leave the rest running
            self._log(f"could not stop {proc.name} (pid {proc.pid}): {err}")
            return False
        self._log(f"stopped {proc.name} (pid {proc.pid})")
        return True
