"""Fixtures for end-to-end tests against a real API server.

Which cluster:

* ``KUBECONFIG`` set (to anything but this checkout's ``.cluster/kubeconfig``) and
  ``GANTRY_E2E_OWN_CLUSTER`` unset: that cluster is used as it is (kind, a dev cluster, ...),
  with ``kubectl`` from PATH. Nothing is started or stopped.
* otherwise: the local control plane of this checkout (``python -m e2e.cluster up``). A cluster
  that is already up (``make cluster-up``) is reused and left running; one that this session
  started is torn down at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.backing import ACCESS_TOKEN
from e2e.cluster import REPO_ROOT, Cluster, Kubectl, gateway_api
from e2e.operator_proc import OperatorProcess

# Fast resync so scenarios take seconds; short probe timeouts keep dead pods cheap.
# Namespaces of this session share a prefix the operator is limited to, so two
# sessions on one cluster (a developer and CI, or parallel helpers) never have
# two operators acting on one object.
SESSION_PREFIX = f"e2e{uuid.uuid4().hex[:4]}"

OPERATOR_ENV = {
    # No fast resync: the suite proves that events and the work queue alone drive every
    # scenario. Polling while settling and re-probing are only shortened to save time.
    "GANTRY_POLL_SECONDS": "1",
    "GANTRY_POLL_MAX_SECONDS": "2",
    "GANTRY_PROBE_SECONDS": "2",
    "GANTRY_PROBE_TIMEOUT": "1",
    "GANTRY_TRITON_ACCESS_TOKEN": ACCESS_TOKEN,
}


@dataclass(frozen=True)
class ClusterInfo:
    """The cluster under test: how to reach it and whether it is the local one."""

    kubeconfig: Path | None
    kubectl: Kubectl
    local: bool


def _external() -> ClusterInfo | None:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or os.environ.get("GANTRY_E2E_OWN_CLUSTER"):
        return None
    if Path(kubeconfig).resolve() == (REPO_ROOT / ".cluster" / "kubeconfig").resolve():
        return None  # exported by `python -m e2e.cluster env`: that is the local cluster
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.exit("KUBECONFIG points at an external cluster but kubectl is not on PATH", 2)
    # kubectl reads KUBECONFIG itself (it may be a list of files), so pass no --kubeconfig.
    return ClusterInfo(kubeconfig=None, kubectl=Kubectl(binary=binary), local=False)


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterInfo]:
    external = _external()
    if external is not None:
        yield external
        return
    local = Cluster.up(REPO_ROOT)
    try:
        yield ClusterInfo(kubeconfig=local.kubeconfig, kubectl=local.kubectl, local=True)
    finally:
        if local.started:
            local.down()


@pytest.fixture(scope="session")
def kubeconfig(cluster: ClusterInfo) -> Path | None:
    """Path of the kubeconfig in use (None: kubectl's default/``$KUBECONFIG`` chain)."""
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl(cluster: ClusterInfo) -> Kubectl:
    """``kubectl("get", "pods", "-n", ns)``; ``kubectl.json(...)``; ``kubectl.apply(obj)``."""
    return cluster.kubectl


@pytest.fixture(scope="session")
def _namespaces(kubectl: Kubectl) -> Iterator[list[str]]:
    """Namespaces created by tests; at session end, wait (bounded) until all are gone."""
    created: list[str] = []
    yield created
    if created:
        targets = [f"namespace/{name}" for name in created]
        kubectl("wait", "--for=delete", *targets, "--timeout=120s", timeout=150)


@pytest.fixture
def namespace(
    kubectl: Kubectl, request: pytest.FixtureRequest, _namespaces: list[str]
) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards.

    The deletion is not waited for here: kube-controller-manager holds every namespace
    deletion for a fixed 5s grace period, which would add 5s to each test. The session waits
    for all of them at its end instead.
    """
    # Test ids may hold "_", "[" or "."; namespace names are DNS labels.
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"{SESSION_PREFIX}-{stem}-{uuid.uuid4().hex[:6]}"[:63].rstrip("-")
    kubectl("create", "namespace", name)
    _namespaces.append(name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="session")
def crd_installed(kubectl: Kubectl) -> None:
    """The ModelDeployment CRD, as generated from the API models, Established."""
    crd = (REPO_ROOT / "crds" / "serving.gantry.dev_modeldeployments.yaml").read_text()
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crd)
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/modeldeployments.serving.gantry.dev",
        "--timeout=60s",
    )


@pytest.fixture(scope="session")
def gateway_api_crds(kubectl: Kubectl) -> list[str]:
    """The Gateway API CRDs (standard channel, pinned in ``e2e.cluster.gateway_api``), Established.

    They stay installed: CRDs are cluster-wide, another session on the same cluster may be
    using them, and deleting a CRD deletes every object of its kinds.
    """
    paths = gateway_api.crd_paths()
    files = [arg for path in paths for arg in ("-f", str(path))]
    kubectl("apply", "--server-side", "--force-conflicts", *files)
    names = gateway_api.crd_names(paths)
    kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in names), "--timeout=60s")
    return names


@pytest.fixture(scope="session")
def operator(
    crd_installed: None, kubeconfig: Path | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """``gantry run`` in its own process, watching every namespace, for the whole session."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(
        log, kubeconfig=kubeconfig, env=OPERATOR_ENV, namespaces=[f"{SESSION_PREFIX}-*"]
    )
    proc.start()
    try:
        yield proc
    finally:
        status = proc.stop()
        # Copy the log next to the cluster logs so a CI failure can be read afterwards.
        (REPO_ROOT / ".cluster" / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copy(log, REPO_ROOT / ".cluster" / "logs" / "operator.log")
        assert status == 0, f"operator exited with {status}:\n{proc.tail()}"
