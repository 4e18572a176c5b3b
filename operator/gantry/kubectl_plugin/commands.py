"""What the plugin's commands do against the API server: read, watch, set a gate.

Everything goes through :class:`gantry.kube.KubeClient` (passed in, so tests hand in a fake);
drawing is :func:`gantry.kubectl_plugin.render.render`'s job, framing
:func:`gantry.kubectl_plugin.screen.frame`'s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from gantry.api.spec import GROUP
from gantry.kube import ApiError, Manifest, Resource
from gantry.kube.resources import MODEL_DEPLOYMENT
from gantry.kubectl_plugin.render import render
from gantry.kubectl_plugin.screen import frame

# The one-shot gates the operator consumes (gantry.rollout.types; a test keeps them equal).
PROMOTE_ANNOTATION = f"{GROUP}/promote"
ABORT_ANNOTATION = f"{GROUP}/abort"
PAUSE_ANNOTATION = f"{GROUP}/pause"
RESUME_ANNOTATION = f"{GROUP}/resume"

FIELD_MANAGER = "kubectl-gantry"


class PluginError(Exception):
    """A failure to report in one line, without a traceback."""


class Client(Protocol):
    """The part of :class:`gantry.kube.KubeClient` the commands use."""

    async def get(
        self, res: Resource, name: str, namespace: str | None = None
    ) -> Manifest | None: ...

    async def patch_merge(
        self, res: Resource, name: str, namespace: str | None, patch: Manifest, *, sub: str = ""
    ) -> Manifest: ...


@dataclass(frozen=True)
class Target:
    name: str
    namespace: str

    def __str__(self) -> str:
        return f'modeldeployment "{self.name}" in namespace "{self.namespace}"'


@dataclass(frozen=True)
class Gate:
    """One manual gate: the annotation to set and how to say what was asked."""

    verb: str
    annotation: str
    value: str


def gate(verb: str, *, step: bool = False) -> Gate:
    """The gate of ``promote`` (``--step``: the current step only), ``abort``, ``pause``,
    ``resume``."""
    annotations = {
        "promote": PROMOTE_ANNOTATION,
        "abort": ABORT_ANNOTATION,
        "pause": PAUSE_ANNOTATION,
        "resume": RESUME_ANNOTATION,
    }
    if verb not in annotations:
        raise ValueError(f"no gate {verb!r}")
    return Gate(verb, annotations[verb], "step" if step and verb == "promote" else "true")


# How KubeClient reports a failed transport (refused, reset, timed out): a 503 of its own
# making, not the server's (whose 503s say "ServiceUnavailable").
_TRANSPORT_FAILURE = (503, "Unavailable")


def _failure(target: Target, exc: ApiError) -> PluginError:
    if exc.not_found:
        return PluginError(f"{target} not found")
    if (exc.status, exc.reason) == _TRANSPORT_FAILURE:
        return PluginError(f"{target}: cannot reach the API server: {exc.message}")
    return PluginError(f"{target}: the API server refused: {exc}")


async def fetch(client: Client, target: Target) -> Manifest:
    """The ModelDeployment, or a :class:`PluginError` that says why not."""
    try:
        md = await client.get(MODEL_DEPLOYMENT, target.name, target.namespace)
    except ApiError as exc:
        raise _failure(target, exc) from exc
    if md is None:
        raise PluginError(f"{target} not found")
    return md


async def request_gate(client: Client, target: Target, g: Gate) -> str:
    """Set the gate's annotation (merge patch) and return what was requested, in words.

    A merge patch of a missing object is a 404, so a typo in the name never creates anything.
    """
    patch = {"metadata": {"annotations": {g.annotation: g.value}}}
    try:
        await client.patch_merge(MODEL_DEPLOYMENT, target.name, target.namespace, patch)
    except ApiError as exc:
        raise _failure(target, exc) from exc
    what = "promote (current step only)" if g.value == "step" else g.verb
    return (
        f"modeldeployment.{GROUP}/{target.name} in namespace {target.namespace}: "
        f"{what} requested ({g.annotation}={g.value})"
    )


def _content(md: Manifest) -> str:
    """The object's state for change detection, without bookkeeping that changes alone."""
    meta = {k: v for k, v in md.get("metadata", {}).items() if k != "managedFields"}
    return json.dumps({**md, "metadata": meta}, sort_keys=True, default=str)


@dataclass(frozen=True)
class Clock:
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep


async def get(client: Client, target: Target, out: TextIO, *, clock: Clock | None = None) -> None:
    clock = clock or Clock()
    md = await fetch(client, target)
    out.write("".join(f"{line}\n" for line in render(md, now=clock.now())))
    out.flush()


async def _read(client: Client, target: Target) -> Manifest | PluginError:
    try:
        md = await client.get(MODEL_DEPLOYMENT, target.name, target.namespace)
    except ApiError as exc:
        return _failure(target, exc)
    return md if md is not None else PluginError(f"{target} not found")


def _picture(seen: Manifest | PluginError, now: datetime) -> tuple[list[str], str]:
    """The lines to draw and the state they show (frames repeat only when it changes)."""
    if isinstance(seen, PluginError):
        text = f"error: {seen}; still watching"
        return [text], text
    return render(seen, now=now), _content(seen)


async def watch(
    client: Client,
    target: Target,
    out: TextIO,
    *,
    tty: bool,
    duration: float | None = None,
    interval: float = 1.0,
    clock: Clock | None = None,
) -> None:
    """Poll the object every ``interval`` seconds and draw it for ``duration`` seconds (None:
    until Ctrl-C).

    A terminal is repainted every poll, so ages move; elsewhere a frame is written only when
    the object changed. Once the first frame is drawn, a missing object or an API error is
    drawn as a frame of its own and polling goes on: the object may come back, the server
    may recover.

    Raises:
        PluginError: the object cannot be read at the start.
    """
    clock = clock or Clock()
    deadline = None if duration is None else clock.monotonic() + duration
    seen: Manifest | PluginError = await fetch(client, target)
    first, shown = True, ""
    while True:
        lines, state = _picture(seen, clock.now())
        if tty or state != shown:
            out.write(frame(lines, tty=tty, first=first))
            out.flush()
            first, shown = False, state
        pause = interval if deadline is None else min(interval, deadline - clock.monotonic())
        if pause <= 0:
            return
        await clock.sleep(pause)
        seen = await _read(client, target)
