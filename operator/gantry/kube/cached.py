"""A :class:`KubeClient` whose reads of Gantry's own objects come from watch-fed caches.

Reads that a reconcile makes every time (the children of one ModelDeployment,
listed by label) are answered from :class:`~gantry.kube.informer.Informer`
stores, so an unchanged object costs the API server nothing. Everything else
goes to the server as before:

* a GET of a name the cache does not hold (a user's object without Gantry's
  labels is invisible to a label-selected watch, and only a GET can see it);
* a list whose selector does not include the informer's (the cache would
  under-report);
* every write. The answer to a write goes into the store at once (newest
  resourceVersion wins), so the next reconcile reads at least what it wrote.

A kind the server does not serve answers a list with the same 404 the server
would give, from memory; a CRD watched by name re-checks it when it appears.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gantry.kube.client import ApiError, KubeClient, Manifest
from gantry.kube.config import ClusterConfig
from gantry.kube.informer import Informer, InformerSettings
from gantry.kube.resources import CRD, Resource, resource_of
from gantry.kube.store import Store, parse_selector

ChangeHandler = Callable[[Resource, str, Manifest], None]


@dataclass(frozen=True)
class Watched:
    """A kind to cache; ``crd`` names its CustomResourceDefinition when it may be absent."""

    res: Resource
    crd: str | None = None


def namespace_filter(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    """kopf's namespace patterns (globs, ``!`` to exclude) as a predicate; None for all."""
    if not patterns:
        return None
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]

    def accept(namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, p) for p in exclude):
            return False
        return not include or any(fnmatch.fnmatchcase(namespace, p) for p in include)

    return accept


def _literal(patterns: Sequence[str]) -> bool:
    return bool(patterns) and not any(set(p) & set("*?[!") for p in patterns)


class CacheNotSyncedError(Exception):
    """A cache could not be filled (the kind is forbidden, the server unreachable)."""


