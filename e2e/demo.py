"""``make demo``: the whole thing on the embedded default, start to Ready.

1. the local control plane (built once from Go modules, then cached);
2. the CRD and the operator (``gantry run``, its own process);
3. ``examples/cpu-runtime.yaml``, whose KWOK pod is backed by a real
   ``gantry serve`` (Triton + a small TorchScript model made here);
4. wait for ``Ready``, print ``kubectl get md`` and the status.

The operator and the runtime stop at the end; the control plane stays up for
poking around (``make cluster-down`` stops it).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from e2e.backing import ACCESS_TOKEN, Backing, PodBacker
from e2e.cluster import REPO_ROOT, Cluster
from e2e.operator_proc import OperatorProcess
from tests.support.runtime_proc import write_mlp

NAMESPACE = "gantry-demo"
EXAMPLE = REPO_ROOT / "examples" / "cpu-runtime.yaml"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main() -> int:
    cluster = Cluster.up(REPO_ROOT)
    kubectl = cluster.kubectl
    say("installing the ModelDeployment CRD")
    crd = REPO_ROOT / "crds" / "serving.gantry.dev_modeldeployments.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/modeldeployments.serving.gantry.dev",
        "--timeout=60s",
    )
    if kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        kubectl("create", "namespace", NAMESPACE)

    manifest: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"]["namespace"] = NAMESPACE
    name = manifest["metadata"]["name"]
    model = manifest["spec"]["model"]

    work = Path(tempfile.mkdtemp(prefix="gantry-demo-"))
    weights = write_mlp(work / "model.pt")
    backing = Backing(
        [str(weights), "--input=x:float32:4"],
        model_name=model["name"],
        model_version=int(model.get("version", "1")),
    )
    logs = REPO_ROOT / ".cluster" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    operator = OperatorProcess(
        logs / "demo-operator.log",
        kubeconfig=cluster.kubeconfig,
        env={"GANTRY_RESYNC_SECONDS": "2", "GANTRY_TRITON_ACCESS_TOKEN": ACCESS_TOKEN},
        namespaces=[NAMESPACE],
    )
    say("starting the operator (log: .cluster/logs/demo-operator.log)")
    operator.start()
    try:
        with PodBacker(kubectl, NAMESPACE, lambda _pod: backing, logs / "demo-pods"):
            say(f"applying {EXAMPLE.relative_to(REPO_ROOT)} (pods backed by a real Triton)")
            kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
            say(f"waiting for md/{name} to be Ready")
            result = kubectl(
                "wait",
                "--for=condition=Ready",
                f"md/{name}",
                "-n",
                NAMESPACE,
                "--timeout=240s",
                check=False,
                timeout=250,
            )
            print(result.stdout or result.stderr, end="")
            say("kubectl get md")
            print(kubectl("get", "md", "-n", NAMESPACE).stdout, end="")
            say("status")
            md = kubectl.json("get", "md", name, "-n", NAMESPACE)
            print(yaml.safe_dump({"status": md.get("status", {})}, sort_keys=False), end="")
            say("children")
            print(
                kubectl("get", "deploy,svc,pdb,pods", "-n", NAMESPACE, "-o", "wide").stdout, end=""
            )
            kubectl("delete", "md", name, "-n", NAMESPACE, "--wait=true", "--timeout=60s")
            return result.returncode
    finally:
        operator.stop()
        print(
            f"\nThe control plane is still up: export KUBECONFIG={cluster.kubeconfig}; "
            "`make cluster-down` stops it."
        )


if __name__ == "__main__":
    sys.exit(main())
