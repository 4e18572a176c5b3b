"""Where the Lease lives: read, create and compare-and-swap update over Gantry's KubeClient."""

from __future__ import annotations

from typing import Any, Protocol

from gantry.kube import ApiError, KubeClient
from gantry.kube.resources import LEASE


class LeaseConflict(Exception):
    """Someone else wrote the Lease since it was read (409): the decision is void."""


class LeaseStore(Protocol):
    """One named Lease. Implementations raise :class:`LeaseConflict` on a lost race."""

    async def read(self) -> dict[str, Any] | None: ...

    async def create(self, spec: dict[str, Any]) -> dict[str, Any]: ...

    async def update(self, spec: dict[str, Any], resource_version: str) -> dict[str, Any]: ...


class KubeLeaseStore:
    """A Lease on the API server. Updates are merge patches that carry the
    ``resourceVersion`` they were decided on: the API server refuses a stale one with 409,
    which is the compare-and-swap the election needs."""

    def __init__(self, client: KubeClient, *, name: str, namespace: str) -> None:
        self._client = client
        self.name = name
        self.namespace = namespace

    async def read(self) -> dict[str, Any] | None:
        return await self._client.get(LEASE, self.name, self.namespace)

    async def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        manifest = {
            "apiVersion": LEASE.api_version,
            "kind": LEASE.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
        try:
            return await self._client.create(manifest)
        except ApiError as exc:
            if exc.conflict:  # AlreadyExists: another elector created it first
                raise LeaseConflict(str(exc)) from exc
            raise

    async def update(self, spec: dict[str, Any], resource_version: str) -> dict[str, Any]:
        if not resource_version:
            raise ValueError("a Lease update needs the resourceVersion it was decided on")
        patch = {"metadata": {"resourceVersion": resource_version}, "spec": spec}
        try:
            return await self._client.patch_merge(LEASE, self.name, self.namespace, patch)
        except ApiError as exc:
            if exc.conflict:
                raise LeaseConflict(str(exc)) from exc
            raise
