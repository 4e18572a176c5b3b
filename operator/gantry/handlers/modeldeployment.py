"""kopf handlers for ModelDeployment: thin glue from events to the reconciler.

One level-based reconcile serves create, resume and update, and a resync loop
re-runs it for every known object every ``GANTRY_RESYNC_SECONDS``: that keeps
status truthful when pods change without a spec change and drives canary steps
and analysis intervals. The loop is the operator's own task fed by watch events,
not a kopf timer: kopf puts a finalizer on every object a timer serves, and a
finalizer would block deleting a ModelDeployment (and its namespace) whenever
the operator is not running. Children go through garbage collection; Gantry
needs no finalizer at all. A per-object lock keeps the loop and the change
handlers from reconciling one object at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
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
    # Progress and diff-base live in our own annotations; the status is ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
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
    task: asyncio.Task[None] | None = memo.get("resync")
    if task is not None:
        task.cancel()
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
        try:
            # Read afresh under the lock: a watch event's copy may predate a status
            # just written by the other path, and deciding from it would replay a step.
            body = await reconciler.kube.get(kinds.MODEL_DEPLOYMENT, name, namespace)
            if body is None:
                return False
            now = datetime.datetime.now(datetime.UTC)
            outcome = await reconciler.reconcile(body, now=now)
            await write_outcome(reconciler.kube, body, outcome, now=now)
        except ApiError as exc:
            if exc.retryable:
                raise kopf.TemporaryError(str(exc), delay=2) from exc
            raise
    return True


async def _resync_forever(memo: kopf.Memo) -> None:
    known: dict[tuple[str, str], None] = memo["known"]
    # Objects are resynced concurrently but bounded: one at a time made a pass
    # over N objects take N reconciles (a slow probe delayed every other object).
    gate = asyncio.Semaphore(RESYNC_CONCURRENCY)

    async def resync(namespace: str, name: str) -> None:
        async with gate:
            try:
                if not await _reconcile(namespace, name, memo):
                    known.pop((namespace, name), None)  # deleted; the watch says so too
            except (ApiError, kopf.TemporaryError) as exc:
                logger.warning("resync of %s/%s failed: %s", namespace, name, exc)
            except Exception:
                # One object's bug must not stop every other object's resync.
                logger.exception("resync of %s/%s crashed", namespace, name)

    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        await asyncio.gather(*(resync(ns, name) for ns, name in list(known)))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)
    memo["known"][(namespace, name)] = None
    await _reconcile(namespace, name, memo)


@kopf.on.event(GROUP, VERSION, PLURAL)
def track(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the set of objects the resync loop visits (no finalizer involved)."""
    meta = event["object"].get("metadata", {})
    key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
    known: dict[tuple[str, str], None] = memo["known"]
    if event["type"] == "DELETED":
        known.pop(key, None)
        reconciler: Reconciler = memo["reconciler"]
        reconciler.forget(*key)
        memo["locks"].pop(f"{key[0]}/{key[1]}", None)
    elif event["type"] in (None, "ADDED", "MODIFIED"):
        known[key] = None
