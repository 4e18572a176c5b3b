"""What the operator asks of a real API server when nothing changes: nothing.

A private operator (``gantry run``, its own namespace only, the session's fast
settle/probe cadence) talks to the local control plane through a counting
reverse proxy on loopback, so its requests are told apart from everyone else's
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
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from e2e.cluster import Kubectl
from e2e.conftest import OPERATOR_ENV, SESSION_PREFIX
from e2e.operator_proc import OperatorProcess
from e2e.test_operator import cpu_model
from e2e.waiting import wait_for
from gantry.kube import load

pytestmark = pytest.mark.timeout(420)

COUNT = 10
STEADY_WINDOW_S = 60.0
QUIET_S = 10.0  # no operator request for this long: settled enough to start counting
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "content-encoding",
    }
)


@dataclass(frozen=True)
class Seen:
    """One request that went through the proxy."""

    at: float  # time.monotonic() when it arrived
    method: str
    path: str
    params: dict[str, str]
    agent: str

    @property
    def watch(self) -> bool:
        return self.params.get("watch") in ("true", "1")

    @property
    def by_gantry(self) -> bool:
        """Gantry's own client (kopf's watch of ModelDeployments says ``kopf/...``)."""
        return self.agent.startswith("gantry")

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.agent.split('/')[0]}]"


@dataclass
class CountingProxy:
    """A threaded loopback reverse proxy to the API server that records each request.

    Streams every answer as it comes (watches are long-lived chunked bodies).
    The upstream credentials are the cluster kubeconfig's; the operator behind it
    sees a plain-HTTP server with no credentials of its own.
    """

    kubeconfig: Path | None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        upstream = load(str(self.kubeconfig) if self.kubeconfig else None)
        headers = {"Authorization": f"Bearer {upstream.token}"} if upstream.token else {}
        self.client = httpx.Client(
            base_url=upstream.server,
            verify=upstream.ssl_context(),
            headers=headers,
            timeout=httpx.Timeout(30.0, read=None),  # watches stay open for minutes
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=16),
        )
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Forward, self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def since(self, start: float, end: float | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.at >= start and (end is None or s.at < end)]

    def kubeconfig_for_clients(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxy", "cluster": {"server": self.url}}],
            "users": [{"name": "proxy", "user": {}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
            "current-context": "proxy",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, proxy: CountingProxy, *args: Any) -> None:
        self.proxy = proxy
        super().__init__(*args)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the record is the log

    def _forward(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        agent = self.headers.get("User-Agent", "")
        self.proxy.record(Seen(time.monotonic(), self.command, url.path, params, agent))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Accept-Encoding"] = "identity"
        # The operator hanging up on a watch (or the proxy closing) ends the copy.
        with (
            contextlib.suppress(ConnectionError, httpx.HTTPError),
            self.proxy.client.stream(
                self.command, self.path, content=body, headers=headers
            ) as upstream,
        ):
            self.send_response(upstream.status_code)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in upstream.iter_raw():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


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


def quiet_since(proxy: CountingProxy) -> float:
    """Seconds since the operator's last request other than a watch."""
    last = max((s.at for s in proxy.since(0) if not s.watch), default=0.0)
    return time.monotonic() - last


@pytest.fixture
def counted_ns(
    crd_installed: None,
    kubectl: Kubectl,
    kubeconfig: Path | None,
    tmp_path: Path,
) -> Iterator[tuple[str, CountingProxy]]:
    """A namespace with a private operator behind the counting proxy."""
    ns = f"rc{SESSION_PREFIX}-{uuid.uuid4().hex[:6]}"  # outside the session operator's pattern
    kubectl("create", "namespace", ns)
    with CountingProxy(kubeconfig) as proxy:
        config = proxy.kubeconfig_for_clients(tmp_path / "proxy.kubeconfig")
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
    counted_ns: tuple[str, CountingProxy], kubectl: Kubectl
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
