"""kopf handlers for ModelDeployment: thin glue from events to the reconciler.

One level-based reconcile serves create, resume, update and a periodic timer;
the timer keeps status truthful when pods change without a spec change and
drives canary steps and analysis intervals. A per-object lock keeps the timer
and change handlers from reconciling the same object at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from typing import Any

import kopf

from gantry.api.spec import GROUP, PLURAL, VERSION
from gantry.kube import ApiError, KubeClient, load
from gantry.metrics import OperatorMetrics
from gantry.reconciler import Outcome, Reconciler, Settings

RESYNC_SECONDS = float(os.environ.get("GANTRY_RESYNC_SECONDS", "5"))
FIELD_MANAGER = "gantry"


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
    config = load(os.environ.get("GANTRY_KUBECONFIG") or None)
    metrics: OperatorMetrics = memo["metrics"]
    memo["reconciler"] = Reconciler(
        KubeClient(config, field_manager=FIELD_MANAGER),
        Settings.from_env(),
        metrics,
    )
    memo["locks"] = {}


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    config = load(os.environ.get("GANTRY_KUBECONFIG") or None)
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
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        await reconciler.close()


@kopf.on.probe(id="reconciles")
def probe(memo: kopf.Memo, **_: Any) -> int:
    reconciler: Reconciler | None = memo.get("reconciler")
    return reconciler.reconciled if reconciler is not None else 0


def _apply(outcome: Outcome, body: kopf.Body, patch: kopf.Patch) -> None:
    if outcome.status is not None:
        patch.status.update(outcome.status)
    for key in outcome.consumed_annotations:
        patch.metadata.annotations[key] = None
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


async def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    reconciler: Reconciler = memo["reconciler"]
    locks: dict[str, asyncio.Lock] = memo["locks"]
    key = f"{body.metadata.namespace}/{body.metadata.name}"
    async with locks.setdefault(key, asyncio.Lock()):
        try:
            outcome = await reconciler.reconcile(
                dict(body), now=datetime.datetime.now(datetime.UTC)
            )
        except ApiError as exc:
            if exc.retryable:
                raise kopf.TemporaryError(str(exc), delay=2) from exc
            raise
    _apply(outcome, body, patch)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile(body, patch, memo)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile(body, patch, memo)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def forget(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Children go through Kubernetes garbage collection (ownerReferences); no finalizer.
    reconciler: Reconciler = memo["reconciler"]
    reconciler.forget(body.metadata.namespace or "", body.metadata.name or "")
    memo["locks"].pop(f"{body.metadata.namespace}/{body.metadata.name}", None)
