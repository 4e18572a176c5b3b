"""A list-then-watch loop that keeps a :class:`~gantry.kube.store.Store` current.

The same contract as client-go's reflector: list once, watch from the list's
resourceVersion, resume the watch from the last version seen (bookmarks keep it
fresh when nothing changes), list again only when the server says the version
is gone (410). Every change is passed to ``on_event`` so the operator can
enqueue the owner of what changed.

A kind the server does not serve (a 404 on the list: Gateway API or KEDA CRDs
not installed) makes the informer *synced and not served*: readers are told at
once instead of asking the server on every reconcile. It lists again when
:meth:`Informer.recheck` is called (the CRD appeared) or after ``recheck_after``
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from gantry.kube.client import ApiError, KubeClient, Manifest
from gantry.kube.resources import Resource
from gantry.kube.store import Store, key_of

logger = logging.getLogger("gantry.kube.informer")

EventHandler = Callable[[str, Manifest], None]


@dataclass(frozen=True)
class InformerSettings:
    """How an informer watches and recovers."""

    watch_timeout: int = 300  # the server closes each watch after this (jittered)
    error_backoff: float = 1.0  # first wait after a failure, doubled up to the cap
    error_backoff_cap: float = 30.0
    recheck_after: float = 300.0  # re-list a kind that was not served


class Informer:
    """Watches one kind (in one namespace, or all) with a label selector.

    Args:
        kube: The client.
        res: The kind.
        namespace: One namespace, or None for every namespace.
        selector: Label selector, evaluated by the server: the store holds only
            matching objects, so memory follows Gantry's objects, not the cluster's.
        field_selector: Field selector (a CRD watched by name).
        store: Where objects are kept.
        on_event: Called with ("ADDED" | "MODIFIED" | "DELETED", object) for each change.
        optional: A watch that only speeds things up (a CRD watched by name): when
            it is forbidden, it stops quietly instead of retrying forever.
    """

    def __init__(
        self,
        kube: KubeClient,
        res: Resource,
        *,
        namespace: str | None = None,
        selector: str | None = None,
        field_selector: str | None = None,
        store: Store | None = None,
        on_event: EventHandler | None = None,
        settings: InformerSettings | None = None,
        optional: bool = False,
    ) -> None:
        self.kube = kube
        self.optional = optional
        self.res = res
        self.namespace = namespace
        self.selector = selector
        self.field_selector = field_selector
        self.store = store if store is not None else Store()
        self.on_event = on_event
        self.settings = settings or InformerSettings()
        self.served: bool | None = None  # None until the first list answers
        self.lists = 0  # how many times the whole list was read (tests and metrics)
        self.last_error: str | None = None  # why the last list or watch failed, for humans
        self._synced = asyncio.Event()
        self._recheck = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resume = ""  # the newest resourceVersion the watch delivered

    def __repr__(self) -> str:
        where = self.namespace or "*"
        return f"Informer({self.res.plural}.{self.res.api_version} in {where})"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=repr(self))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def recheck(self) -> None:
        """List again now if the kind was not served (its CRD may have appeared)."""
        self._recheck.set()

    async def _run(self) -> None:
        backoff = self.settings.error_backoff
        # Where the next watch starts: None means list first. Only a 410 (the version
        # is gone) forgets it: a dropped connection resumes where it left off, as
        # client-go's reflector does, so a network blip never re-lists every pod.
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                    if version is None:  # not served
                        await self._wait_recheck()
                        continue
                backoff = self.settings.error_backoff
                self._resume = version
                await self._watch_from(version)
                version = self._resume
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status in (404, 410):
                    # 410: the version is gone. 404: the kind is (a CRD deleted): a
                    # list finds out which, and says "not served" for the latter.
                    version = None
                    continue
                if exc.status == 403 and self.optional:
                    logger.info("%r: forbidden, not watched (%s)", self, exc.message)
                    return
                self.last_error = str(exc)
                if exc.status in (401, 403):
                    self.last_error += " (check the operator's RBAC: it needs list and watch)"
                logger.warning("%r: %s; retrying in %.0fs", self, self.last_error, backoff)
                version = None if version is None else self._resume
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.error_backoff_cap)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.info("%r: watch interrupted (%s); resuming", self, exc)
                version = None if version is None else self._resume
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, self.settings.error_backoff_cap)

    async def _wait_recheck(self) -> None:
        self._recheck.clear()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        # that arrives as the event is set, and stop() would hang.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.recheck_after):
                await self._recheck.wait()

    async def _list(self) -> str | None:
        """Refill the store from a list; its resourceVersion, or None when not served."""
        try:
            items, version = await self.kube.list_versioned(
                self.res, self.namespace, selector=self.selector, fields=self.field_selector
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.served = False
            _, removed = self.store.replace([])
            self._synced.set()
            for obj in removed:
                self._emit("DELETED", obj)
            return None
        self.lists += 1
        self.last_error = None
        kind, api_version = self.res.kind, self.res.api_version
        for item in items:  # list items carry no kind; watch objects do
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        changed, removed = self.store.replace(items)
        self.served = True
        self._synced.set()
        for obj in changed:
            self._emit("MODIFIED", obj)
        for obj in removed:
            self._emit("DELETED", obj)
        return version

    async def _watch_from(self, version: str) -> None:
        while True:
            # Jitter, so the watches of many kinds do not all reconnect at once.
            timeout = int(self.settings.watch_timeout * random.uniform(0.9, 1.1))
            async for event in self.kube.watch(
                self.res,
                self.namespace,
                selector=self.selector,
                field_selector=self.field_selector,
                resource_version=version,
                timeout_seconds=timeout,
            ):
                obj = event.object
                meta = obj.get("metadata") or {}
                version = str(meta.get("resourceVersion") or version)
                self._resume = version
                if event.type == "BOOKMARK":
                    continue
                if event.type == "DELETED":
                    ns, name = key_of(obj)
                    if self.store.remove(ns, name) is not None:
                        self._emit("DELETED", obj)
                elif event.type in ("ADDED", "MODIFIED") and self.store.put(obj):
                    self._emit(event.type, obj)

    def _emit(self, kind: str, obj: Manifest) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, obj)
        except Exception:
            # A consumer's bug must not stop the watch that every reconcile reads from.
            logger.exception("%r: event handler failed", self)
