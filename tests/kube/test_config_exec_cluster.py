"""An exec-plugin kubeconfig against the real local control plane.

The plugin is a small script printing an ExecCredential with a ServiceAccount token minted by
``kubectl create token``; the API server names that ServiceAccount in its answer, which proves
the token reached it. Needs this checkout's local cluster (``make cluster-up``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gantry.kube import ApiError, KubeClient, load
from gantry.kube import resources as kinds

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = ROOT / ".cluster" / "bin" / "kubectl"

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not KUBECONFIG.exists(), reason="the local control plane is not up (make cluster-up)"
    ),
]


def kubectl(*args: str) -> str:
    argv = [str(KUBECTL), f"--kubeconfig={KUBECONFIG}", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture
def service_account() -> Iterator[tuple[str, str]]:
    namespace = f"cfg-exec-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("create", "serviceaccount", "plugin-user", "-n", namespace)
    try:
        yield namespace, "plugin-user"
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


async def test_exec_plugin_token_authenticates(
    tmp_path: Path, service_account: tuple[str, str]
) -> None:
    namespace, account = service_account
    token = kubectl("create", "token", account, "-n", namespace, "--duration=10m").strip()
    plugin = tmp_path / "plugin.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    plugin.write_text(f"print({json.dumps(json.dumps(credential))})\n")
    doc = yaml.safe_load(KUBECONFIG.read_text())
    cluster = doc["clusters"][0]
    doc.update(
        users=[
            {
                "name": "plugin",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": sys.executable,
                        "args": [str(plugin)],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        contexts=[{"name": "plugin", "context": {"cluster": cluster["name"], "user": "plugin"}}],
    )
    doc["current-context"] = "plugin"
    # Relative CA paths in the cluster entry resolve against the original file's folder.
    config_path = KUBECONFIG.parent / f"exec-{uuid.uuid4().hex[:6]}.kubeconfig"
    config_path.write_text(yaml.safe_dump(doc))
    try:
        config = load(str(config_path))
    finally:
        config_path.unlink()
    assert config.current_token() == token
    assert (config.cert_file, config.key_file) == (None, None)

    async with KubeClient(config) as client:
        with pytest.raises(ApiError) as refused:
            await client.get(kinds.POD, "absent", "kube-system")
    # Authenticated as the ServiceAccount (and, having no RBAC, forbidden).
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:{account}" in refused.value.message
