"""The bench's corner of the shared local cluster: namespaces, a node, two identities.

Everything is named after one run id (``bench-<hex>``) and removed by :meth:`BenchCluster.close`:

* namespace ``<run>`` holds the ModelDeployments and the two ServiceAccounts; the noise pods
  get namespaces ``<run>-noise-<k>``. The operator watches ``<run>*`` only (a kopf glob), so it
  sees the noise namespaces too, as an operator of a whole cluster would, and nothing of the
  other sessions' ``gantry-e2e-*`` namespaces.
* node ``<run>-node``, a KWOK node (the annotation kwok is started to manage) with a taint only
  the bench's pods tolerate and room for 20,000 pods. The four shared nodes hold 110 pods
  each: N=1,000 pods plus 5,000 noise pods placed there would leave other sessions' pods
  unschedulable, and pods left Pending would keep the shared scheduler busy.
* identities ``operator`` and ``bare``: a ServiceAccount each (bound to ``cluster-admin``), a
  token kubeconfig each, and a FlowSchema each that sends their requests to the ``exempt``
  priority level (where the admin certificate's requests go too, so nothing is throttled
  differently) under a name of their own. The API server then counts each one's requests in
  ``apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}``, exactly, while other
  sessions share the server. The FlowSchemas match these two ServiceAccounts and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import Kubectl
from e2e.cluster.nodes import kwok_node  # the shared nodes' builder: one KWOK node shape

CRD_NAME = "modeldeployments.serving.gantry.dev"
RUN_LABEL = "bench.gantry.dev/run"
ROLES = ("operator", "bare")
#: Above the mandatory ``exempt`` (1) and below every suggested schema (``probes`` is 2 but
#: matches only unauthenticated health checks).
PRECEDENCE = 50
NODE_PODS = "20000"


@dataclass
class Identity:
    """A ServiceAccount's kubeconfig and the FlowSchema that counts its requests."""

    role: str
    kubeconfig: Path
    flow_schema: str


def _flow_schema(name: str, namespace: str, account: str) -> dict[str, Any]:
    every = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name, "labels": {RUN_LABEL: namespace}},
        "spec": {
            "matchingPrecedence": PRECEDENCE,
            "priorityLevelConfiguration": {"name": "exempt"},
            "rules": [
                {
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "serviceAccount": {"name": account, "namespace": namespace},
                        }
                    ],
                    "resourceRules": [{**every, "clusterScope": True, "namespaces": ["*"]}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


def _binding(name: str, namespace: str, account: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {RUN_LABEL: namespace}},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def bench_node(name: str, run: str) -> dict[str, Any]:
    """A KWOK node like the shared ones, with room for the noise pods and a taint of its own."""
    taint = {"key": RUN_LABEL, "value": run, "effect": "NoSchedule"}
    # The shared nodes' 64 CPUs would hold only 64 bench pods (each requests a CPU).
    room = {"pods": NODE_PODS, "cpu": "100000", "memory": "1000Ti"}
    return kwok_node(name, {RUN_LABEL: run}, room, [taint])


def token_kubeconfig(admin: dict[str, Any], token: str) -> dict[str, Any]:
    """The admin kubeconfig's cluster with a bearer token as the user."""
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster["cluster"]}],
        "users": [{"name": "bench", "user": {"token": token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
        "current-context": "bench",
    }


@dataclass
class BenchCluster:
    """Set up with :meth:`open`, torn down with :meth:`close` (also after a failure)."""

    kubectl: Kubectl
    admin_kubeconfig: Path
    workdir: Path
    log: Callable[[str], None]
    run: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:6]}")
    identities: dict[str, Identity] = field(default_factory=dict)
    noise_namespaces: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.run

    @property
    def node(self) -> str:
        return f"{self.run}-node"

    @property
    def watch_glob(self) -> str:
        return f"{self.run}*"

    def open(self, crd_path: Path) -> None:
        if self.kubectl("get", "crd", CRD_NAME, check=False).returncode != 0:
            # Shared with the other sessions: installed when missing, never replaced.
            self.kubectl("apply", "--server-side", "-f", str(crd_path))
        self.kubectl(
            "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s", timeout=90
        )
        self.kubectl("create", "namespace", self.namespace)
        self.kubectl("label", "namespace", self.namespace, f"{RUN_LABEL}={self.run}")
        self.kubectl.apply(bench_node(self.node, self.run))
        self.kubectl(
            "wait", "--for=condition=Ready", f"node/{self.node}", "--timeout=60s", timeout=90
        )
        admin = yaml.safe_load(self.admin_kubeconfig.read_text())
        for role in ROLES:
            name = f"{self.run}-{role}"
            self.kubectl("create", "serviceaccount", role, "-n", self.namespace)
            self.kubectl.apply(
                _binding(name, self.namespace, role), _flow_schema(name, self.namespace, role)
            )
            token = self.kubectl(
                "create", "token", role, "-n", self.namespace, "--duration=24h"
            ).stdout.strip()
            path = self.workdir / f"{role}.kubeconfig"
            path.write_text(yaml.safe_dump(token_kubeconfig(admin, token)))
            path.chmod(0o600)
            self.identities[role] = Identity(role, path, name)

    def add_noise_namespace(self, index: int) -> str:
        name = f"{self.run}-noise-{index}"
        self.kubectl("create", "namespace", name)
        self.noise_namespaces.append(name)
        return name

    def close(self) -> None:
        """Delete what :meth:`open` made; every step runs even when one fails."""
        namespaces = [self.namespace, *self.noise_namespaces]
        for ns in namespaces:
            self.kubectl(
                "delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False
            )
        for ns in namespaces:
            self.kubectl(
                "wait",
                "--for=delete",
                f"namespace/{ns}",
                "--timeout=300s",
                check=False,
                timeout=330,
            )
        selector = f"{RUN_LABEL}={self.namespace}"
        for kind in ("flowschemas", "clusterrolebindings"):
            self.kubectl("delete", kind, "-l", selector, "--ignore-not-found", check=False)
        self.kubectl("delete", "node", self.node, "--ignore-not-found", check=False, timeout=120)
