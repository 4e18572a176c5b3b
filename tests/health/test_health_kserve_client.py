"""KServeClient, the probes' own KServe v2 client, against recording servers on loopback.

It replaces tritonclient's aio client, so these pin tritonclient's answers: only a 200
means ready, a refused index raises with the server's ``{"error": ...}`` as
``[status] message``, model names are quoted, the index is an empty POST, headers
go on every request. And what tritonclient did not do: many endpoints, one session.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from e2e.faults.certs import self_signed
from gantry.health import ACCESS_TOKEN_HEADER, ProbePool, ProbeReason, ProbeTarget, probe_endpoint
from gantry.health.probe import (
    CONNECTIONS_PER_HOST,
    EMPTY_ERROR_BODY,
    KServeClient,
    KServeError,
    base_url,
    error_from_body,
    model_ready_path,
    new_client,
    new_session,
)
from tests.health.kserve_fake import start_server

pytestmark = pytest.mark.timeout(60)
R = ProbeReason
DECODE_ERROR = "an exception occurred in the client while decoding the response: "


@dataclass(frozen=True)
class Seen:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes
    peer: Any  # the client's (host, port): one per TCP connection


@dataclass
class Server:
    """Answers ``"METHOD /raw/path"`` from ``answers`` (else 404), recording every request."""

    endpoint: str
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def connections(self) -> int:
        return len({s.peer for s in self.seen})


Serve = Callable[..., Awaitable[Server]]


@pytest_asyncio.fixture(loop_scope="function")
async def serve() -> AsyncIterator[Serve]:
    """Starts recording servers on the test's loop (``ssl_context`` for TLS); stops them all."""
    runners: list[web.AppRunner] = []

    async def start(ssl_context: ssl.SSLContext | None = None) -> Server:
        server = Server(endpoint="")

        async def answer(request: web.Request) -> web.Response:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            body = await request.read()
            server.seen.append(
                Seen(request.method, request.raw_path, dict(request.headers), body, peer)
            )
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                await asyncio.sleep(server.delay_s)
                status, payload = server.answers.get(
                    f"{request.method} {request.raw_path}", (404, b"")
                )
                return web.Response(status=status, body=payload)
            finally:
                server.in_flight -= 1

        runner, server.endpoint = await start_server(answer, ssl_context=ssl_context)
        runners.append(runner)
        return server

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()


def ready_model(server: Server, model: str = "m", version: str = "1") -> None:
    server.answers["GET /v2/health/ready"] = (200, b"")
    server.answers[f"GET /{model_ready_path(model, version)}"] = (200, b"")


ERROR_BODY = json.dumps({"error": "no such model"}).encode()


@pytest.mark.parametrize("status", [200, 400, 404, 500])
async def test_ready_calls_mean_ready_only_on_200(serve: Serve, status: int) -> None:
    server = await serve()
    server.answers["GET /v2/health/ready"] = (status, ERROR_BODY if status != 200 else b"")
    server.answers["GET /v2/models/m/versions/1/ready"] = (status, b"")
    server.answers["GET /v2/models/m/ready"] = (status, ERROR_BODY if status != 200 else b"")
    async with new_session() as session:
        client = new_client(server.endpoint, timeout=2, session=session)
        assert await client.is_server_ready() is (status == 200)
        assert await client.is_model_ready("m", "1") is (status == 200)
        assert await client.is_model_ready("m") is (status == 200)
    assert [s.raw_path for s in server.seen] == [
        "/v2/health/ready",
        "/v2/models/m/versions/1/ready",
        "/v2/models/m/ready",
    ]


async def test_index_on_200_is_the_decoded_body(serve: Serve) -> None:
    server = await serve()
    index = [{"name": "m", "version": "1", "state": "READY"}]
    server.answers["POST /v2/repository/index"] = (200, json.dumps(index).encode())
    async with new_session() as session:
        client = new_client(server.endpoint, timeout=2, session=session)
        assert await client.get_model_repository_index() == index
    # tritonclient's request: an empty POST.
    [seen] = server.seen
    assert (seen.method, seen.body, seen.headers.get("Content-Length")) == ("POST", b"", "0")


@pytest.mark.parametrize("status", [400, 403, 404, 500])
async def test_a_refused_index_raises_the_servers_error(serve: Serve, status: int) -> None:
    server = await serve()
    server.answers["POST /v2/repository/index"] = (status, ERROR_BODY)
    async with new_session() as session:
        client = new_client(server.endpoint, timeout=2, session=session)
        with pytest.raises(KServeError) as info:
            await client.get_model_repository_index()
    assert (str(info.value), info.value.status) == (f"[{status}] no such model", status)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "restricted"}', "[403] restricted"),
        (b'{"error": 7}', "[403] 7"),
        (b"", f"[403] {EMPTY_ERROR_BODY}"),
        (b"<html>Forbidden</html>", None),  # not JSON
        (b'{"detail": "x"}', None),  # JSON without "error"
        (b'["error"]', None),  # JSON, not an object
    ],
)
def test_error_from_body(body: bytes, message: str | None) -> None:
    error = error_from_body(403, body)
    assert error.status == 403
    if message is not None:
        assert str(error) == message
    else:  # tritonclient's wording for a body it cannot read, the body quoted after it
        assert str(error).startswith(f"[403] {DECODE_ERROR}")
        assert str(error).endswith(f"\nresponse: {body.decode()}")


def test_an_undecodable_body_is_reported_without_it() -> None:
    assert str(error_from_body(500, b"\xff\xfe")).endswith("\nresponse: None")


