"""kopf handlers for ModelDeployment: thin glue from events to the reconciler.

One level-based reconcile serves every case, so Gantry uses kopf only as a
watch: a raw event handler schedules a reconcile when an object appears or its
spec (generation) or annotations (the gates) change, never for a status-only
change, which is usually our own write. kopf's change-detecting handlers
(create/update/resume) would keep their progress and a whole copy of the spec in
annotations on every object (``kubectl describe`` shows them) for a diff Gantry
never uses.

A resync loop re-runs the reconcile for every known object every
``GANTRY_RESYNC_SECONDS``: that keeps status truthful when pods change without a
spec change, drives canary steps and analysis intervals, and retries what
failed. It is the operator's own task, not a kopf timer: kopf puts a finalizer
on every object a timer serves, and a finalizer would block deleting a
ModelDeployment (and its namespace) whenever the operator is not running.
Children go through garbage collection; Gantry needs no finalizer at all. A
per-object lock keeps the loop and the event-driven runs from reconciling one
object at once, and events arriving during a run coalesce into one more run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

from gantry.api.spec import GROUP, PLURAL, VERSION
from gantry.kube import ApiError, ClusterConfig, KubeClient, load
from gantry.kube import resources as kinds
from gantry.metrics import OperatorMetrics
from gantry.reconciler import Reconciler, Settings, write_outcome

RESYNC_SECONDS = float(os.environ.get("GANTRY_RESYNC_SECONDS", "5"))
RESYNC_CONCURRENCY = int(os.environ.get("GANTRY_RESYNC_CONCURRENCY", "16"))
FIELD_MANAGER = "gantry"
logger = logging.getLogger("gantry.handlers")


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    metrics: OperatorMetrics = memo["metrics"]
    memo["reconciler"] = Reconciler(
        KubeClient(_config(memo), field_manager=FIELD_MANAGER),
        Settings.from_env(),
        metrics,
    )
    memo["locks"] = {}
    memo["known"] = {}
    memo["seen"] = {}
    memo["runs"] = {}
    memo["dirty"] = set()
    memo["resync"] = asyncio.create_task(_resync_forever(memo))


def _config(memo: kopf.Memo) -> ClusterConfig:
    """The kubeconfig, read once for kopf and the operator's own client alike.

    Reading it twice would write inline credentials to temp files twice.
    """
    if "config" not in memo:
        memo["config"] = load(os.environ.get("GANTRY_KUBECONFIG") or None)
    config: ClusterConfig = memo["config"]
    return config


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    config = _config(memo)
    return kopf.ConnectionInfo(
        server=config.server,
        ca_path=config.ca_file,
        insecure=config.insecure,
        token=config.token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        default_namespace=config.namespace,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    # The resync loop and any event-driven run still in flight stop before the client
    # they use is closed under them.
    runs: dict[tuple[str, str], asyncio.Task[None]] = memo.get("runs") or {}
    tasks = [t for t in (memo.get("resync"), *runs.values()) if t is not None]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        await reconciler.close()


@kopf.on.probe(id="reconciles")
def probe(memo: kopf.Memo, **_: Any) -> int:
    reconciler: Reconciler | None = memo.get("reconciler")
    return reconciler.reconciled if reconciler is not None else 0


async def _reconcile(namespace: str, name: str, memo: kopf.Memo) -> bool:
    """Reconcile one object; False when it no longer exists."""
    reconciler: Reconciler = memo["reconciler"]
    locks: dict[str, asyncio.Lock] = memo["locks"]
    async with locks.setdefault(f"{namespace}/{name}", asyncio.Lock()):
        # Read afresh under the lock: a watch event's copy may predate a status
        # just written by the other path, and deciding from it would replay a step.
        body = await reconciler.kube.get(kinds.MODEL_DEPLOYMENT, name, namespace)
        if body is None:
            return False
        now = datetime.datetime.now(datetime.UTC)
        outcome = await reconciler.reconcile(body, now=now)
        await write_outcome(reconciler.kube, body, outcome, now=now)
    return True


async def _reconcile_logged(namespace: str, name: str, memo: kopf.Memo) -> bool:
    """:func:`_reconcile` for the operator's own tasks: a failure is logged, not raised.

    The resync loop retries whatever failed, and one object's bug must not stop any
    other object's reconcile. False only when the object no longer exists.
    """
    try:
        return await _reconcile(namespace, name, memo)
    except ApiError as exc:
        logger.warning("reconcile of %s/%s failed: %s", namespace, name, exc)
    except Exception:
        logger.exception("reconcile of %s/%s crashed", namespace, name)
    return True


async def _resync_forever(memo: kopf.Memo) -> None:
    known: dict[tuple[str, str], None] = memo["known"]
    # Objects are resynced concurrently but bounded: one at a time made a pass
    # over N objects take N reconciles (a slow probe delayed every other object).
    gate = asyncio.Semaphore(RESYNC_CONCURRENCY)

    async def resync(namespace: str, name: str) -> None:
        async with gate:
            if not await _reconcile_logged(namespace, name, memo):
                known.pop((namespace, name), None)  # deleted; the watch says so too

    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        await asyncio.gather(*(resync(ns, name) for ns, name in list(known)))


def _trigger(body: Mapping[str, Any]) -> tuple[int, str]:
    """What makes a reconcile due: the spec's generation and the annotations (gates)."""
    meta = body.get("metadata") or {}
    annotations = json.dumps(meta.get("annotations") or {}, sort_keys=True)
    return int(meta.get("generation") or 0), annotations


def _schedule(memo: kopf.Memo, namespace: str, name: str) -> None:
    """Reconcile soon; a run already in flight runs once more instead (coalesced)."""
    key = (namespace, name)
    runs: dict[tuple[str, str], asyncio.Task[None]] = memo["runs"]
    dirty: set[tuple[str, str]] = memo["dirty"]
    running = runs.get(key)
    if running is not None and not running.done():
        dirty.add(key)
        return
    runs[key] = asyncio.create_task(_run(memo, namespace, name))


async def _run(memo: kopf.Memo, namespace: str, name: str) -> None:
    key = (namespace, name)
    dirty: set[tuple[str, str]] = memo["dirty"]
    while True:
        dirty.discard(key)
        await _reconcile_logged(namespace, name, memo)
        if key not in dirty:
            return


@kopf.on.event(GROUP, VERSION, PLURAL)
async def track(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the objects the resync loop visits, and reconcile what changed at once."""
    body = event["object"]
    meta = body.get("metadata", {})
    key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
    known: dict[tuple[str, str], None] = memo["known"]
    seen: dict[tuple[str, str], tuple[int, str]] = memo["seen"]
    if event["type"] == "DELETED":
        known.pop(key, None)
        seen.pop(key, None)
        reconciler: Reconciler = memo["reconciler"]
        reconciler.forget(*key)
        memo["locks"].pop(f"{key[0]}/{key[1]}", None)
        return
    if event["type"] not in (None, "ADDED", "MODIFIED"):
        return
    known[key] = None
    trigger = _trigger(body)
    if seen.get(key) != trigger:
        seen[key] = trigger
        _schedule(memo, *key)
