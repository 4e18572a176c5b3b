"""Model-health probes of KServe v2 endpoints (Triton), over the operator's aiohttp.

One probe asks a server three questions, stopping as soon as it knows enough:

1. ``GET /v2/health/ready``: does it answer, and is it ready?
2. ``GET /v2/models/{name}[/versions/{v}]/ready``: is the model version ready?
3. only when it is not: ``POST /v2/repository/index``, whose ``state`` and
   ``reason`` per model carry Triton's own load-failure message.

Probes never raise for anything the network or the server does: every outcome
is a :class:`ModelProbe` with a stable :class:`ProbeReason`. Each probe is
bounded by ``timeout`` as a whole, and :func:`probe_endpoints` bounds how many
run at once, so probing a hundred pods cannot open a hundred connections.

Triton may restrict the repository index (PyTriton does by default; the Gantry
runtime opens it with ``GANTRY_TRITON_ACCESS_TOKEN``): pass the header with
``headers``. Without it a failed model is still reported, as
``ModelUnavailable`` with the index error in the message.

The three calls are made by :class:`KServeClient`, not tritonclient: its aio client
pulls numpy, gevent, protobuf and rapidjson into the operator (22 MiB of resident
memory for three requests) and opens an ``aiohttp.ClientSession`` per endpoint.
:class:`KServeClient` keeps tritonclient's answers (which statuses mean ready, how
an error body becomes the message, how a model name is quoted) and binds many
endpoints to one session made by :func:`new_session`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

__all__ = [
    "ACCESS_TOKEN_HEADER",
    "MAX_MESSAGE_CHARS",
    "SEVERITY",
    "Client",
    "KServeClient",
    "KServeError",
    "ModelProbe",
    "ProbeReason",
    "base_url",
    "error_from_body",
    "model_ready_path",
    "new_client",
    "new_session",
    "probe_endpoint",
    "probe_endpoints",
]

#: Header that opens Triton's restricted endpoints under PyTriton / the Gantry runtime.
ACCESS_TOKEN_HEADER = "triton-access-token"
#: Probe messages are bounded; Triton's load failures can carry whole tracebacks.
MAX_MESSAGE_CHARS = 2000
#: Kept-alive connections to one server at most: probes of one pod are few and short.
CONNECTIONS_PER_HOST = 4
#: tritonclient's words for a non-200 answer without a body.
EMPTY_ERROR_BODY = "client received an empty response from the server."


class Client(Protocol):
    """The three KServe v2 calls a probe makes (tritonclient's signatures)."""

    async def is_server_ready(self, headers: dict[str, str] | None = None) -> bool: ...

    async def is_model_ready(
        self, model_name: str, model_version: str = "", headers: dict[str, str] | None = None
    ) -> bool: ...

    async def get_model_repository_index(self, headers: dict[str, str] | None = None) -> Any: ...

    async def close(self) -> None: ...


class KServeError(Exception):
    """A KServe v2 call was refused: a non-200 answer, or a header that cannot be sent.

    Reads as tritonclient's ``InferenceServerException``: ``[status] message``, the
    message being the server's own ``{"error": ...}``.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message if self.status is None else f"[{self.status}] {self.message}"


# What the network and the server raise for servers that are down, slow or odd
# (ValueError: an unparsable URL or JSON body).
_NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, KServeError, ValueError)


def error_from_body(status: int, body: bytes) -> KServeError:
    """The error a non-200 answer carries, worded as tritonclient words it."""
    text = None
    try:
        text = body.decode("utf-8")
        decoded = json.loads(text) if text else {"error": EMPTY_ERROR_BODY}
        return KServeError(str(decoded["error"]), status)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # not JSON, not an object
        return KServeError(
            "an exception occurred in the client while decoding the response: "
            f"{exc}\nresponse: {text}",
            status,
        )


def base_url(endpoint: str) -> str:
    """``scheme://host:port`` of an endpoint given as ``host:port`` or with a scheme."""
    for scheme in ("https://", "http://"):
        if endpoint.startswith(scheme):
            return scheme + endpoint[len(scheme) :].rstrip("/")
    return "http://" + endpoint.rstrip("/")


def model_ready_path(model: str, version: str = "") -> str:
    """The ready path of a model (version), its name quoted as tritonclient quotes it.

    tritonclient sends the version unquoted; it is quoted here too, which changes
    nothing for the digits Triton's versions are and keeps anything else in the path.
    """
    name = quote(model)
    return (
        f"v2/models/{name}/versions/{quote(version)}/ready"
        if version
        else f"v2/models/{name}/ready"
    )


def _request_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    if not headers:
        return None
    # tritonclient refuses it: the body is sent whole, never chunk-encoded by hand.
    if any(key.lower() == "transfer-encoding" for key in headers):
        raise KServeError("Unsupported HTTP header: 'Transfer-Encoding' is not supported")
    return {str(key): str(value) for key, value in headers.items()}


class KServeClient:
    """The KServe v2 calls of a probe, to one endpoint, over a session it may share.

    Args:
        endpoint: ``host:port``, ``http://host:port`` or ``https://host:port`` (TLS,
            verified against the system's CAs).
        session: the session to send through.
        timeout: aiohttp's limit per request.
        owns_session: :meth:`close` closes the session (a probe's temporary one).
    """

    def __init__(
        self,
        endpoint: str,
        session: aiohttp.ClientSession,
        *,
        timeout: aiohttp.ClientTimeout,
        owns_session: bool = False,
    ) -> None:
        self.url = base_url(endpoint)
        self._session = session
        self._timeout = timeout
        self._owns_session = owns_session

    async def is_server_ready(self, headers: dict[str, str] | None = None) -> bool:
        """Whether ``/v2/health/ready`` answers 200 (any other status is "not ready")."""
        status, _ = await self._send("GET", "v2/health/ready", headers)
        return status == 200

    async def is_model_ready(
        self, model_name: str, model_version: str = "", headers: dict[str, str] | None = None
    ) -> bool:
        """Whether the model (version) ready endpoint answers 200."""
        status, _ = await self._send("GET", model_ready_path(model_name, model_version), headers)
        return status == 200

    async def get_model_repository_index(self, headers: dict[str, str] | None = None) -> Any:
        """The decoded repository index; raises :class:`KServeError` on a non-200."""
        status, body = await self._send("POST", "v2/repository/index", headers, data=b"")
        if status != 200:
            raise error_from_body(status, body)
        return json.loads(body)

    async def close(self) -> None:
        """Close the session if it is this client's own; a shared one stays open."""
        if self._owns_session:
            await self._session.close()

    async def _send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None,
        data: bytes | None = None,
    ) -> tuple[int, bytes]:
        async with self._session.request(
            method,
            f"{self.url}/{path}",
            headers=_request_headers(headers),
            data=data,
            timeout=self._timeout,
        ) as response:
            # Read to the end even when only the status counts: an unread body closes
            # the connection instead of returning it to the pool for the next probe.
            return response.status, await response.read()


