"""Model-health probes of KServe v2 endpoints (Triton), with tritonclient.

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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast

import aiohttp
import tritonclient.http.aio as triton_http
from tritonclient.utils import InferenceServerException

__all__ = [
    "ACCESS_TOKEN_HEADER",
    "MAX_MESSAGE_CHARS",
    "SEVERITY",
    "Client",
    "ModelProbe",
    "ProbeReason",
    "new_client",
    "probe_endpoint",
    "probe_endpoints",
]

#: Header that opens Triton's restricted endpoints under PyTriton / the Gantry runtime.
ACCESS_TOKEN_HEADER = "triton-access-token"
#: Probe messages are bounded; Triton's load failures can carry whole tracebacks.
MAX_MESSAGE_CHARS = 2000


class Client(Protocol):
    """The slice of ``tritonclient.http.aio.InferenceServerClient`` used here.

    tritonclient ships no annotations (and its star re-exports confuse type
    checkers about which class this is), so this names the calls we rely on.
    """

    async def is_server_ready(self, headers: dict[str, str] | None = None) -> bool: ...

    async def is_model_ready(
        self, model_name: str, model_version: str = "", headers: dict[str, str] | None = None
    ) -> bool: ...

    async def get_model_repository_index(self, headers: dict[str, str] | None = None) -> Any: ...

    async def close(self) -> None: ...


_new_client = cast(Callable[..., Client], triton_http.InferenceServerClient)

# What the network and tritonclient raise for servers that are down, slow or odd.
_NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, InferenceServerException, ValueError)


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


def _split(endpoint: str) -> tuple[str, bool]:
    """tritonclient wants ``host:port`` and a separate TLS flag."""
    for scheme, ssl in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :].rstrip("/"), ssl
    return endpoint.rstrip("/"), False


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


def new_client(endpoint: str, *, timeout: float) -> Client:
    """A tritonclient HTTP client for ``endpoint`` (its own aiohttp session: close it)."""
    url, ssl = _split(endpoint)
    # aiohttp's own limit is set past the probe's so that expiry is always the probe's,
    # and reported the same way whichever request was slow.
    return _new_client(url, conn_timeout=timeout + 1.0, ssl=ssl)


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
        client: a kept client of :func:`new_client` for this endpoint (left open);
            without one, a client is made for this probe and closed after it.
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

    async def one(endpoint: str) -> ModelProbe:
        async with gate:
            return await probe_endpoint(endpoint, model, version, timeout=timeout, headers=headers)

    return list(await asyncio.gather(*(one(e) for e in endpoints)))
