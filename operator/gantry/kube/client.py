"""The one place that talks to the Kubernetes API server.

A thin async client over httpx: server-side apply, get, list, delete and the
scale subresource, on plain-dict manifests. Every call is bounded by a timeout;
API errors surface as :class:`ApiError` with the server's status and message.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpx

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


class _TokenAuth(httpx.Auth):
    """The bearer token asked for at each request: exec-plugin and projected
    service-account tokens expire, and the config refreshes them when due."""

    def __init__(self, config: ClusterConfig) -> None:
        self._config = config

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # A refresh may run an exec plugin (a subprocess): off the event loop.
        token = await asyncio.to_thread(self._config.current_token)
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    reason, message = response.reason_phrase, response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    # A Kubernetes Status object; anything else (a proxy's page) is kept as text.
    if isinstance(body, dict):
        reason = str(body.get("reason", reason))
        message = str(body.get("message", message))
    raise ApiError(response.status_code, reason, message)


class KubeClient:
    """Async Kubernetes client for plain manifests.

    Args:
        config: Where the API server is and how to authenticate.
        field_manager: Server-side apply field manager for every write.
        timeout: Seconds per request.
        transport: An httpx transport to send requests through instead of the
            network (tests inject an ``httpx.MockTransport``).
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
        transport: httpx.AsyncBaseTransport | None = None,
        identity: str | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.identity = identity or default_identity()
        headers = {
            "Accept": "application/json",
            "User-Agent": f"gantry/{__version__} ({self.identity})",
        }
        auth: httpx.Auth | None = None
        if config.refreshes:
            auth = _TokenAuth(config)
        elif config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self.may_write = may_write
        self._http = httpx.AsyncClient(
            base_url=config.server,
            headers=headers,
            auth=auth,
            verify=config.ssl_context(),
            timeout=timeout,
            # Keep-alive equal to the pool: closing idle connections while requests wait
            # cost a TLS handshake per request under load (measured by the operator bench).
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            transport=transport,
        )
        # Watches hold a connection each for minutes: a pool of their own keeps them
        # from starving the requests of reconciles (and reconciles from starving them).
        self._watch_http = httpx.AsyncClient(
            base_url=config.server,
            headers=headers,
            auth=auth,
            verify=config.ssl_context(),
            timeout=timeout,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=8),
            transport=transport,
        )
        self.field_manager = field_manager
        self.config = config

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._watch_http.aclose()
        await self._http.aclose()

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
        content = None if body is None else json.dumps(body).encode()
        try:
            response = await self._http.request(
                method, path, params=params, content=content, headers={"Content-Type": content_type}
            )
        except httpx.TransportError as exc:
            # A reset, a refused or timed-out connection: the server's answer is unknown
            # (a write may have happened). The same retryable error as a 503, so callers
            # retry with their backoff instead of treating it as a bug.
            detail = str(exc) or "no detail"
            raise ApiError(503, "Unavailable", f"{type(exc).__name__}: {detail}") from exc
        _raise_for(response)
        result: Manifest = response.json() if response.content else {}
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
        either as the response or as an ERROR event inside the stream.
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
        timeout = httpx.Timeout(self._http.timeout.connect, read=timeout_seconds + 30.0)
        async with self._watch_http.stream(
            "GET", res.path(namespace), params=params, timeout=timeout
        ) as response:
            if not response.is_success:
                await response.aread()
                _raise_for(response)
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                obj: Manifest = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise ApiError(
                        int(obj.get("code") or 500),
                        str(obj.get("reason") or "WatchError"),
                        str(obj.get("message") or line),
                    )
                yield WatchEvent(str(event.get("type")), obj)

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
