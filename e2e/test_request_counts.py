"""What the operator asks of a real API server when nothing changes: nothing.

A private operator (``gantry run``, its own namespace only, the session's fast
settle/probe cadence) talks to the local control plane through the fault proxy
switched off (``e2e.faults.FaultProxy``: a loopback reverse proxy that records
every request), so its requests are told apart from everyone else's
on the shared cluster: the API server's own ``apiserver_request_total`` counts
every client, and other sessions' tests run on it at the same time.

Ten ModelDeployments are created and left to settle. Their KWOK pods run with
loopback IPs and no runtime behind them, so every probe is refused at once and
each object stays ``Degraded`` (``ServerUnreachable``), not settled: the
operator keeps reconciling each of them every ``GANTRY_POLL_SECONDS`` (1 s here),
probing the pods, and must send the API server nothing while the answers stay the
same. Then a spec edit of one object must cost only that object's writes.

Counts only, never timings: the windows are spans to count in.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Kubectl
from e2e.conftest import OPERATOR_ENV, SESSION_PREFIX
from e2e.faults import FaultConfig, FaultProxy
from e2e.operator_proc import OperatorProcess
from e2e.test_operator import cpu_model
from e2e.waiting import wait_for
from gantry.kube import load

pytestmark = pytest.mark.timeout(420)

COUNT = 10
STEADY_WINDOW_S = 60.0
QUIET_S = 10.0  # no operator request for this long: settled enough to start counting


def model(name: str, version: str = "1") -> dict[str, Any]:
    manifest = cpu_model(
        name,
        model={"name": "tiny", "uri": "https://models.example/tiny.tar.gz", "version": version},
        resources={"cpu": "100m", "memory": "128Mi"},
        placement={"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
        replicas=1,
        # Degraded for the whole test, never Stalled by the deadline in the middle of it.
        rollout={"strategy": "rolling", "progressDeadlineSeconds": 3600},
    )
    return manifest


def settled(kubectl: Kubectl, namespace: str) -> bool:
    items = kubectl.json("get", "md", "-n", namespace)["items"]
    return len(items) == COUNT and all(
        m.get("status", {}).get("observedGeneration") == m["metadata"]["generation"]
        and m["status"].get("replicas") == 1
        for m in items
    )


def quiet_since(proxy: FaultProxy) -> float:
    """Seconds since the operator's last request other than a watch."""
    last = max((s.at for s in proxy.since(0) if not s.watch), default=0.0)
    return time.monotonic() - last


@pytest.fixture
def counted_ns(
    crd_installed: None,
    kubectl: Kubectl,
    kubeconfig: Path | None,
    tmp_path: Path,
) -> Iterator[tuple[str, FaultProxy]]:
    """A namespace with a private operator behind the proxy, switched off: it only counts."""
    ns = f"rc{SESSION_PREFIX}-{uuid.uuid4().hex[:6]}"  # outside the session operator's pattern
    kubectl("create", "namespace", ns)
    # The proxy's kubeconfig copies one file's current context (the first of a list).
    source = kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0])
    source = source.expanduser()
    with FaultProxy(load(str(source)), tmp_path, FaultConfig(), enabled=False) as proxy:
        config = proxy.write_kubeconfig(source, tmp_path / "proxy.kubeconfig")
        proc = OperatorProcess(
            tmp_path / "operator.log", kubeconfig=config, env=OPERATOR_ENV, namespaces=[ns]
        )
        proc.start()
        try:
            yield ns, proxy
        finally:
            with contextlib.suppress(Exception):
                kubectl("delete", "md", "--all", "-n", ns, "--wait=true", "--timeout=60s")
            proc.stop()
            with contextlib.suppress(Exception):
                kubectl("delete", "namespace", ns, "--wait=false")
            print(f"operator log: {tmp_path / 'operator.log'}\n{proc.tail(20)}")


def test_steady_objects_cost_no_requests_and_an_edit_only_its_writes(
    counted_ns: tuple[str, FaultProxy], kubectl: Kubectl
) -> None:
    ns, proxy = counted_ns
    kubectl.apply(*(model(f"m{i}") for i in range(COUNT)), namespace=ns)
    wait_for(lambda: settled(kubectl, ns), timeout=180, what=f"{COUNT} reconciled objects")
    wait_for(lambda: quiet_since(proxy) >= QUIET_S, timeout=120, what="the operator quiet")

    start = time.monotonic()
    time.sleep(STEADY_WINDOW_S)
    steady = proxy.since(start)
    watches = [s for s in steady if s.watch]
    others = [s for s in steady if not s.watch]
    # A kopf watch cycle lists the collection again before it watches it anew.
    relists = [
        s
        for s in others
        if not s.by_gantry and s.method == "GET" and any(w.path == s.path for w in watches)
    ]
    print(
        f"steady window {STEADY_WINDOW_S:.0f}s, {COUNT} objects: "
        f"{len(others) - len(relists)} requests, {len(watches)} watch reconnects "
        f"({', '.join(sorted({str(w) for w in watches})) or 'none'}), "
        f"{len(relists)} kopf re-lists"
    )
    assert [str(s) for s in others if s not in relists] == []

    # A spec edit of one object: only its own writes, no reads, nothing for the other nine.
    edit_start = time.monotonic()
    kubectl.apply(model("m0", version="2"), namespace=ns)
    wait_for(
        lambda: kubectl.json("get", "md", "m0", "-n", ns)["status"].get("observedGeneration") == 2,
        timeout=60,
        what="the edit reconciled",
    )
    wait_for(lambda: quiet_since(proxy) >= QUIET_S, timeout=120, what="the operator quiet")
    after = [s for s in proxy.since(edit_start) if not s.watch]
    print("after the edit:", *after, sep="\n  ")
    edit = [s for s in after if s.by_gantry]
    # kopf's own client only watches (and re-lists when a watch cycle ends).
    assert [str(s) for s in after if not s.by_gantry and s.method != "GET"] == []
    assert [s for s in edit if s.method == "GET"] == [], "an edit reads nothing: caches"
    applies = [s for s in edit if s.method == "PATCH" and s.path.endswith("/deployments/m0")]
    assert len(applies) == 1, "the changed Deployment is applied once"
    md_path = f"/apis/serving.gantry.dev/v1alpha1/namespaces/{ns}/modeldeployments/m0/status"
    status_writes = [s for s in edit if s.path == md_path]
    assert status_writes, "the status says what changed"
    events = [s for s in edit if s.method == "POST" and s.path.endswith("/events")]
    assert len(edit) == len(applies) + len(status_writes) + len(events), [str(s) for s in edit]
