"""A small in-memory Kubernetes API server, as an ``httpx.MockTransport`` handler.

This is a fake on purpose: the reconciler tests inject API faults (a 500 on one
PATCH, a 409 on the status write, an API group that is not installed) at exact
points of a reconcile, which a real API server cannot produce on demand. The
end-to-end suite (``e2e/``) runs the same code against a real control plane.

What it implements, and no more:

* objects in a dict keyed by their item path (``/apis/apps/v1/namespaces/ns/deployments/x``);
* GET of an item (404 Status when absent) and of a collection, with equality-only
  ``labelSelector`` matching (``k=v,k2=v2``; anything else is a 400, so a test
  never passes on a selector the fake silently ignored);
* server-side apply (``application/apply-patch+yaml``): needs ``fieldManager``,
  checks the body names the URL's object, creates the object or deep-merges the
  applied configuration into it (fields set by other managers, such as
  ``spec.replicas`` from ``/scale``, survive, as with real field ownership);
* JSON merge patch (RFC 7386) on an item and on its ``status`` and ``scale``
  subresources; DELETE with ``preconditions.uid`` (409 on a mismatch); POST to a
  collection, with ``generateName``;
* ``metadata.uid``, ``generation`` (bumped when ``spec`` changes) and
  ``resourceVersion`` (bumped on every write), as the real server sets them.

Every request is logged (:attr:`FakeApiServer.log`) so tests can assert what was
sent and in which order.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gantry.kube.client import APPLY_CONTENT_TYPE, MERGE_CONTENT_TYPE

Obj = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    params: dict[str, str]
    content_type: str
    body: Any

    @property
    def sub(self) -> str:
        """The subresource (``status``, ``scale``) or ``""``."""
        return _split(self.path)[2]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    method: str
    path: str
    status: int
    reason: str
    message: str
    times: int | None  # None: every time


@dataclass
class FakeApiServer:
    """The handler: ``httpx.MockTransport(fake)``."""

    objects: dict[str, Obj] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    missing_groups: set[str] = field(default_factory=set)
    # One-shot hooks run just before the request "METHOD path" is served: a
    # concurrent writer acting between two requests of a reconcile.
    before: dict[str, Callable[[], None]] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ---- test-side helpers -------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def put(self, path: str, obj: Obj) -> Obj:
        """Store ``obj`` at item path ``path`` as if created, and return the stored copy."""
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", self._uid())
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._counter))
        self.objects[path] = stored
        return copy.deepcopy(stored)

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        reason: str = "InternalError",
        message: str = "injected fault",
        times: int | None = 1,
    ) -> None:
        """Answer ``method path`` (exact path, query ignored) with a Status error."""
        self.faults.append(Fault(method, path, status, reason, message, times))

    def uninstall(self, group_version: str) -> None:
        """Answer 404 for every path of an API group/version, as for a missing CRD."""
        self.missing_groups.add(group_version)

    def writes(self) -> list[Request]:
        return [r for r in self.log if r.method != "GET"]

    def requests(self, method: str, path: str | None = None) -> list[Request]:
        return [r for r in self.log if r.method == method and (path is None or r.path == path)]

    # ---- the handler ---------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        content_type = request.headers.get("content-type", "")
        raw = request.content
        body = json.loads(raw) if raw else None
        params = dict(request.url.params)
        self.log.append(Request(request.method, path, params, content_type, body))
        if (hook := self.before.pop(f"{request.method} {path}", None)) is not None:
            hook()
        if (fault := self._fault(request.method, path)) is not None:
            return _status(fault.status, fault.reason, fault.message)
        if any(path.startswith(f"/apis/{gv}/") for gv in self.missing_groups):
            return _status(404, "NotFound", "the server could not find the requested resource")
        collection, name, sub = _split(path)
        obj: Obj = body if isinstance(body, dict) else {}
        if request.method in ("POST", "PATCH") and not isinstance(body, dict):
            return _status(400, "BadRequest", "the request body must be a JSON object")
        if request.method == "GET":
            return self._get(path, params) if name else self._list(collection, params)
        if request.method == "POST" and not name:
            return self._create(collection, obj)
        if request.method == "PATCH" and name:
            item = f"{collection}/{name}"
            if content_type == APPLY_CONTENT_TYPE and not sub:
                return self._apply(item, name, params, obj)
            if content_type == MERGE_CONTENT_TYPE:
                return self._merge(item, sub, obj)
            return _status(415, "UnsupportedMediaType", f"{content_type} not supported")
        if request.method == "DELETE" and name and not sub:
            return self._delete(f"{collection}/{name}", obj)
        return _status(405, "MethodNotAllowed", f"{request.method} {path}")

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.path == path and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def _uid(self) -> str:
        return f"uid-{next(self._counter):04d}"

    def _get(self, path: str, _params: dict[str, str]) -> httpx.Response:
        obj = self.objects.get(path)
        if obj is None:
            return _status(404, "NotFound", f"{path} not found")
        return httpx.Response(200, json=obj)

    def _list(self, collection: str, params: dict[str, str]) -> httpx.Response:
        try:
            wanted = _parse_selector(params.get("labelSelector", ""))
        except ValueError as exc:
            return _status(400, "BadRequest", str(exc))
        items = [
            obj
            for key, obj in sorted(self.objects.items())
            if key.rsplit("/", 1)[0] == collection
            and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        meta = {"resourceVersion": str(next(self._counter))}
        return httpx.Response(200, json={"kind": "List", "metadata": meta, "items": items})

    def _create(self, collection: str, body: Obj) -> httpx.Response:
        body = copy.deepcopy(body)  # the log keeps what was sent
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                return _status(422, "Invalid", "metadata.name or generateName is required")
            meta["name"] = f"{meta['generateName']}{next(self._counter):05x}"
        path = f"{collection}/{meta['name']}"
        if path in self.objects:
            return _status(409, "AlreadyExists", f"{meta['name']} already exists")
        return httpx.Response(201, json=self.put(path, body))

    def _apply(self, path: str, name: str, params: dict[str, str], body: Obj) -> httpx.Response:
        if not params.get("fieldManager"):
            return _status(400, "BadRequest", "fieldManager is required for apply")
        if (body.get("metadata") or {}).get("name") != name:
            return _status(400, "BadRequest", "the name of the object does not match the URL")
        body = {k: v for k, v in body.items() if k != "status"}
        existing = self.objects.get(path)
        if existing is None:
            return httpx.Response(201, json=self.put(path, body))
        merged = _deep_merge(copy.deepcopy(existing), body)
        return httpx.Response(200, json=self._store(path, existing, merged))

    def _merge(self, path: str, sub: str, patch: Obj) -> httpx.Response:
        existing = self.objects.get(path)
        if existing is None:
            return _status(404, "NotFound", f"{path} not found")
        merged = copy.deepcopy(existing)
        if sub == "status":
            merged["status"] = _merge_patch(merged.get("status") or {}, patch.get("status") or {})
        elif sub == "scale":
            replicas = (patch.get("spec") or {}).get("replicas")
            merged.setdefault("spec", {})["replicas"] = replicas
        elif sub:
            return _status(404, "NotFound", f"no subresource {sub}")
        else:  # the main resource ignores status (it has its own subresource)
            merged = _merge_patch(merged, {k: v for k, v in patch.items() if k != "status"})
        stored = self._store(path, existing, merged)
        if sub == "scale":
            scale = {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": stored["metadata"],
            }
            scale["spec"] = {"replicas": stored["spec"]["replicas"]}
            return httpx.Response(200, json=scale)
        return httpx.Response(200, json=stored)

    def _store(self, path: str, before: Obj, after: Obj) -> Obj:
        meta = after["metadata"]
        meta["uid"] = before["metadata"]["uid"]  # immutable
        if after.get("spec") != before.get("spec"):
            meta["generation"] = int(before["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = str(next(self._counter))
        self.objects[path] = after
        return copy.deepcopy(after)

    def _delete(self, path: str, options: Obj) -> httpx.Response:
        existing = self.objects.get(path)
        if existing is None:
            return _status(404, "NotFound", f"{path} not found")
        want_uid = (options.get("preconditions") or {}).get("uid")
        have_uid = existing["metadata"]["uid"]
        if want_uid is not None and want_uid != have_uid:
            return _status(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {want_uid}, "
                f"UID in object meta: {have_uid}",
            )
        del self.objects[path]
        return httpx.Response(200, json={"kind": "Status", "status": "Success"})


def _split(path: str) -> tuple[str, str, str]:
    """``(collection path, name, subresource)`` of a request path."""
    parts = path.strip("/").split("/")
    head = 2 if parts[0] == "api" else 3
    if len(parts) >= head + 3 and parts[head] == "namespaces":
        head += 2  # namespaced: /namespaces/{ns}/{plural}...
    rest = parts[head:]
    collection = "/" + "/".join(parts[: head + 1])
    name = rest[1] if len(rest) > 1 else ""
    sub = "/".join(rest[2:])
    return collection, name, sub


def _parse_selector(text: str) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for term in filter(None, text.split(",")):
        key, sep, value = term.partition("=")
        value = value.removeprefix("=")  # k==v is equality too
        if not sep or key.endswith("!") or not key or "(" in key:
            raise ValueError(f"the fake supports equality selectors only, got {term!r}")
        wanted[key] = value
    return wanted


def _deep_merge(base: Obj, applied: Obj) -> Obj:
    for key, value in applied.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _merge_patch(target: Obj, patch: Obj) -> Obj:
    """RFC 7386: objects merge, null deletes, anything else replaces."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            base = result.get(key)
            result[key] = _merge_patch(base if isinstance(base, dict) else {}, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _status(code: int, reason: str, message: str) -> httpx.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return httpx.Response(code, json=body)