class CachedKubeClient(KubeClient):
    """KubeClient + informers for ``watched`` kinds in ``namespaces``.

    Args:
        config: The cluster.
        watched: Kinds to cache (with their label ``selector``).
        namespaces: kopf-style patterns; literal names get one watch each (what a
            namespaced Role permits), patterns or none one cluster-wide watch
            whose objects outside the patterns are dropped.
        selector: The server-side label selector of every watch.
        on_change: Called for each cached change, with the kind.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        watched: Sequence[Watched],
        namespaces: Sequence[str] = (),
        selector: str,
        on_change: ChangeHandler | None = None,
        field_manager: str = "gantry",
        timeout: float = 10.0,
        informer_settings: InformerSettings | None = None,
        identity: str | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(
            config,
            field_manager=field_manager,
            timeout=timeout,
            identity=identity,
            may_write=may_write,
        )
        self.selector = selector
        self._selector_terms = parse_selector(selector)
        self._on_change = on_change
        accept = namespace_filter(namespaces)
        scopes: list[str | None] = list(namespaces) if _literal(namespaces) else [None]
        self.informers: dict[Resource, list[Informer]] = {}
        self.stores: dict[Resource, Store] = {}
        self._crd_informers: list[Informer] = []
        for w in watched:
            store = Store(accept)
            self.stores[w.res] = store
            self.informers[w.res] = [
                Informer(
                    self,
                    w.res,
                    namespace=ns,
                    selector=selector,
                    store=store,
                    on_event=self._relay(w.res),
                    settings=informer_settings,
                )
                for ns in scopes
            ]
            if w.crd is not None:
                self._crd_informers.append(
                    Informer(
                        self,
                        CRD,
                        field_selector=f"metadata.name={w.crd}",
                        on_event=self._crd_changed(w.res),
                        settings=informer_settings,
                        # Without RBAC on CRDs, the kind is re-checked every recheck_after.
                        optional=True,
                    )
                )
        self._passive: dict[Resource, Store] = {}

    def _relay(self, res: Resource) -> Callable[[str, Manifest], None]:
        def relay(kind: str, obj: Manifest) -> None:
            if self._on_change is not None:
                self._on_change(res, kind, obj)

        return relay

    def _crd_changed(self, res: Resource) -> Callable[[str, Manifest], None]:
        def changed(kind: str, obj: Manifest) -> None:
            for informer in self.informers[res]:
                informer.recheck()
            if self._on_change is not None:
                self._on_change(CRD, kind, obj)

        return changed

    def passive_store(self, res: Resource, accept: Callable[[str], bool] | None = None) -> Store:
        """A store for ``res`` fed by the caller (kopf's watch) and by this client's writes."""
        return self._passive.setdefault(res, Store(accept))

    def all_informers(self) -> list[Informer]:
        return [i for group in self.informers.values() for i in group] + self._crd_informers

    async def start(self) -> None:
        for informer in self.all_informers():
            informer.start()

    async def wait_synced(self, within: float | None = None) -> None:
        """Until every informer has listed once.

        Raises:
            CacheNotSyncedError: not within ``within`` seconds; names each cache
                not filled and why (a forbidden list is the usual cause).
        """
        waits = asyncio.gather(*(i.wait_synced() for g in self.informers.values() for i in g))
        try:
            async with asyncio.timeout(within):
                await waits
        except TimeoutError:
            waits.cancel()
            missing = [
                f"{i!r}: {i.last_error or 'no answer yet'}"
                for group in self.informers.values()
                for i in group
                if not i.synced
            ]
            raise CacheNotSyncedError("caches not filled: " + "; ".join(missing)) from None

    async def close(self) -> None:
        for informer in self.all_informers():
            await informer.stop()
        await super().close()

    def _informer(self, res: Resource, namespace: str | None) -> Informer | None:
        group = self.informers.get(res)
        if not group:
            return None
        if len(group) == 1 and group[0].namespace is None:
            return group[0]
        return next((i for i in group if i.namespace == namespace), None)

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Manifest | None:
        informer = self._informer(res, namespace)
        if informer is not None and informer.store.accepts(namespace or ""):
            await informer.wait_synced()
            if informer.served is False:
                return None
            obj = informer.store.get(namespace or "", name)
            if obj is not None:
                return obj
        return await super().get(res, name, namespace)

    async def list(
        self, res: Resource, namespace: str | None = None, *, selector: str | None = None
    ) -> list[Manifest]:
        informer = self._informer(res, namespace)
        covered = self._selector_terms.items() <= parse_selector(selector).items()
        if informer is None or not covered or not informer.store.accepts(namespace or ""):
            return await super().list(res, namespace, selector=selector)
        await informer.wait_synced()
        if informer.served is False:
            raise ApiError(
                404,
                "NotFound",
                f"the server does not serve {res.plural} in {res.api_version}",
            )
        return informer.store.select(namespace, selector)

    def _remember(self, res: Resource, obj: Manifest) -> None:
        # Not `or`: an empty Store is falsy (it has a length), and its first write counts.
        store = self.stores.get(res)
        if store is None:
            store = self._passive.get(res)
        if store is not None and obj.get("metadata"):
            obj.setdefault("kind", res.kind)
            obj.setdefault("apiVersion", res.api_version)
            store.put(obj)

    async def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        applied = await super().apply(manifest, force=force)
        self._remember(resource_of(manifest), copy.deepcopy(applied))
        return applied

    async def patch_merge(
        self, res: Resource, name: str, namespace: str | None, patch: Manifest, *, sub: str = ""
    ) -> Manifest:
        patched = await super().patch_merge(res, name, namespace, patch, sub=sub)
        self._remember(res, copy.deepcopy(patched))
        return patched

    async def delete(
        self, res: Resource, name: str, namespace: str | None = None, *, uid: str | None = None
    ) -> bool:
        deleted = await super().delete(res, name, namespace, uid=uid)
        store = self.stores.get(res)
        if store is not None:
            # The watch says DELETED too, or MODIFIED with a deletionTimestamp while
            # finalizers run; either way a reconcile must not count it as present.
            store.remove(namespace or "", name)
        return deleted