@pytest.mark.parametrize(
    ("model", "version", "path"),
    [
        ("m", "", "v2/models/m/ready"),
        ("m", "3", "v2/models/m/versions/3/ready"),
        ("my model", "", "v2/models/my%20model/ready"),
        ("résumé", "1", "v2/models/r%C3%A9sum%C3%A9/versions/1/ready"),
        ("a?b#c", "", "v2/models/a%3Fb%23c/ready"),
        ("100%", "", "v2/models/100%25/ready"),
    ],
)
def test_model_ready_path_quotes_the_name(model: str, version: str, path: str) -> None:
    assert model_ready_path(model, version) == path


@pytest.mark.parametrize("model", ["my model", "résumé", "a?b#c", "100%"])
async def test_quoted_names_reach_the_server_as_quoted(serve: Serve, model: str) -> None:
    server = await serve()
    ready_model(server, model, "2")
    result = await probe_endpoint(server.endpoint, model, "2", timeout=2)
    assert result.reason is R.MODEL_READY, result
    # aiohttp sends the quoted path as it is: not quoted twice, not unquoted.
    assert server.seen[1].raw_path == "/" + model_ready_path(model, "2")


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("10.0.0.7:8000", "http://10.0.0.7:8000"),
        ("10.0.0.7:8000/", "http://10.0.0.7:8000"),
        ("http://pod.ns.svc:8000", "http://pod.ns.svc:8000"),
        ("http://pod.ns.svc:8000//", "http://pod.ns.svc:8000"),
        ("https://pod.ns.svc:8443", "https://pod.ns.svc:8443"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
    ],
)
def test_base_url(endpoint: str, url: str) -> None:
    assert base_url(endpoint) == url


async def test_headers_go_with_every_call(serve: Serve) -> None:
    server = await serve()
    server.answers["GET /v2/health/ready"] = (200, b"")
    server.answers["POST /v2/repository/index"] = (200, b"[]")
    result = await probe_endpoint(
        server.endpoint, "m", "1", timeout=2, headers={ACCESS_TOKEN_HEADER: "s3cret"}
    )
    assert result.reason is R.MODEL_UNAVAILABLE
    assert [(s.method, s.headers.get(ACCESS_TOKEN_HEADER)) for s in server.seen] == [
        ("GET", "s3cret"),
        ("GET", "s3cret"),
        ("POST", "s3cret"),
    ]


async def test_transfer_encoding_is_refused_before_sending(serve: Serve) -> None:
    server = await serve()
    async with new_session() as session:
        client = KServeClient(server.endpoint, session, timeout=aiohttp.ClientTimeout(total=2))
        with pytest.raises(KServeError, match="Transfer-Encoding"):
            await client.is_server_ready(headers={"Transfer-Encoding": "chunked"})
    assert server.seen == []


async def test_a_client_bound_to_a_session_leaves_it_open(serve: Serve) -> None:
    server = await serve()
    ready_model(server)
    async with new_session() as session:
        await new_client(server.endpoint, timeout=2, session=session).close()
        assert not session.closed
        own = new_client(server.endpoint, timeout=2)
        assert await own.is_server_ready()
        await own.close()
        assert await new_client(server.endpoint, timeout=2, session=session).is_server_ready()


async def test_many_endpoints_share_one_session_and_its_kept_connections(serve: Serve) -> None:
    servers = [await serve() for _ in range(3)]
    for server in servers:
        ready_model(server)
    pool = ProbePool(timeout=2, ready_interval=0)  # every probe is sent
    try:
        targets = [ProbeTarget(s.endpoint) for s in servers]
        for _ in range(4):
            results = await pool.probe(targets, "m", "1")
            assert [r.reason for r in results] == [R.MODEL_READY] * 3
        assert (pool.stats.sent, pool.stats.clients_opened) == (12, 3)
        # Four rounds, two requests each: every server saw them over a single connection.
        assert [(len(s.seen), s.connections) for s in servers] == [(8, 1)] * 3
    finally:
        await pool.close()
    assert pool.stats.clients_closed == 3


async def test_connections_to_one_server_are_bounded(serve: Serve) -> None:
    server = await serve()
    ready_model(server)
    server.delay_s = 0.05  # overlapping requests need connections of their own
    pool = ProbePool(timeout=5, concurrency=16, rate=1000, ready_interval=0)
    try:
        targets = [ProbeTarget(server.endpoint, str(i)) for i in range(16)]
        results = await pool.probe(targets, "m", "1")
        assert [r.reason for r in results] == [R.MODEL_READY] * 16
    finally:
        await pool.close()
    assert server.max_in_flight <= CONNECTIONS_PER_HOST
    assert 1 < server.connections <= CONNECTIONS_PER_HOST


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), "kserve")


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


async def test_https_endpoints_speak_verified_tls(
    serve: Serve, certificate: tuple[Path, Path]
) -> None:
    server = await serve(server_tls(certificate))
    ready_model(server)
    # The certificate is nobody's CA here: the handshake happens, and verification refuses.
    refused = await probe_endpoint(f"https://{server.endpoint}", "m", "1", timeout=5)
    assert refused.reason is R.SERVER_UNREACHABLE
    assert "CERTIFICATE_VERIFY_FAILED" in refused.message
    assert server.seen == []

    # Trusted through the system's CA file (read when aiohttp is imported, hence a
    # fresh interpreter), the same probe is answered over TLS.
    code = (
        "import asyncio, sys\n"
        "from gantry.health import probe_endpoint\n"
        "r = asyncio.run(probe_endpoint(sys.argv[1], 'm', '1', timeout=10))\n"
        "print(r.reason.value, r.message)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        f"https://{server.endpoint}",
        env={"SSL_CERT_FILE": str(certificate[0]), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=50)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "ModelReady model m version 1 ready"
    assert [s.raw_path for s in server.seen] == [
        "/v2/health/ready",
        "/v2/models/m/versions/1/ready",
    ]
