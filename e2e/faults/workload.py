"""The ModelDeployments, backed pods and namespaces of the fault and kill scenarios."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from e2e.backing import Backing
from e2e.cluster import Kubectl
from e2e.conftest import SESSION_PREFIX
from e2e.test_operator import cpu_model

MODEL = "tiny"
VERSION_LABEL = "app.kubernetes.io/version"
# A canary of one pod beside one stable pod, paused until promoted or aborted by hand: the
# scenario needs neither traffic nor Prometheus, and each step waits for a person.
STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
# Words in the operator's log that mean something died instead of being handled.
CRASH_WORDS = ("crashed", "Unhandled exception", "Task exception was never retrieved")


def manifest(name: str, version: int) -> dict[str, Any]:
    """The ModelDeployment ``name`` serving model version ``version`` (1, 2, 3)."""
    return cpu_model(
        name,
        model={"name": MODEL, "uri": "https://models.example/tiny.tar.gz", "version": str(version)},
        replicas=1,
        # Small requests, and the GPU nodes' CPUs allowed too: the local cluster is shared.
        resources={"cpu": "100m", "memory": "256Mi"},
        placement={"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
        rollout={"strategy": "canary", "canary": {"steps": STEPS}},
    )


def healthy_backing(
    weights: Path, versions: tuple[int, ...] = (1, 2)
) -> Callable[[dict[str, Any]], Backing | None]:
    """Pods of ``versions`` serve a healthy toy model at the version their label names; others
    (the canary that is rolled back) are left unbacked, as a pod whose model never loads."""
    args = [
        str(weights),
        "--format=pytorch",
        "--module=e2e.toy_models:healthy",
        "--input=x:float32:4",
        "--torch-threads=1",
    ]

    def choose(pod: dict[str, Any]) -> Backing | None:
        version = int(pod["metadata"]["labels"][VERSION_LABEL])
        if version not in versions:
            return None
        return Backing(args, model_name=MODEL, model_version=version)

    return choose


@contextlib.contextmanager
def private_namespace(kubectl: Kubectl, stem: str) -> Iterator[str]:
    """A namespace no session operator watches (its prefix is not the session's)."""
    ns = f"f{SESSION_PREFIX}-{stem}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    try:
        yield ns
    finally:
        kubectl("delete", "namespace", ns, "--wait=false")


def crash_lines(log: Path) -> list[str]:
    """Lines where the operator (or kopf) says something crashed or died unhandled."""
    text = log.read_text(errors="replace")
    return [line for line in text.splitlines() if any(w in line for w in CRASH_WORDS)]
