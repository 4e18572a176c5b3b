"""A scripted KServe v2 server on loopback, for probe tests.

A real Triton cannot easily be made to sit in every state (loading, not ready,
restricted index, slow); this aiohttp server answers the same HTTP API with
whatever the test scripts, so each branch of the probe runs over a real socket.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Script:
    """What the fake server answers."""

    server_ready: bool = True
    model_ready: bool = False
    index: Any = field(default_factory=list)
    index_status: int = 200
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    paths: list[str] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)  # client (host, port)s: one per connection


@dataclass
class Fake:
    script: Script
    endpoint: str


# The server must run on the test's own event loop (the project default for
# fixtures is the session loop, which is idle while a function-scoped test runs).
@pytest_asyncio.fixture(loop_scope="function")
async def fake() -> AsyncIterator[Fake]:
    script = Script()

    async def answer(request: web.Request) -> web.Response:
        script.paths.append(f"{request.method} {request.path}")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        script.peers.add(peer)
        script.in_flight += 1
        script.max_in_flight = max(script.max_in_flight, script.in_flight)
        try:
            await asyncio.sleep(script.delay_s)
            path = request.path
            if path == "/v2/health/ready":
                return web.Response(status=200 if script.server_ready else 400)
            if path.endswith("/ready"):
                return web.Response(status=200 if script.model_ready else 400)
            if path == "/v2/repository/index":
                if script.index_status != 200:
                    return web.json_response({"error": "restricted"}, status=script.index_status)
                return web.json_response(script.index)
            return web.Response(status=404)
        finally:
            script.in_flight -= 1

    runner, endpoint = await start_server(answer)
    try:
        yield Fake(script, endpoint)
    finally:
        await runner.cleanup()


async def start_server(
    answer: Handler, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    """Serve every path with ``answer`` on a free loopback port; the runner and ``host:port``."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    return runner, f"127.0.0.1:{runner.addresses[0][1]}"
