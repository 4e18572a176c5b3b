"""Model health from real runtimes: KWOK pods backed by ``gantry serve`` processes.

Each pod of the ModelDeployment gets a real Triton (through the reference
runtime) bound to the pod's loopback IP by :class:`e2e.backing.PodBacker`; the
operator probes pod IPs exactly as it would in a real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e.backing import Backing, PodBacker
from e2e.cluster import Kubectl
from e2e.test_operator import condition, cpu_model, get_md
from e2e.waiting import wait_for
from tests.support.runtime_proc import requires_runtime, write_mlp

pytestmark = [
    pytest.mark.usefixtures("operator"),
    pytest.mark.runtime,
    requires_runtime,
    pytest.mark.timeout(300),
]

INSTANCE = "app.kubernetes.io/instance"


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Backing]:
    good = write_mlp(tmp_path / "good.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a TorchScript archive")
    return {
        "good": Backing([str(good), "--input=x:float32:4"], model_name="tiny"),
        "broken": Backing([str(corrupt), "--input=x:float32:4"], model_name="tiny"),
    }


def test_model_ready_follows_the_model(
    kubectl: Kubectl, namespace: str, models: dict[str, Backing], tmp_path: Path
) -> None:
    def choose(pod: dict[str, Any]) -> Backing | None:
        return models.get(pod["metadata"]["labels"][INSTANCE])

    with PodBacker(kubectl, namespace, choose, tmp_path / "logs") as backer:
        kubectl.apply(
            cpu_model("good", replicas=1), cpu_model("broken", replicas=1), namespace=namespace
        )
        kubectl(
            "wait",
            "--for=condition=Ready",
            "md/good",
            "-n",
            namespace,
            "--timeout=150s",
            timeout=160,
        )
        good = get_md(kubectl, namespace, "good")
        assert condition(good, "ModelReady")["status"] == "True"
        assert good["status"]["modelReadyReplicas"] == 1
        assert good["status"]["phase"] == "Ready"

        def load_failed() -> dict[str, Any] | None:
            cond = condition(get_md(kubectl, namespace, "broken"), "ModelReady")
            return cond if cond.get("reason") == "ModelLoadFailed" else None

        cond = wait_for(load_failed, timeout=150, what="ModelReady=False/ModelLoadFailed")
        assert cond["status"] == "False"
        # Triton's own words, read from its repository index through the probe.
        assert "failed to load" in cond["message"], cond
        broken = get_md(kubectl, namespace, "broken")
        assert condition(broken, "Ready")["status"] == "False"
        assert condition(broken, "Degraded")["reason"] == "ModelLoadFailed"

        # The pod of the good model dies: the operator sees the model go away.
        (pod,) = [n for n, p in backer.processes.items() if n.startswith("good-")]
        backer.processes[pod].stop()

        def unreachable() -> dict[str, Any] | None:
            c = condition(get_md(kubectl, namespace, "good"), "ModelReady")
            return c if c.get("status") == "False" else None

        gone = wait_for(unreachable, timeout=60, what="ModelReady=False after the server died")
        assert gone["reason"] in {"ServerUnreachable", "ServerNotReady"}, gone
        backer.check()
