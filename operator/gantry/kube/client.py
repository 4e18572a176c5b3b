"""The one place that talks to the Kubernetes API server.

A thin async client over ``kubernetes.aio`` (aiohttp): server-side apply, get, list,
watch, delete and the scale subresource, on plain-dict manifests. Requests go through
``ApiClient.call_api`` unread (``_preload_content=False``) and their bodies are parsed
with ``json.loads``: no typed models, which cost more CPU than the request itself on a
LIST (``bench/client_bench.py``). Every call is bounded by a timeout; API errors
surface as :class:`ApiError` with the server's status and message, and a failed
transport (reset, refused, timed out) as a retryable 503.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
from kubernetes.aio import client as aio

from gantry import __version__
from gantry.kube.config import ClusterConfig
from gantry.kube.resources import Resource, resource_of

Manifest = dict[str, Any]
Items = list[Manifest]  # a name of its own: inside KubeClient, `list` is a method

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"


class ApiError(Exception):
    """The API server refused a request."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def invalid(self) -> bool:
        return self.status in (400, 422)

    @property
    def retryable(self) -> bool:
        return self.status in (409, 429) or self.status >= 500


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: Manifest


class NotLeaderError(Exception):
    """A write was refused locally: this replica does not hold the leader Lease now."""


def default_identity() -> str:
    """This replica's name: the pod's (downward API) or host-pid, unique per process."""
    return os.environ.get("GANTRY_POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


# The generated client is untyped; typed here as Any once, so strict mypy holds elsewhere.
_Configuration: Any = aio.Configuration
_ApiClient: Any = aio.ApiClient

#: Connections the request pool keeps open (and alive): closing idle ones while requests
#: wait cost a TLS handshake per request under load (measured by the operator bench).
REQUEST_POOL = 32

# A reset, a refused or timed-out connection, a server that hung up: the server's answer
# is unknown (a write may have happened).
_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def _unavailable(exc: BaseException) -> ApiError:
    # The same retryable error as a 503, so callers retry with their backoff instead of
    # treating it as a bug (the fault suites cut connections through a proxy and rely on it).
    detail = str(exc) or "no detail"
    return ApiError(503, "Unavailable", f"{type(exc).__name__}: {detail}")


def _error(status: int, http_reason: str, data: bytes) -> ApiError:
    reason, message = http_reason, data.decode("utf-8", "replace")
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    # A Kubernetes Status object; anything else (a proxy's page) is kept as text.
    if isinstance(body, dict):
        reason = str(body.get("reason", reason))
        message = str(body.get("message", message))
    return ApiError(status, reason, message)


def _api_client(config: ClusterConfig, pool: int) -> Any:
    """A ``kubernetes.aio`` ApiClient on its own connection pool (``pool`` 0: unbounded)."""
    conf = _Configuration(
        host=config.server,
        ssl_ca_cert=config.ca_file,
        verify_ssl=not config.insecure,
        connection_pool_maxsize=pool,
    )
    conf.cert_file = config.cert_file
    conf.key_file = config.key_file
    return _ApiClient(conf)


class KubeClient:
    """Async Kubernetes client for plain manifests.

    Args:
        config: Where the API server is and how to authenticate.
        field_manager: Server-side apply field manager for every write.
        timeout: Seconds per request.
        identity: Named in the User-Agent (``gantry/<version> (<identity>)``), so
            the API server's audit log tells the writes of each replica apart.
        may_write: Asked before every write; False refuses it locally with
            :class:`NotLeaderError` (a replica that lost the leader Lease).
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        field_manager: str = "gantry",
        timeout: float = 10.0,
        identity: str | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.identity = identity or default_identity()
        self._headers = {
            "Accept": "application/json",
            "User-Agent": f"gantry/{__version__} ({self.identity})",
        }
        self.may_write = may_write
        self.timeout = timeout
        self._api = _api_client(config, REQUEST_POOL)
        # Watches hold a connection each for minutes: a pool of their own keeps them
        # from starving the requests of reconciles (and reconciles from starving them).
        self._watch_api = _api_client(config, 0)
        self.field_manager = field_manager
        self.config = config

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._watch_api.close()
        await self._api.close()

    async def _headers_for(self, content_type: str) -> dict[str, str]:
        headers = {**self._headers, "Content-Type": content_type}
        if self.config.refreshes:
            # Exec-plugin and projected tokens expire; the config refreshes them when due.
            # A refresh may run an exec plugin (a subprocess): off the event loop.
            token = await asyncio.to_thread(self.config.current_token)
        else:
            token = self.config.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _url(self, path: str, params: Mapping[str, str] | None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.config.server}{path}{query}"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Manifest:
        if method != "GET" and self.may_write is not None and not self.may_write():
            raise NotLeaderError(f"{method} {path}: this replica is not the leader")
        headers = await self._headers_for(content_type)
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._api.call_api(
                    method,
                    self._url(path, params),
                    header_params=headers,
                    body=body,
                    _preload_content=False,
                )
                response: aiohttp.ClientResponse = answer.response
                try:
                    data = await response.read()
                finally:
                    response.release()
        except _TRANSPORT_ERRORS as exc:
            raise _unavailable(exc) from exc
        if not 200 <= response.status < 300:
            raise _error(response.status, response.reason or "", data)
        result: Manifest = json.loads(data) if data else {}
        return result

    async def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        """Server-side apply ``manifest`` under this client's field manager.

        ``force`` takes over fields another manager set (a user's ``kubectl edit``):
        the operator is the authority over the children it owns.
        """
        res = resource_of(manifest)
        meta = manifest["metadata"]
        params = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        return await self._request(
            "PATCH",
            res.path(meta.get("namespace"), meta["name"]),
            params=params,
            body=manifest,
            content_type=APPLY_CONTENT_TYPE,
        )

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Manifest | None:
        try:
            return await self._request("GET", res.path(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def list(
        self, res: Resource, namespace: str | None = None, *, selector: str | None = None
    ) -> list[Manifest]:
        params = {"labelSelector": selector} if selector else None
        body = await self._request("GET", res.path(namespace), params=params)
        items: list[Manifest] = body.get("items", [])
        return items

    async def list_versioned(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        fields: str | None = None,
    ) -> tuple[Items, str]:
        """The items and the list's resourceVersion, where a watch of the same list starts."""
        params = {}
        if selector:
            params["labelSelector"] = selector
        if fields:
            params["fieldSelector"] = fields
        body = await self._request("GET", res.path(namespace), params=params or None)
        items: Items = body.get("items") or []
        return items, str((body.get("metadata") or {}).get("resourceVersion") or "")

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str = "",
        timeout_seconds: int = 300,
    ) -> AsyncIterator[WatchEvent]:
        """The events of one watch request, until the server ends it.

        Bookmarks are asked for, so a quiet watch still learns the newest
        resourceVersion and can resume after the server closes it. A 410 (the
        version is too old) surfaces as :class:`ApiError`, like any other refusal,
        either as the response or as an ERROR event inside the stream. A connection
        that breaks raises ``aiohttp.ClientError`` or ``TimeoutError``: the caller
        resumes from the last version it saw.
        """
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if selector:
            params["labelSelector"] = selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        # The server closes the stream after timeoutSeconds; a read timeout a little
        # longer notices a connection that died silently.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout, sock_read=timeout_seconds + 30.0
        )
        answer = await self._watch_api.call_api(
            "GET",
            self._url(res.path(namespace), params),
            header_params=await self._headers_for("application/json"),
            _request_timeout=timeout,
            _preload_content=False,
        )
        response: aiohttp.ClientResponse = answer.response
        try:
            if not 200 <= response.status < 300:
                raise _error(response.status, response.reason or "", await response.read())
            async for line in _lines(response):
                event = json.loads(line)
                obj: Manifest = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise ApiError(
                        int(obj.get("code") or 500),
                        str(obj.get("reason") or "WatchError"),
                        str(obj.get("message") or line.decode("utf-8", "replace")),
                    )
                yield WatchEvent(str(event.get("type")), obj)
        finally:
            # Unread (the consumer stopped early): the connection is closed, not reused.
            response.release()

    async def delete(
        self, res: Resource, name: str, namespace: str | None = None, *, uid: str | None = None
    ) -> bool:
        """Delete one object; False when it was already gone.

        With ``uid``, the server deletes only that exact object (never a namesake
        created meanwhile by someone else).
        """
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self._request("DELETE", res.path(namespace, name), body=body)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def scale(
        self, res: Resource, name: str, namespace: str, replicas: int, *, manager: str
    ) -> Manifest:
        """Set replicas through the scale subresource under a separate field manager.

        A separate manager keeps ``spec.replicas`` out of the operator's applied
        configuration, so a later apply never resets what an autoscaler set.
        """
        return await self._request(
            "PATCH",
            res.path(namespace, name) + "/scale",
            params={"fieldManager": manager},
            body={"spec": {"replicas": replicas}},
            content_type=MERGE_CONTENT_TYPE,
        )

    async def patch_merge(
        self, res: Resource, name: str, namespace: str | None, patch: Manifest, *, sub: str = ""
    ) -> Manifest:
        path = res.path(namespace, name) + (f"/{sub}" if sub else "")
        return await self._request(
            "PATCH",
            path,
            params={"fieldManager": self.field_manager},
            body=patch,
            content_type=MERGE_CONTENT_TYPE,
        )

    async def create(self, manifest: Manifest) -> Manifest:
        res = resource_of(manifest)
        return await self._request(
            "POST", res.path(manifest["metadata"].get("namespace")), body=manifest
        )


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The non-blank lines of a streamed body, however long.

    Not ``readline()``: aiohttp refuses a line longer than its buffer, and one watch
    event is one line (a big object makes a long one).
    """
    pending = b""
    async for chunk in response.content.iter_any():
        pending += chunk
        if b"\n" not in chunk:
            continue
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending
