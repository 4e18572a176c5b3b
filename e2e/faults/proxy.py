"""A loopback HTTPS proxy between a client (the operator) and the API server, injecting faults.

The client is pointed at the proxy by a kubeconfig (:meth:`FaultProxy.write_kubeconfig`) whose
server is the proxy and whose CA is the proxy's own self-signed certificate; its user entry is
the original one, so tokens (and exec plugins) reach the proxy unchanged and are forwarded. The
proxy reaches the API server with the original kubeconfig's CA and client certificate.

Which fault a request gets is decided by :class:`e2e.faults.plan.Planner` (seeded, bounded in
count); this module only orders the steps: count, decide, answer or forward, stream back. It
runs its own event loop in a thread, so synchronous tests start, switch and read it directly.

Switched off (``enabled=False``) it is a counting proxy: every request is still recorded
(:meth:`FaultProxy.since`), so a test can tell one client's requests apart from everyone
else's on a shared API server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from e2e.faults.certs import self_signed
from e2e.faults.plan import STATUS_FAULTS, Fault, FaultConfig, Planner, WatchCut, verb_of
from gantry.kube.config import ClusterConfig

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the proxy recomputes.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProxyStats:
    """What went through: requests by Kubernetes verb, faults injected by kind."""

    requests: dict[str, int]
    faults: dict[str, int]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())


def _status_body(code: int, reason: str) -> dict[str, Any]:
    """A ``metav1.Status`` as the API server sends with an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"injected by the fault proxy: {reason}",
        "reason": reason,
        "code": code,
    }


_REASONS = {
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    409: "Conflict",
}


def _reset(request: web.BaseRequest) -> None:
    """Abort the client's connection with a TCP RST (SO_LINGER 0), not a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@dataclass(frozen=True)
class Seen:
    """One request that reached the proxy."""

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


class FaultProxy:
    """The proxy; ``with FaultProxy(upstream, workdir, config) as proxy: ...``.

    Args:
        upstream: The real API server and the credentials to reach it.
        workdir: Where the proxy's certificate goes.
        config: Fault rates and bounds.
        enabled: Whether faults are injected from the start (:attr:`enabled` switches).
    """

    def __init__(
        self,
        upstream: ClusterConfig,
        workdir: Path,
        config: FaultConfig,
        *,
        enabled: bool = True,
    ) -> None:
        self.upstream = upstream
        self.config = config
        self.enabled = enabled
        self.cert, self.key = self_signed(workdir, "gantry-fault-proxy")
        self.port = 0
        self._planner = Planner(config)
        self._requests: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    # -- control, from any thread -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError(f"fault proxy not listening within {_START_TIMEOUT_S}s")
        if self._error is not None:
            raise RuntimeError(f"fault proxy failed to start: {self._error!r}") from self._error
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        future.result(timeout=_STOP_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=_STOP_TIMEOUT_S)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stats(self) -> ProxyStats:
        with self._lock:
            return ProxyStats(dict(self._requests), dict(self._faults))

    def since(self, start: float, end: float | None = None) -> list[Seen]:
        """The requests that arrived in ``[start, end)`` (``time.monotonic()`` seconds)."""
        with self._lock:
            return [s for s in self._seen if s.at >= start and (end is None or s.at < end)]

    def write_kubeconfig(self, original: Path, dest: Path) -> Path:
        """A copy of ``original``'s current context that points at the proxy."""
        config = yaml.safe_load(original.read_text())
        context_name = config["current-context"]
        context = next(c for c in config["contexts"] if c["name"] == context_name)["context"]
        user = next(u for u in config["users"] if u["name"] == context["user"])
        ca = base64.b64encode(self.cert.read_bytes()).decode()
        proxied = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fault-proxy",
                    "cluster": {"server": self.url, "certificate-authority-data": ca},
                }
            ],
            "users": [user],
            "contexts": [
                {
                    "name": "fault-proxy",
                    "context": {**context, "cluster": "fault-proxy"},
                }
            ],
            "current-context": "fault-proxy",
        }
        dest.write_text(yaml.safe_dump(proxied, sort_keys=False))
        dest.chmod(0o600)
        return dest

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as err:  # reported to start(), which is waiting
            self._error = err
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _serve(self) -> None:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(self.cert, self.key)
        # Raw bytes both ways (gzip included): the client decodes what the API server sent.
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A client that hangs up cancels its handler, so a watch it left is not streamed on
        # from the API server until that watch times out; stop() waits for no handler long.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=2.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- one request --------------------------------------------------------------------------

    def _decide(self, request: web.Request) -> Fault | None:
        info = verb_of(request.method, request.path, request.query_string)
        fault = self._planner.fault_for(info) if self.enabled else None
        seen = Seen(
            time.monotonic(),
            request.method,
            request.path,
            dict(request.query),
            request.headers.get("User-Agent", ""),
        )
        with self._lock:
            self._seen.append(seen)
            self._requests[info.verb] += 1
            if fault is not None:
                self._faults[fault.value] += 1
        return fault

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._decide(request)
        body = await request.read()
        if fault is not None and fault in STATUS_FAULTS:
            code = STATUS_FAULTS[fault]
            headers = {"Retry-After": str(self.config.retry_after_s)} if code == 429 else {}
            return web.json_response(
                _status_body(code, _REASONS[code]), status=code, headers=headers
            )
        if fault is Fault.RESET:
            _reset(request)
            return web.Response(status=502)  # never sent: the connection is gone
        if fault is Fault.DELAY:
            await asyncio.sleep(self._planner.delay())
        cut = self._planner.watch_cut() if fault is Fault.WATCH_CUT else None
        return await self._forward(request, body, fault, cut)

    async def _forward(
        self, request: web.Request, body: bytes, fault: Fault | None, cut: WatchCut | None
    ) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method,
            f"{self.upstream.server.rstrip('/')}{request.path_qs}",
            headers=headers,
            data=body or None,
            ssl=self.upstream.ssl_context(),
            allow_redirects=False,
        ) as upstream:
            if fault is Fault.RESET_AFTER:
                await upstream.read()  # the API server has acted; the client never hears
                _reset(request)
                return web.Response(status=502)
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP},
            )
            await response.prepare(request)
            try:
                if cut is None:
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                else:
                    await self._stream_until_cut(upstream, response, cut)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientConnectionError):
                pass  # the client went away (or the upstream did): nothing left to answer
            return response

    async def _stream_until_cut(
        self, upstream: aiohttp.ClientResponse, response: web.StreamResponse, cut: WatchCut
    ) -> None:
        """Pass a watch stream on until ``cut.events`` lines or ``cut.seconds`` have passed,
        then end it cleanly, as an API server does when its watch times out."""
        events = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cut.seconds):
                async for chunk in upstream.content.iter_any():
                    end = 0
                    while events < cut.events and (newline := chunk.find(b"\n", end)) >= 0:
                        end, events = newline + 1, events + 1
                    if events >= cut.events:
                        await response.write(chunk[:end])  # the cut falls between two events
                        return
                    await response.write(chunk)
