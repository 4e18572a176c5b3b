"""The one place that talks to the Kubernetes API server.

A thin async client over httpx: server-side apply, get, list, delete and the
scale subresource, on plain-dict manifests. Every call is bounded by a timeout;
API errors surface as :class:`ApiError` with the server's status and message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self

import httpx

from gantry.kube.config import ClusterConfig
from gantry.kube.resources import Resource, resource_of

Manifest = dict[str, Any]

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
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        field_manager: str = "gantry",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "gantry"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._http = httpx.AsyncClient(
            base_url=config.server,
            headers=headers,
            verify=config.ssl_context(),
            timeout=timeout,
            # Keep-alive equal to the pool: closing idle connections while requests wait
            # cost a TLS handshake per request under load (measured by the operator bench).
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            transport=transport,
        )
        self.field_manager = field_manager
        self.config = config

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
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
        content = None if body is None else json.dumps(body).encode()
        response = await self._http.request(
            method, path, params=params, content=content, headers={"Content-Type": content_type}
        )
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
