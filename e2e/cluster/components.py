"""Command lines of the control-plane components and the kubeconfig they share.

Flags follow controller-runtime's envtest (apiserver, etcd) and kwokctl's binary runtime
(controller-manager, scheduler, kwok), restricted to 127.0.0.1 and the ports chosen at ``up``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import yaml

from e2e.cluster import nodes, pki
from e2e.cluster.layout import Layout

CLUSTER_NAME = "gantry-e2e"
AUDIT_POLICY = Path(__file__).resolve().parent / "audit-policy.yaml"
# The log is rotated at this size (MiB), keeping this many old files: writes at Metadata level
# are ~1 KiB each, so a long test session fits in the first file and nothing grows unbounded.
AUDIT_LOG_MAX_MB = 50
AUDIT_LOG_BACKUPS = 2
Ports = dict[str, int]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(layout: Layout, apiserver_port: int) -> None:
    # Credentials are embedded so the file stays valid when copied elsewhere.
    creds = layout.pki
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": f"https://127.0.0.1:{apiserver_port}",
                    "certificate-authority-data": _b64(creds.ca_cert),
                },
            }
        ],
        "users": [
            {
                "name": f"{CLUSTER_NAME}-admin",
                "user": {
                    "client-certificate-data": _b64(creds.admin_cert),
                    "client-key-data": _b64(creds.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": CLUSTER_NAME,
                "context": {"cluster": CLUSTER_NAME, "user": f"{CLUSTER_NAME}-admin"},
            }
        ],
        "current-context": CLUSTER_NAME,
    }
    layout.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
    layout.kubeconfig.chmod(0o600)


def etcd_argv(layout: Layout, ports: dict[str, int]) -> list[str]:
    client = f"http://127.0.0.1:{ports['etcd_client']}"
    peer = f"http://127.0.0.1:{ports['etcd_peer']}"
    return [
        layout.tool("etcd"),
        "--name=node0",
        f"--data-dir={layout.data / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=node0={peer}",
        # Test data is disposable: skipping fsync makes writes (and so the whole suite) faster.
        "--unsafe-no-fsync=true",
        "--auto-compaction-retention=1",
        "--log-level=warn",
    ]


def apiserver_argv(layout: Layout, ports: dict[str, int]) -> list[str]:
    creds = layout.pki
    return [
        layout.tool("kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports['etcd_client']}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports['apiserver']}",
        f"--cert-dir={layout.data / 'apiserver-certs'}",
        f"--tls-cert-file={creds.serving_cert}",
        f"--tls-private-key-file={creds.serving_key}",
        f"--client-ca-file={creds.ca_cert}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={creds.sa_pub}",
        f"--service-account-signing-key-file={creds.sa_key}",
        f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        # The apiserver would publish its loopback address in the "kubernetes" Endpoints,
        # which validation rejects; nothing in-cluster can reach it anyway.
        "--endpoint-reconciler-type=none",
        f"--requestheader-client-ca-file={creds.ca_cert}",
        f"--requestheader-allowed-names={pki.FRONT_PROXY_CN}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={creds.front_proxy_cert}",
        f"--proxy-client-key-file={creds.front_proxy_key}",
        *audit_flags(layout),
    ]


def audit_flags(layout: Layout) -> list[str]:
    """Writes to what Gantry touches, one JSON line each (see audit-policy.yaml).

    The log backend's default mode, blocking, writes each entry before the response is sent,
    so a test reads every write it has seen answered.
    """
    return [
        f"--audit-policy-file={AUDIT_POLICY}",
        f"--audit-log-path={layout.audit_log}",
        "--audit-log-format=json",
        f"--audit-log-maxsize={AUDIT_LOG_MAX_MB}",
        f"--audit-log-maxbackup={AUDIT_LOG_BACKUPS}",
    ]


def _secure_serving(layout: Layout, port: int) -> list[str]:
    """Flags shared by controller-manager and scheduler: loopback HTTPS with our certificate,
    delegated authn/authz through the admin kubeconfig, and anonymous health probes."""
    kubeconfig = layout.kubeconfig
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={layout.pki.serving_cert}",
        f"--tls-private-key-file={layout.pki.serving_key}",
        # One instance per cluster: skipping the lease election saves its start-up wait.
        "--leader-elect=false",
    ]


def controller_manager_argv(layout: Layout, ports: dict[str, int]) -> list[str]:
    creds = layout.pki
    return [
        layout.tool("kube-controller-manager"),
        *_secure_serving(layout, ports["controller_manager"]),
        f"--root-ca-file={creds.ca_cert}",
        f"--service-account-private-key-file={creds.sa_key}",
        f"--cluster-signing-cert-file={creds.ca_cert}",
        f"--cluster-signing-key-file={creds.ca_key}",
        "--controllers=*",
        # Fast node lifecycle: the not-ready taint goes soon after kwok marks a node Ready.
        "--node-monitor-period=1s",
        "--node-monitor-grace-period=40s",
        # Tests of autoscaling should not wait the default 15s per HPA evaluation.
        "--horizontal-pod-autoscaler-sync-period=5s",
    ]


def scheduler_argv(layout: Layout, ports: dict[str, int]) -> list[str]:
    return [layout.tool("kube-scheduler"), *_secure_serving(layout, ports["scheduler"])]


def pod_cidr(ports: dict[str, int]) -> str:
    """A loopback range for pod IPs, distinct per cluster.

    Pods get addresses the test host itself answers on, so a test can back a
    pod with a real process bound to its IP (the operator probes pod IPs as in
    production) and no test traffic ever leaves loopback. The second octet
    follows the API server port so side-by-side clusters do not share IPs.
    """
    return f"127.{64 + ports['apiserver'] % 128}.0.0/16"


def kwok_argv(layout: Layout, ports: dict[str, int]) -> list[str]:
    port = ports["kwok"]
    annotation = ",".join(f"{k}={v}" for k, v in nodes.KWOK_ANNOTATION.items())
    return [
        layout.tool("kwok"),
        f"--kubeconfig={layout.kubeconfig}",
        f"--config={layout.kwok_stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={annotation}",
        f"--cidr={pod_cidr(ports)}",
        "--node-ip=127.0.0.1",
        f"--node-port={port}",
        f"--server-address=127.0.0.1:{port}",
        f"--tls-cert-file={layout.pki.serving_cert}",
        f"--tls-private-key-file={layout.pki.serving_key}",
        "--node-lease-duration-seconds=40",
    ]


# Start order; ``down`` stops them in reverse.
COMMANDS: dict[str, Callable[[Layout, Ports], list[str]]] = {
    "etcd": etcd_argv,
    "kube-apiserver": apiserver_argv,
    "kube-controller-manager": controller_manager_argv,
    "kube-scheduler": scheduler_argv,
    "kwok": kwok_argv,
}