def new_session() -> aiohttp.ClientSession:
    """A session for probes (call it inside the running loop it will be used on).

    Its connector keeps a few connections per server alive between probes; it sets no
    total bound, since callers bound the probes in flight themselves.
    """
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=CONNECTIONS_PER_HOST)
    return aiohttp.ClientSession(connector=connector)


class ProbeReason(StrEnum):
    """Stable reason codes, from best to worst (see :data:`SEVERITY`)."""

    MODEL_READY = "ModelReady"
    MODEL_LOADING = "ModelLoading"
    SERVER_NOT_READY = "ServerNotReady"
    MODEL_UNAVAILABLE = "ModelUnavailable"
    SERVER_UNREACHABLE = "ServerUnreachable"
    MODEL_LOAD_FAILED = "ModelLoadFailed"
    NO_ENDPOINTS = "NoEndpoints"


#: Severity by reason: a load failure needs a human, so it outranks transient states.
SEVERITY: Mapping[ProbeReason, int] = {reason: rank for rank, reason in enumerate(ProbeReason)}


@dataclass(frozen=True)
class ModelProbe:
    """What one endpoint said about one model version.

    Attributes:
        endpoint: the endpoint as given (``host:port`` or ``http(s)://host:port``).
        server_ready: ``/v2/health/ready`` answered 200.
        model_ready: the model (version) ready endpoint answered 200.
        reason: the stable classification.
        message: for humans; Triton's own load-failure reason when there is one.
    """

    endpoint: str
    server_ready: bool
    model_ready: bool
    reason: ProbeReason
    message: str


