"""KEDA's operator and metrics adapter as local processes against a (local) API server.

KEDA runs in-cluster as Deployments; here each binary runs on the test host, as Gantry's operator
does (:class:`e2e.operator_proc.OperatorProcess`, whose start/stop/log handling both reuse):

* every listener is on a free 127.0.0.1 port (the adapter's plain-HTTP /metrics server is the
  exception: KEDA binds it as ``:<port>``, every interface, with no flag to change that);
* leader election is off (KEDA's default; one instance per test);
* ``WATCH_NAMESPACE`` limits each instance to the namespaces given (KEDA refuses to start without
  it), so tests sharing a cluster never have two KEDAs acting on one ScaledObject;
  ``KEDA_CLUSTER_OBJECT_NAMESPACE`` (where it reads Secrets for ClusterTriggerAuthentications)
  is the first of them, since there is no pod namespace to read;
* cert rotation stays off (KEDA's default): :mod:`e2e.keda.certs` writes the files the gRPC
  service between operator and adapter needs, which rotation would otherwise put in a Secret and
  mount, patching webhook and APIService CA bundles on the way.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

from e2e.cluster import Kubectl
from e2e.cluster.procs import free_ports
from e2e.keda.certs import CertDir
from e2e.operator_proc import OperatorProcess


def _keda_env(namespaces: Sequence[str], env: Mapping[str, str] | None) -> dict[str, str]:
    if not namespaces:
        raise ValueError("namespaces: give at least one; KEDA would otherwise act cluster-wide")
    return {
        "WATCH_NAMESPACE": ",".join(namespaces),
        "KEDA_CLUSTER_OBJECT_NAMESPACE": namespaces[0],
        # Read only for leader election (off), but keeps KEDA from assuming "keda".
        "POD_NAMESPACE": namespaces[0],
        **(env or {}),
    }


class KedaOperator(OperatorProcess):
    """``keda`` (cmd/operator): reconciles ScaledObjects into ``keda-hpa-<name>`` HPAs.

    Ready when its health probe answers (the inherited :meth:`ready`), i.e. the manager runs.

    Args:
        binary: The operator binary (:func:`e2e.keda.binaries`).
        log_path: Where stdout and stderr go.
        certs: Files for the gRPC metrics service (:func:`e2e.keda.certs.generate`); the
            adapter must use the same CA.
        namespaces: What KEDA watches (``WATCH_NAMESPACE``).
        kubeconfig: The cluster (None: the inherited ``KUBECONFIG``).
        env: Extra environment (e.g. ``KEDA_HTTP_DEFAULT_TIMEOUT``).
    """

    def __init__(
        self,
        binary: Path,
        log_path: Path,
        *,
        certs: CertDir,
        namespaces: Sequence[str],
        kubeconfig: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            log_path, kubeconfig=kubeconfig, env=_keda_env(namespaces, env), namespaces=namespaces
        )
        self.binary = binary
        self.certs = certs
        (self.grpc_port,) = free_ports(1)

    @property
    def grpc_address(self) -> str:
        """Where the adapter reaches the operator's metrics service."""
        return f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
            f"--health-probe-bind-address=127.0.0.1:{self.liveness_port}",
            f"--metrics-service-bind-address={self.grpc_address}",
            "--leader-elect=false",
            "--enable-cert-rotation=false",
            f"--cert-dir={self.certs.dir}",
            # Scalers may trust extra CAs from here; the in-cluster default /custom/ca is absent.
            f"--ca-dir={self.certs.dir}",
            "--zap-log-level=info",
        ]


class KedaAdapter(OperatorProcess):
    """``keda-adapter`` (cmd/adapter): serves ``external.metrics.k8s.io`` from the operator.

    An API server extension: HTTPS on a loopback port, delegating authentication and
    authorization to the cluster through ``kubeconfig``. It fetches every metric value from the
    operator over mutual TLS (``certs``). Ready when ``/readyz`` answers 200 over HTTPS.

    Args:
        binary: The adapter binary (:func:`e2e.keda.binaries`).
        log_path: Where stdout and stderr go.
        certs: The operator's certificate directory (same CA).
        operator: The operator whose metrics service to call.
        namespaces: What it watches (``WATCH_NAMESPACE``).
        kubeconfig: The cluster, as a file: the adapter's delegated auth needs one.
        env: Extra environment.
    """

    what = "adapter"

    def __init__(
        self,
        binary: Path,
        log_path: Path,
        *,
        certs: CertDir,
        operator: KedaOperator,
        namespaces: Sequence[str],
        kubeconfig: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(log_path, kubeconfig=kubeconfig, env=_keda_env(namespaces, env))
        self.binary = binary
        self.certs = certs
        self.operator = operator
        self.kubeconfig = kubeconfig
        self._trust = ssl.create_default_context(cafile=certs.ca_cert)
        # metrics_port: KEDA's plain-HTTP /metrics; liveness_port: the HTTPS API (secure port).

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.liveness_port}"

    def command(self) -> list[str]:
        kubeconfig = str(self.kubeconfig)
        return [
            str(self.binary),
            f"--secure-port={self.liveness_port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={self.certs.dir}",
            f"--tls-cert-file={self.certs.cert}",
            f"--tls-private-key-file={self.certs.key}",
            f"--port={self.metrics_port}",
            f"--metrics-service-address={self.operator.grpc_address}",
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--zap-log-level=info",
        ]

    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200 over HTTPS (trusting ``certs``' CA).

        The adapter has no plain-HTTP health endpoint, so this replaces the inherited probe;
        :meth:`start` (launch, exit check, deadline) is :class:`OperatorProcess`'s.
        """
        try:
            answer = httpx.get(f"{self.url}/readyz", verify=self._trust, timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200


P = TypeVar("P", bound=OperatorProcess)

#: KEDA's kinds that carry its finalizer (``finalizer.keda.sh``).
FINALIZED_KINDS = "scaledobjects.keda.sh,scaledjobs.keda.sh"


@contextlib.contextmanager
def running(
    proc: P,
    *,
    kubectl: Kubectl | None = None,
    owners: Sequence[str] = (),
    timeout: float = 120.0,
) -> Iterator[P]:
    """``proc`` started; at the end, its ScaledObjects/ScaledJobs deleted, then ``proc`` stopped.

    KEDA puts a finalizer on every ScaledObject and ScaledJob and removes it only while it runs:
    one left behind when the operator stops keeps its namespace Terminating for ever. So with
    ``kubectl`` given (do, for an operator), they are deleted in ``proc.namespaces`` and waited
    for first; ``owners`` (kinds, e.g. ``modeldeployments.serving.gantry.dev``) are deleted before
    them, so that a controller rendering ScaledObjects cannot re-create one that KEDA finalizes
    just before it stops. A non-zero exit on SIGTERM raises AssertionError, with the log's tail.
    """
    proc.start(timeout=timeout)
    try:
        yield proc
    finally:
        try:
            if kubectl is not None:
                for kinds in (*owners, FINALIZED_KINDS):
                    for ns in proc.namespaces:
                        kubectl(
                            "delete", kinds, "--all", "-n", ns, "--wait=true",
                            f"--timeout={timeout:.0f}s", timeout=timeout + 30,
                        )  # fmt: skip
        finally:
            status = proc.stop()
            assert status == 0, f"{type(proc).__name__} exited with {status}:\n{proc.tail()}"
