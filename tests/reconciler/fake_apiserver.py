"""A small in-memory Kubernetes API server, served on a loopback port by aiohttp.

``async with fake.serving() as config:`` serves it on ``127.0.0.1`` (a free port, plain
HTTP) and gives the :class:`ClusterConfig` that reaches it, so the client under test
talks to it over a real socket, through its real HTTP stack.

This is a fake on purpose: the reconciler tests inject API faults (a 500 on one
PATCH, a 409 on the status write, an API group that is not installed) at exact
points of a reconcile, which a real API server cannot produce on demand. The
end-to-end suite (``e2e/``) runs the same code against a real control plane.

What it implements, and no more:

* objects in a dict keyed by their item path (``/apis/apps/v1/namespaces/ns/deployments/x``);
* GET of an item (404 Status when absent) and of a collection, namespaced or
  cluster-wide (``/api/v1/pods`` holds the pods of every namespace), with
  equality-only ``labelSelector`` matching (``k=v,k2=v2``) and a ``fieldSelector`` on
  ``metadata.name`` / ``metadata.namespace``; anything else is a 400, so a test never
  passes on a selector the fake silently ignored;
* watches (``GET collection?watch=true``): a streamed body of newline-delimited
  ``{"type", "object"}`` events for every change after ``resourceVersion`` (every
  current object as ADDED when none is given) that concerns the collection and its
  selectors: ADDED on create, MODIFIED on any later write (apply, merge patch,
  ``status``, ``scale``, :meth:`FakeApiServer.put` over an existing object), DELETED
  on delete; an object whose labels leave (enter) a selector is DELETED (ADDED) for
  that watch, as on the real server. The stream waits for new changes until
  ``timeoutSeconds`` or until the client closes it; :meth:`FakeApiServer.end_watches`
  ends the open ones as the server does at its timeout. Only the last
  ``history_limit`` changes are kept: a watch from an older version answers
  410 Gone (an ERROR event if its stream falls behind), as after etcd compaction.
  No BOOKMARK events;
* server-side apply (``application/apply-patch+yaml``): needs ``fieldManager``,
  checks the body names the URL's object, creates the object or deep-merges the
  applied configuration into it (fields set by other managers, such as
  ``spec.replicas`` from ``/scale``, survive, as with real field ownership);
* JSON merge patch (RFC 7386) on an item and on its ``status`` and ``scale``
  subresources; DELETE with ``preconditions.uid`` (409 on a mismatch); POST to a
  collection, with ``generateName``;
* ``metadata.uid``, ``generation`` (bumped when ``spec`` changes) and
  ``resourceVersion`` (bumped on every write), as the real server sets them.

Every request is logged (:attr:`FakeApiServer.log`), watches included, so tests
can assert what was sent and in which order. Faults (:meth:`FakeApiServer.fail`) answer
a Status error; :meth:`FakeApiServer.reset` drops the connection without an answer,
as a crashed or restarted API server (or a proxy in front of it) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from e2e.faults.proxy import _reset as reset_connection  # the fault proxy's TCP RST
from gantry.kube.client import APPLY_CONTENT_TYPE, MERGE_CONTENT_TYPE
from gantry.kube.config import ClusterConfig

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

    @property
    def watch(self) -> bool:
        return self.method == "GET" and self.params.get("watch") in ("true", "1")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Change:
    """One write, as the watch cache keeps it: the object before and after."""

    rv: int
    path: str
    before: Obj | None  # None: created
    after: Obj | None  # None: deleted (then ``deleted`` is the object with its last version)
    deleted: Obj | None = None


@dataclass
class Fault:
    method: str
    path: str
    status: int
    reason: str
    message: str
    times: int | None  # None: every time
    reset: bool = False  # drop the connection instead of answering


@dataclass(frozen=True)
class _Reply:
    """What the handler answers: a JSON body, or a watch's stream."""

    status: int
    body: Any = None
    stream: _WatchStream | None = None


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serve_loopback(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on 127.0.0.1 at a free port; the base URL (``http://127.0.0.1:N``).

    Handlers are cancelled when their client hangs up (a watch the client closed ends
    at once), and the server stops within a second on exit.
    """
    server = web.Server(handler, handler_cancellation=True, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@dataclass
class FakeApiServer:
    """The in-memory server; :meth:`serving` puts it on a loopback port."""

    objects: dict[str, Obj] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    missing_groups: set[str] = field(default_factory=set)
    # One-shot hooks run just before the request "METHOD path" is served: a
    # concurrent writer acting between two requests of a reconcile.
    before: dict[str, Callable[[], None]] = field(default_factory=dict)
    # How many changes the watch history keeps (None: all); older watches get 410.
    history_limit: int | None = None
    history: list[Change] = field(default_factory=list)
    _compacted: int = 0  # the newest resourceVersion dropped from the history
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _wakeups: set[asyncio.Event] = field(default_factory=set)
    _watch_opened: asyncio.Event = field(default_factory=asyncio.Event)
    _watch_generation: int = 0  # end_watches() bumps it; streams of older ones end
    _answering: bool = False  # a request is being answered: its changes wake watches after

    # ---- test-side helpers -------------------------------------------------

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[ClusterConfig]:
        """Serve this fake on a loopback port; the config of a client that reaches it.

        On exit the open watches end (as at the server's timeout) and the server stops.
        """
        try:
            async with serve_loopback(self._serve) as url:
                yield ClusterConfig(server=url)
        finally:
            self.end_watches()

    def put(self, path: str, obj: Obj) -> Obj:
        """Store ``obj`` at item path ``path`` as if written by someone else; the stored copy.

        A new path is a create (ADDED to watches), an existing one an update
        (MODIFIED): how a test plays the Deployment controller or the kubelet.
        """
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", self._uid())
        meta.setdefault("generation", 1)
        rv = next(self._counter)
        meta["resourceVersion"] = str(rv)
        self._record(Change(rv, path, self.objects.get(path), copy.deepcopy(stored)))
        self.objects[path] = stored
        return copy.deepcopy(stored)

    def install(self, group_version: str) -> None:
        """Serve an API group/version again (its CRD was installed)."""
        self.missing_groups.discard(group_version)

    def compact(self) -> None:
        """Drop the whole watch history, as etcd compaction does: older watches get 410."""
        if self.history:
            self._compacted = self.history[-1].rv
        self.history.clear()
        self._wake()

    def end_watches(self) -> None:
        """End every open watch stream cleanly, as the server does at ``timeoutSeconds``."""
        self._watch_generation += 1
        self._wake()

    @property
    def open_watches(self) -> int:
        """Watch streams being read now."""
        return len(self._wakeups)

    async def until_watching(self, n: int = 1, *, within: float = 5.0) -> None:
        """Wait until ``n`` watch streams are open (TimeoutError after ``within`` s)."""
        async with asyncio.timeout(within):
            while self.open_watches < n:
                self._watch_opened.clear()
                await self._watch_opened.wait()

    def watches(self) -> list[Request]:
        return [r for r in self.log if r.watch]

    def reads(self) -> list[Request]:
        """GETs other than watches: what a cache-fed reconcile should not send."""
        return [r for r in self.log if r.method == "GET" and not r.watch]

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

    def reset(self, method: str, path: str, *, times: int | None = 1) -> None:
        """Drop the connection of ``method path`` (exact path) without answering."""
        self.faults.append(Fault(method, path, 0, "", "", times, reset=True))

    def uninstall(self, group_version: str) -> None:
        """Answer 404 for every path of an API group/version, as for a missing CRD."""
        self.missing_groups.add(group_version)

    def writes(self) -> list[Request]:
        return [r for r in self.log if r.method != "GET"]

    def requests(self, method: str, path: str | None = None) -> list[Request]:
        return [r for r in self.log if r.method == method and (path is None or r.path == path)]

    # ---- the handler ---------------------------------------------------------

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read()
        self._answering = True
        try:
            reply = self.handle(
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("Content-Type", ""),
                raw,
            )
        finally:
            self._answering = False
        if reply is None:
            reset_connection(request)
            self._wake()
            return web.Response(status=500)  # never sent: the connection is gone
        if reply.stream is None:
            response = web.Response(
                status=reply.status,
                body=json.dumps(reply.body).encode(),
                content_type="application/json",
            )
            await response.prepare(request)
            await response.write_eof()
            # Watches hear of a write after its answer is on the wire, as from the real
            # server, whose watch cache trails etcd: the writer's client has the answer first
            # (as under an in-process transport, where the answer came back synchronously).
            self._wake()
            return response
        response = web.StreamResponse(status=reply.status)
        response.content_type = "application/json"
        await response.prepare(request)
        async for chunk in reply.stream:
            await response.write(chunk)
        await response.write_eof()
        return response

    def handle(
        self, method: str, path: str, params: dict[str, str], content_type: str, raw: bytes
    ) -> _Reply | None:
        """Log and answer one request; None: drop its connection (a :meth:`reset` fault)."""
        body = json.loads(raw) if raw else None
        self.log.append(Request(method, path, params, content_type, body))
        if (hook := self.before.pop(f"{method} {path}", None)) is not None:
            hook()
        if (fault := self._fault(method, path)) is not None:
            if fault.reset:
                return None
            return _status(fault.status, fault.reason, fault.message)
        if any(path.startswith(f"/apis/{gv}/") for gv in self.missing_groups):
            return _status(404, "NotFound", "the server could not find the requested resource")
        collection, name, sub = _split(path)
        obj: Obj = body if isinstance(body, dict) else {}
        if method in ("POST", "PATCH") and not isinstance(body, dict):
            return _status(400, "BadRequest", "the request body must be a JSON object")
        if method == "GET" and not name and params.get("watch") in ("true", "1"):
            return self._watch(collection, params)
        if method == "GET":
            return self._get(path, params) if name else self._list(collection, params)
        if method == "POST" and not name:
            return self._create(collection, obj)
        if method == "PATCH" and name:
            item = f"{collection}/{name}"
            if content_type == APPLY_CONTENT_TYPE and not sub:
                return self._apply(item, name, params, obj)
            if content_type == MERGE_CONTENT_TYPE:
                return self._merge(item, sub, obj)
            return _status(415, "UnsupportedMediaType", f"{content_type} not supported")
        if method == "DELETE" and name and not sub:
            return self._delete(f"{collection}/{name}", obj)
        return _status(405, "MethodNotAllowed", f"{method} {path}")

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.path == path and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def _uid(self) -> str:
        return f"uid-{next(self._counter):04d}"

    def _get(self, path: str, _params: dict[str, str]) -> _Reply:
        obj = self.objects.get(path)
        if obj is None:
            return _status(404, "NotFound", f"{path} not found")
        return _Reply(200, obj)

    def _list(self, collection: str, params: dict[str, str]) -> _Reply:
        try:
            match = _Selection(collection, params)
        except ValueError as exc:
            return _status(400, "BadRequest", str(exc))
        items = [obj for key, obj in sorted(self.objects.items()) if match(key, obj)]
        meta = {"resourceVersion": str(next(self._counter))}
        return _Reply(200, {"kind": "List", "metadata": meta, "items": items})

    def _watch(self, collection: str, params: dict[str, str]) -> _Reply:
        try:
            match = _Selection(collection, params)
            since = int(params.get("resourceVersion") or 0)
            timeout = float(params.get("timeoutSeconds") or 1800)
        except ValueError as exc:
            return _status(400, "BadRequest", str(exc))
        if since and since < self._compacted:
            return _status(410, "Expired", f"too old resource version: {since}")
        initial: list[Obj] = []
        if not since:  # no version: every current object first, as ADDED
            since = next(self._counter)
            initial = [
                {"type": "ADDED", "object": copy.deepcopy(obj)}
                for key, obj in sorted(self.objects.items())
                if match(key, obj)
            ]
        stream = _WatchStream(self, match, since, timeout, initial)
        return _Reply(200, stream=stream)

    def _record(self, change: Change) -> None:
        self.history.append(change)
        if self.history_limit is not None:
            while len(self.history) > self.history_limit:
                self._compacted = self.history.pop(0).rv
        self._wake()

    def _wake(self) -> None:
        if self._answering:
            return
        for wakeup in self._wakeups:
            wakeup.set()

    def _create(self, collection: str, body: Obj) -> _Reply:
        body = copy.deepcopy(body)  # the log keeps what was sent
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                return _status(422, "Invalid", "metadata.name or generateName is required")
            meta["name"] = f"{meta['generateName']}{next(self._counter):05x}"
        path = f"{collection}/{meta['name']}"
        if path in self.objects:
            return _status(409, "AlreadyExists", f"{meta['name']} already exists")
        return _Reply(201, self.put(path, body))

    def _apply(self, path: str, name: str, params: dict[str, str], body: Obj) -> _Reply:
        if not params.get("fieldManager"):
            return _status(400, "BadRequest", "fieldManager is required for apply")
        if (body.get("metadata") or {}).get("name") != name:
            return _status(400, "BadRequest", "the name of the object does not match the URL")
        body = {k: v for k, v in body.items() if k != "status"}
        existing = self.objects.get(path)
        if existing is None:
            return _Reply(201, self.put(path, body))
        merged = _deep_merge(copy.deepcopy(existing), body)
        return _Reply(200, self._store(path, existing, merged))

    def _merge(self, path: str, sub: str, patch: Obj) -> _Reply:
        existing = self.objects.get(path)
        if existing is None:
            return _status(404, "NotFound", f"{path} not found")
        # A resourceVersion in the patch is a precondition, as on the real server.
        want = (patch.get("metadata") or {}).get("resourceVersion")
        if want is not None and want != existing["metadata"].get("resourceVersion"):
            return _status(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {path}: the object has been modified; "
                "please apply your changes to the latest version and try again",
            )
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
            return _Reply(200, scale)
        return _Reply(200, stored)

    def _store(self, path: str, before: Obj, after: Obj) -> Obj:
        meta = after["metadata"]
        meta["uid"] = before["metadata"]["uid"]  # immutable
        if after.get("spec") != before.get("spec"):
            meta["generation"] = int(before["metadata"].get("generation", 1)) + 1
        rv = next(self._counter)
        meta["resourceVersion"] = str(rv)
        self._record(Change(rv, path, before, copy.deepcopy(after)))
        self.objects[path] = after
        return copy.deepcopy(after)

    def _delete(self, path: str, options: Obj) -> _Reply:
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
        rv = next(self._counter)
        last = copy.deepcopy(existing)
        last["metadata"]["resourceVersion"] = str(rv)  # as etcd's delete revision
        self._record(Change(rv, path, existing, None, deleted=last))
        return _Reply(200, {"kind": "Status", "status": "Success"})


class _Selection:
    """Which stored objects a collection request (with its selectors) covers."""

    def __init__(self, collection: str, params: dict[str, str]) -> None:
        self.prefix, self.namespace, self.plural = _coords(collection)
        self.labels = _parse_selector(params.get("labelSelector", ""))
        self.fields = _parse_fields(params.get("fieldSelector", ""))

    def __call__(self, path: str, obj: Obj) -> bool:
        prefix, namespace, plural = _coords(path.rsplit("/", 1)[0])
        if (prefix, plural) != (self.prefix, self.plural):
            return False
        if self.namespace is not None and namespace != self.namespace:
            return False
        meta = obj.get("metadata") or {}
        got = {"metadata.name": meta.get("name"), "metadata.namespace": namespace or ""}
        if any(got[k] != v for k, v in self.fields.items()):
            return False
        labels = meta.get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())

    def event(self, change: Change) -> Obj | None:
        """The watch event ``change`` makes for this selection, if any."""
        was = change.before is not None and self(change.path, change.before)
        now = change.after is not None and self(change.path, change.after)
        if now:
            return {"type": "MODIFIED" if was else "ADDED", "object": copy.deepcopy(change.after)}
        if was:  # deleted, or its labels left the selection
            gone = change.deleted if change.after is None else change.after
            return {"type": "DELETED", "object": copy.deepcopy(gone)}
        return None


class _WatchStream:
    """One watch's body: the selected changes after ``since``, then new ones as they come.

    It ends at ``timeoutSeconds``, at :meth:`FakeApiServer.end_watches`, or when the client
    hangs up (the server cancels the handler reading it).
    """

    def __init__(
        self, fake: FakeApiServer, match: _Selection, since: int, timeout: float, initial: list[Obj]
    ) -> None:
        self._fake = fake
        self._match = match
        self._since = since
        self._timeout = timeout
        self._initial = initial
        self._generation = fake._watch_generation
        self._wakeup = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        fake = self._fake
        deadline = asyncio.get_running_loop().time() + self._timeout
        fake._wakeups.add(self._wakeup)
        fake._watch_opened.set()
        try:
            for event in self._initial:
                yield _line(event)
            while fake._watch_generation == self._generation:
                self._wakeup.clear()
                if self._since < fake._compacted:  # fell behind the retained history
                    yield _line({"type": "ERROR", "object": _status_body(410, "Expired", "gone")})
                    return
                for change in [c for c in fake.history if c.rv > self._since]:
                    self._since = change.rv
                    if (selected := self._match.event(change)) is not None:
                        yield _line(selected)
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    return
                # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a
                # cancellation that arrives just as the event is set, and the
                # cancelled reader would then wait here forever.
                try:
                    async with asyncio.timeout(left):
                        await self._wakeup.wait()
                except TimeoutError:
                    return
        finally:
            fake._wakeups.discard(self._wakeup)


def _line(event: Obj) -> bytes:
    return json.dumps(event).encode() + b"\n"


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


def _coords(collection: str) -> tuple[str, str | None, str]:
    """``(group/version prefix, namespace or None, plural)`` of a collection path."""
    parts = collection.strip("/").split("/")
    head = 2 if parts[0] == "api" else 3
    prefix = "/".join(parts[:head])
    if len(parts) == head + 3 and parts[head] == "namespaces":
        return prefix, parts[head + 1], parts[head + 2]
    return prefix, None, parts[-1]


def _parse_fields(text: str) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for term in filter(None, text.split(",")):
        key, sep, value = term.partition("=")
        if not sep or key not in ("metadata.name", "metadata.namespace"):
            raise ValueError(f"the fake supports metadata.name/namespace=value only, got {term!r}")
        wanted[key] = value.removeprefix("=")  # k==v is equality too
    return wanted


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


def _status(code: int, reason: str, message: str) -> _Reply:
    return _Reply(code, _status_body(code, reason, message))


def _status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