def _bounded(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def _error(exc: BaseException) -> str:
    detail = str(exc) or "no detail"
    return f"{type(exc).__name__}: {detail}"


@dataclass
class _Progress:
    """What a probe learned before its deadline, so a timeout keeps it."""

    answered: bool = False
    server_ready: bool = False


def _index_entry(index: Any, model: str, version: str | None) -> dict[str, str] | None:
    if not isinstance(index, list):
        return None
    entries = [
        {k: str(v) for k, v in e.items()}
        for e in index
        if isinstance(e, dict) and e.get("name") == model
    ]
    if version is not None:
        entries = [e for e in entries if e.get("version", version) == version]
    # Prefer an entry that explains a failure over one that does not.
    entries.sort(key=lambda e: e.get("state") != "UNAVAILABLE" or not e.get("reason"))
    return entries[0] if entries else None


def _classify(
    endpoint: str,
    server_ready: bool,
    model: str,
    entry: dict[str, str] | None,
    index_error: str | None,
) -> ModelProbe:
    def probe(reason: ProbeReason, message: str) -> ModelProbe:
        return ModelProbe(endpoint, server_ready, False, reason, _bounded(message))

    if entry is not None:
        state, why = entry.get("state", ""), entry.get("reason", "")
        label = f"model {model} version {entry.get('version', '?')}"
        if state == "UNAVAILABLE" and why and why != "unloaded":
            # Python-backend failures end with the stub's stack ("\n\nAt:\n  file(line)...");
            # it points into Triton's model directory, not at anything a user can act on.
            why = why.split("\n\nAt:\n", 1)[0]
            return probe(ProbeReason.MODEL_LOAD_FAILED, f"Triton failed to load {label}: {why}")
        if state in ("LOADING", "READY"):  # READY: it became ready after we asked
            return probe(ProbeReason.MODEL_LOADING, f"{label} is loading")
        return probe(ProbeReason.MODEL_UNAVAILABLE, f"{label} is {state.lower() or 'unknown'}")
    if not server_ready:
        detail = f"; repository index: {index_error}" if index_error else ""
        return probe(ProbeReason.SERVER_NOT_READY, f"server not ready{detail}")
    if index_error:
        return probe(
            ProbeReason.MODEL_UNAVAILABLE,
            f"model {model} not ready; repository index unreadable ({index_error})",
        )
    return probe(ProbeReason.MODEL_UNAVAILABLE, f"model {model} is not in the repository")


async def _probe(
    client: Client,
    endpoint: str,
    model: str,
    version: str | None,
    headers: Mapping[str, str] | None,
    progress: _Progress,
) -> ModelProbe:
    hdrs = dict(headers) if headers else None
    try:
        server_ready = bool(await client.is_server_ready(headers=hdrs))
    except _NETWORK_ERRORS as exc:
        return ModelProbe(endpoint, False, False, ProbeReason.SERVER_UNREACHABLE, _error(exc))
    progress.answered, progress.server_ready = True, server_ready
    try:
        model_ready = bool(await client.is_model_ready(model, version or "", headers=hdrs))
    except _NETWORK_ERRORS as exc:
        reason = ProbeReason.MODEL_UNAVAILABLE
        return ModelProbe(endpoint, server_ready, False, reason, _bounded(_error(exc)))
    if model_ready:
        label = f"model {model}" + (f" version {version}" if version else "")
        return ModelProbe(endpoint, server_ready, True, ProbeReason.MODEL_READY, f"{label} ready")
    entry, index_error = None, None
    try:
        index = await client.get_model_repository_index(headers=hdrs)
        entry = _index_entry(index, model, version)
    except _NETWORK_ERRORS as exc:
        index_error = _error(exc)
    return _classify(endpoint, server_ready, model, entry, index_error)


def new_client(
    endpoint: str, *, timeout: float, session: aiohttp.ClientSession | None = None
) -> Client:
    """A client for ``endpoint`` bound to ``session``, or to a session of its own.

    Close it either way: closing a client bound to a shared session leaves the session
    (and its kept connections) to its owner.
    """
    # aiohttp's own limit is set past the probe's so that expiry is always the probe's,
    # and reported the same way whichever request was slow.
    limit = aiohttp.ClientTimeout(total=timeout + 1.0)
    if session is None:
        return KServeClient(endpoint, new_session(), timeout=limit, owns_session=True)
    return KServeClient(endpoint, session, timeout=limit)


async def probe_endpoint(
    endpoint: str,
    model: str,
    version: str | None,
    *,
    # The caller's contract names a per-probe timeout; it is applied inside with
    # asyncio.timeout so that expiry yields a typed result, not a cancellation.
    timeout: float,  # noqa: ASYNC109
    headers: Mapping[str, str] | None = None,
    client: Client | None = None,
) -> ModelProbe:
    """Probe one endpoint for one model version; never raises for network errors.

    Args:
        endpoint: ``host:port``, ``http://host:port`` or ``https://host:port``.
        model: the model name.
        version: the model version, or ``None`` for Triton's default policy.
        timeout: seconds for the whole probe (all its requests together).
        headers: extra headers, e.g. ``{ACCESS_TOKEN_HEADER: token}``.
        client: a client of :func:`new_client` for this endpoint (left open); without
            one, a client with a session of its own is made and closed after the probe.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    progress = _Progress()
    try:
        async with asyncio.timeout(timeout):
            own = client is None
            used = new_client(endpoint, timeout=timeout) if client is None else client
            try:
                return await _probe(used, endpoint, model, version, headers, progress)
            finally:
                if own:
                    await used.close()
    except TimeoutError:
        message = f"no complete answer within {timeout:g}s"
        if not progress.answered:
            return ModelProbe(endpoint, False, False, ProbeReason.SERVER_UNREACHABLE, message)
        ready = progress.server_ready
        return ModelProbe(endpoint, ready, False, ProbeReason.MODEL_UNAVAILABLE, message)


async def probe_endpoints(
    endpoints: Sequence[str],
    model: str,
    version: str | None,
    *,
    timeout: float,  # noqa: ASYNC109 -- per probe, see probe_endpoint
    concurrency: int,
    headers: Mapping[str, str] | None = None,
) -> list[ModelProbe]:
    """Probe many endpoints, at most ``concurrency`` at a time, in input order.

    Total time is bounded by about ``ceil(len(endpoints) / concurrency) * timeout``.

    Args:
        endpoints: endpoints as accepted by :func:`probe_endpoint`.
        model: the model name.
        version: the model version, or ``None``.
        timeout: seconds per probe.
        concurrency: the most probes in flight at once (>= 1).
        headers: extra headers sent with every request.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    gate = asyncio.Semaphore(concurrency)
    async with new_session() as session:  # one for the batch: an endpoint listed twice reuses

        async def one(endpoint: str) -> ModelProbe:
            client = new_client(endpoint, timeout=timeout, session=session)
            async with gate:
                return await probe_endpoint(
                    endpoint, model, version, timeout=timeout, headers=headers, client=client
                )

        return list(await asyncio.gather(*(one(e) for e in endpoints)))
