"""The fault proxy in front of a tiny local HTTPS server that plays the API server.

The upstream asks for a client certificate and records who called (certificate subject,
Authorization header, User-Agent) and what (method, path, body), so every test sees both
ends: what the client got and whether the request reached the server at all.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from e2e.faults import Fault, FaultConfig, FaultProxy
from e2e.faults.certs import self_signed
from gantry.kube.config import ClusterConfig, from_kubeconfig

WATCH_LINES = 100
PATH = "/apis/apps/v1/namespaces/ns/deployments"


@dataclass
class Upstream:
    """What the fake API server saw."""

    url: str
    ca: Path
    seen: list[dict[str, Any]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [s["path"] for s in self.seen]


UPSTREAM = web.AppKey("upstream", Upstream)


async def _handler(request: web.Request) -> web.StreamResponse:
    upstream = request.app[UPSTREAM]
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    subject = dict(x[0] for x in (peer or {}).get("subject", ()))
    upstream.seen.append(
        {
            "method": request.method,
            "path": request.path_qs,
            "body": await request.read(),
            "cn": subject.get("commonName"),
            "authorization": request.headers.get("Authorization"),
            "user_agent": request.headers.get("User-Agent"),
        }
    )
    if request.query.get("watch") == "true":
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(WATCH_LINES):  # bounded: a finite stream, one event each 10 ms
            await response.write(b'{"type":"ADDED","object":{"n":%d}}\n' % i)
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response
    return web.json_response({"kind": "Deployment", "method": request.method}, status=200)


# The server runs on the test's own loop (the default fixture loop is the session's).
@pytest_asyncio.fixture(loop_scope="function")
async def upstream(tmp_path: Path) -> AsyncIterator[Upstream]:
    server_cert, server_key = self_signed(tmp_path / "upstream", "upstream")
    client_cert, _ = self_signed(tmp_path / "client", "gantry-admin")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(server_cert, server_key)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # a token-only client is served too
    ctx.load_verify_locations(client_cert)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _handler)
    up = Upstream("", server_cert)
    app[UPSTREAM] = up
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    up.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield up
    finally:
        await runner.cleanup()


def _kubeconfig(tmp_path: Path, upstream: Upstream, *, token: str | None = None) -> Path:
    """A kubeconfig for the upstream, as ``e2e.cluster`` writes one: client certificate
    inline, or a bearer token."""
    user: dict[str, str]
    if token is None:
        client = tmp_path / "client"
        user = {
            "client-certificate": str(client / "gantry-admin.crt"),
            "client-key": str(client / "gantry-admin.key"),
        }
    else:
        user = {"token": token}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "up",
                "cluster": {"server": upstream.url, "certificate-authority": str(upstream.ca)},
            }
        ],
        "users": [{"name": "me", "user": user}],
        "contexts": [{"name": "up", "context": {"cluster": "up", "user": "me", "namespace": "ns"}}],
        "current-context": "up",
    }
    path = tmp_path / ("token.kubeconfig" if token else "cert.kubeconfig")
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Rig:
    proxy: FaultProxy
    client: httpx.AsyncClient
    upstream: Upstream


def _rig(
    tmp_path: Path, upstream: Upstream, config: FaultConfig, *, token: str | None = None
) -> tuple[FaultProxy, ClusterConfig]:
    original = _kubeconfig(tmp_path, upstream, token=token)
    proxy = FaultProxy(from_kubeconfig(original), tmp_path / "proxy", config).start()
    proxied = from_kubeconfig(proxy.write_kubeconfig(original, tmp_path / "proxied.kubeconfig"))
    return proxy, proxied


@pytest.fixture
def make_rig(tmp_path: Path, upstream: Upstream) -> Iterator[Any]:
    made: list[Rig] = []

    async def make(config: FaultConfig, *, token: str | None = None) -> Rig:
        proxy, proxied = _rig(tmp_path, upstream, config, token=token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(
            base_url=proxied.server, verify=proxied.ssl_context(), headers=headers, timeout=20
        )
        made.append(Rig(proxy, client, upstream))
        return made[-1]

    yield make
    for rig in made:
        rig.proxy.stop()


def only(fault: Fault, **bounds: Any) -> FaultConfig:
    return FaultConfig(rates={fault: 1.0}, seed=3, **bounds)


async def test_without_faults_requests_pass_with_the_original_credentials(make_rig: Any) -> None:
    rig = await make_rig(FaultConfig())
    got = await rig.client.get(PATH, headers={"User-Agent": "gantry/0.1 (replica-a)"})
    posted = await rig.client.post(PATH, json={"metadata": {"name": "d"}})
    assert (got.status_code, got.json()["method"]) == (200, "GET")
    assert (posted.status_code, posted.json()["method"]) == (200, "POST")
    first, second = rig.upstream.seen
    # The proxy presents the kubeconfig's client certificate upstream, and passes the
    # client's User-Agent on, so the API server's audit log still tells replicas apart.
    assert first["cn"] == "gantry-admin"
    assert first["user_agent"] == "gantry/0.1 (replica-a)"
    assert second["body"] == b'{"metadata":{"name":"d"}}'
    assert rig.proxy.stats().requests == {"list": 1, "create": 1}
    assert rig.proxy.stats().faults == {}


async def test_a_bearer_token_reaches_the_server_unchanged(make_rig: Any) -> None:
    rig = await make_rig(FaultConfig(), token="replica-b-token")
    assert (await rig.client.get(f"{PATH}/d")).status_code == 200
    assert rig.upstream.seen[0]["authorization"] == "Bearer replica-b-token"
    assert rig.upstream.seen[0]["cn"] is None


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [
        (Fault.HTTP_429, 429, "TooManyRequests"),
        (Fault.HTTP_500, 500, "InternalError"),
        (Fault.HTTP_503, 503, "ServiceUnavailable"),
        (Fault.HTTP_409, 409, "Conflict"),
    ],
)
async def test_a_status_fault_answers_in_place_of_the_server(
    make_rig: Any, fault: Fault, code: int, reason: str
) -> None:
    rig = await make_rig(only(fault, retry_after_s=2))
    answer = await rig.client.patch(f"{PATH}/d", content=b"{}")
    assert answer.status_code == code
    assert answer.json()["reason"] == reason
    assert answer.json()["kind"] == "Status"
    assert answer.headers.get("Retry-After") == ("2" if code == 429 else None)
    assert rig.upstream.seen == []
    assert rig.proxy.stats().faults == {fault.value: 1}


async def test_a_conflict_is_only_for_writes(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.HTTP_409))
    assert (await rig.client.get(PATH)).status_code == 200
    assert (await rig.client.delete(f"{PATH}/d")).status_code == 409
    assert rig.upstream.paths() == [PATH]
    assert rig.proxy.stats().faults == {"http_409": 1}


async def test_a_reset_drops_the_request_before_the_server(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.RESET))
    with pytest.raises(httpx.TransportError):
        await rig.client.post(PATH, content=b"{}")
    assert rig.upstream.seen == []
    assert rig.proxy.stats().faults == {"reset": 1}


async def test_a_reset_after_forwarding_loses_the_answer_to_a_write(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.RESET_AFTER))
    with pytest.raises(httpx.TransportError):
        await rig.client.post(PATH, content=b'{"n":1}')
    # The server acted: the client must find out by reading, not by retrying blindly.
    assert [s["body"] for s in rig.upstream.seen] == [b'{"n":1}']
    # Reads are never reset after the fact: nothing would be learnt.
    assert (await rig.client.get(PATH)).status_code == 200


async def test_a_delayed_answer_still_arrives(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.DELAY, max_delay_s=0.2))
    answers = [await rig.client.get(f"{PATH}/d{i}") for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert rig.proxy.stats().faults == {"delay": 3}


async def _watch_lines(client: httpx.AsyncClient) -> list[bytes]:
    lines = []
    async with client.stream("GET", PATH, params={"watch": "true"}) as stream:
        async for line in stream.aiter_lines():
            lines.append(line.encode())
    return lines


async def test_a_watch_is_cut_after_a_few_events(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.WATCH_CUT, watch_max_events=3, watch_max_s=60))
    cuts = [await _watch_lines(rig.client) for _ in range(4)]
    # Whole events only, 1 to 3 of them, each stream ended cleanly (no transport error).
    assert all(1 <= len(lines) <= 3 for lines in cuts), [len(c) for c in cuts]
    assert all(line.startswith(b'{"type":"ADDED"') for lines in cuts for line in lines)
    assert rig.proxy.stats().faults == {"watch_cut": 4}
    assert rig.proxy.stats().requests == {"watch": 4}


async def test_a_watch_is_cut_after_some_seconds(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.WATCH_CUT, watch_max_events=10_000, watch_max_s=0.5))
    lines = await _watch_lines(rig.client)
    # The server would send 100 events over 1 s; the cut comes within half a second.
    assert len(lines) < WATCH_LINES


async def test_an_uncut_watch_streams_to_its_end(make_rig: Any) -> None:
    rig = await make_rig(FaultConfig())
    assert len(await _watch_lines(rig.client)) == WATCH_LINES


async def test_faults_switch_off_and_on_at_runtime(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.HTTP_503))
    assert (await rig.client.get(PATH)).status_code == 503
    rig.proxy.enabled = False
    assert (await rig.client.get(PATH)).status_code == 200
    rig.proxy.enabled = True
    assert (await rig.client.get(PATH)).status_code == 503
    stats = rig.proxy.stats()
    assert (stats.requests, stats.faults) == ({"list": 3}, {"http_503": 2})


async def test_faults_stop_at_their_bound(make_rig: Any) -> None:
    rig = await make_rig(only(Fault.HTTP_500, max_faults=2))
    codes = [(await rig.client.get(PATH)).status_code for _ in range(4)]
    assert codes == [500, 500, 200, 200]
    assert rig.proxy.stats().total_faults == 2
    assert rig.proxy.stats().total_requests == 4


async def test_one_seed_gives_one_sequence_of_faults(make_rig: Any) -> None:
    config = FaultConfig(rates={Fault.HTTP_500: 0.3, Fault.HTTP_503: 0.3}, seed=11)

    async def codes() -> list[int]:
        rig = await make_rig(config)
        return [(await rig.client.get(f"{PATH}/d")).status_code for _ in range(20)]

    first, second = await codes(), await codes()
    assert first == second
    assert {500, 503, 200} == set(first)
