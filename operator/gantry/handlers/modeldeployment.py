"""kopf handlers for ModelDeployment: thin glue from events to the reconciler.

The control loop is the one controllers users trust are built on
(controller-runtime, Argo Rollouts): watches feed caches and a work queue;
workers reconcile one key at a time from the caches; nothing is sent to the API
server while nothing changes.

* **Watches.** kopf watches ModelDeployments (and keeps a copy of each, newest
  resourceVersion first, in a store the operator's own writes also feed).
  :class:`~gantry.kube.cached.CachedKubeClient` watches every child kind and
  Pods with the server-side selector ``app.kubernetes.io/managed-by=gantry``,
  so its memory follows Gantry's objects, not the cluster's.
* **Queue.** A ModelDeployment is queued when it appears, when its spec
  (generation) or annotations (gates) change, and when any child of it changes
  (a Deployment by its ownerReference, a Pod through its Deployment). A status-only
  change of the ModelDeployment, usually our own write, queues nothing.
  :class:`~gantry.handlers.queue.WorkQueue` coalesces keys, runs one reconcile per
  key at a time and backs failures off per key.
* **Time.** Each reconcile's :func:`~gantry.handlers.cadence.next_look` queues the
  key again when time-based work is due (a pause ending, the next analysis, a
  model still loading, the next health probe of a settled object). A slow,
  jittered resync of every object (``GANTRY_RESYNC_SECONDS``) is only a safety net.

* **Leader election** (``GANTRY_LEADER_ELECTION=true``, what the chart sets when
  it runs more than one replica): every replica watches and keeps warm caches;
  only the holder of the ``coordination.k8s.io/v1`` Lease reconciles, and its
  client refuses every write the moment its renew deadline passes
  (:class:`~gantry.kube.client.NotLeaderError`), before the Lease can expire
  and a standby take over. A graceful stop releases the Lease at once.

kopf is used only as a watch: its change-detecting handlers (create/update/
resume) would keep their progress and a whole copy of the spec in annotations
on every object for a diff Gantry never uses, and its timers put a finalizer
on every object, which would block deleting a ModelDeployment (and its
namespace) whenever the operator is not running. Children go through garbage
collection; Gantry needs no finalizer at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import random
from collections.abc import Mapping
from typing import Any

import kopf

from gantry.api.spec import GROUP, KIND, PLURAL, VERSION
from gantry.handlers.cadence import Cadence, next_look
from gantry.handlers.queue import WorkQueue
from gantry.kube import (
    ApiError,
    ClusterConfig,
    KubeClient,
    Manifest,
    NotLeaderError,
    Resource,
    load,
)
from gantry.kube import resources as kinds
from gantry.kube.cached import CachedKubeClient, CacheNotSyncedError, Watched, namespace_filter
from gantry.kube.store import Store
from gantry.leader import ElectionConfig, KubeLeaseStore, LeaderElector
from gantry.metrics import OperatorMetrics
from gantry.reconciler import OwnerGoneError, Reconciler, Settings, owner_gone, write_outcome
from gantry.render import CHILD_KINDS
from gantry.render.labels import DEPLOYMENT as DEPLOYMENT_LABEL
from gantry.render.labels import MANAGED_BY, MANAGED_BY_GANTRY

RESYNC_SECONDS = float(os.environ.get("GANTRY_RESYNC_SECONDS", "600"))
WORKERS = int(os.environ.get("GANTRY_WORKERS", "16"))
CADENCE = Cadence(
    poll=float(os.environ.get("GANTRY_POLL_SECONDS", "5")),
    probe=float(os.environ.get("GANTRY_PROBE_SECONDS", "60")),
    poll_max=float(os.environ.get("GANTRY_POLL_MAX_SECONDS", "30")),
)
SYNC_TIMEOUT_SECONDS = float(os.environ.get("GANTRY_CACHE_SYNC_TIMEOUT_SECONDS", "30"))
MAX_BACKOFF_SECONDS = float(os.environ.get("GANTRY_MAX_BACKOFF_SECONDS", "300"))
FIELD_MANAGER = "gantry"
LEADER_ELECTION = os.environ.get("GANTRY_LEADER_ELECTION", "false").lower() in ("1", "true")
SELECTOR = f"{MANAGED_BY}={MANAGED_BY_GANTRY}"
# Kinds every Kubernetes serves; any other child kind comes from a CRD that may be absent.
BUILT_IN = frozenset({kinds.DEPLOYMENT, kinds.SERVICE, kinds.POD, kinds.HPA, kinds.PDB})
logger = logging.getLogger("gantry.handlers")

Key = tuple[str, str]


def watched_kinds() -> list[Watched]:
    """Pods and every child kind; those from CRDs with the CRD to watch for."""
    out = [Watched(kinds.POD)]
    for child in CHILD_KINDS:
        res = kinds.KNOWN[(child.api_version, child.kind)]
        group = res.api_version.rpartition("/")[0]
        out.append(Watched(res, None if res in BUILT_IN else f"{res.plural}.{group}"))
    return out


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    namespaces: list[str] = list(memo.get("namespaces") or [])
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    if namespaces and not any(set(n) & set("*?[!") for n in namespaces):
        # Exact namespaces need no namespace or CRD scanning, which a namespaced Role
        # forbids (kopf would log 403s at start-up before falling back).
        settings.scanning.disabled = True
    elector = _elector(memo) if LEADER_ELECTION else None
    kube = build(memo, _config(memo), settings=Settings.from_env(), elector=elector)
    await kube.start()
    memo["tasks"] = [
        asyncio.create_task(_worker(memo), name=f"gantry-worker-{i}") for i in range(WORKERS)
    ] + [asyncio.create_task(_resync_forever(memo), name="gantry-resync")]
    if elector is not None:
        memo["election"] = asyncio.create_task(elector.run(), name="gantry-leader-election")


def build(
    memo: kopf.Memo,
    config: ClusterConfig,
    *,
    settings: Settings,
    elector: LeaderElector | None = None,
) -> CachedKubeClient:
    """Fill ``memo`` with the queue, the cached client, the stores and the reconciler.

    Starts nothing (``startup`` starts the informers, workers and election), so tests
    can build exactly what the operator runs, on a fake API server.
    """
    namespaces: list[str] = list(memo.get("namespaces") or [])
    metrics: OperatorMetrics = memo["metrics"]
    metrics.count_tasks_of(asyncio.get_running_loop())
    memo["queue"] = WorkQueue[Key](max_backoff=MAX_BACKOFF_SECONDS)
    leading = asyncio.Event()
    memo["leading"] = leading
    if elector is None:
        leading.set()
    else:
        metrics.set_leader(False)
    kube = CachedKubeClient(
        config,
        watched=watched_kinds(),
        namespaces=namespaces,
        selector=SELECTOR,
        on_change=lambda res, _kind, obj: _child_changed(memo, res, obj),
        field_manager=FIELD_MANAGER,
        may_write=elector.is_leader if elector is not None else None,
    )
    memo["kube"] = kube
    memo["bodies"] = kube.passive_store(kinds.MODEL_DEPLOYMENT, namespace_filter(namespaces))
    memo["seen"] = {}
    memo["quiet"] = {}
    memo["reconciler"] = Reconciler(kube, settings, metrics)
    return kube


def _elector(memo: kopf.Memo) -> LeaderElector:
    """This replica's campaign for the Lease, on a client of its own (never write-gated)."""
    config = _config(memo)
    env = os.environ
    namespace = env.get("GANTRY_LEADER_ELECTION_NAMESPACE") or config.namespace
    name = env.get("GANTRY_LEADER_ELECTION_NAME", "gantry-leader")
    client = KubeClient(config, field_manager=FIELD_MANAGER)
    memo["election_client"] = client
    metrics: OperatorMetrics = memo["metrics"]

    # memo["leading"] is made by build(), after this elector: read it when called.
    def started() -> None:
        logger.info("leading: this replica reconciles now (Lease %s/%s)", namespace, name)
        memo["leading"].set()
        metrics.set_leader(True)
        _queue_everything(memo)

    def stopped() -> None:
        logger.warning("not leading: writes stop (Lease %s/%s)", namespace, name)
        memo["leading"].clear()
        metrics.set_leader(False)

    return LeaderElector(
        KubeLeaseStore(client, name=name, namespace=namespace),
        identity=client.identity,
        config=ElectionConfig(
            lease_duration=int(env.get("GANTRY_LEASE_DURATION_SECONDS", "15")),
            renew_deadline=float(env.get("GANTRY_RENEW_DEADLINE_SECONDS", "10")),
            retry_period=float(env.get("GANTRY_RETRY_PERIOD_SECONDS", "2")),
        ),
        on_started_leading=started,
        on_stopped_leading=stopped,
        on_new_leader=lambda who: logger.info("the leader is %s", who or "nobody"),
    )


def _forget(memo: kopf.Memo, key: Key) -> None:
    """Drop everything kept about an object that no longer exists."""
    logger.info("%s/%s is gone; forgetting it", *key)
    bodies: Store = memo["bodies"]
    bodies.remove(*key)
    memo["seen"].pop(key, None)
    memo["quiet"].pop(key, None)
    queue: WorkQueue[Key] = memo["queue"]
    queue.drop(key)
    reconciler: Reconciler = memo["reconciler"]
    reconciler.forget(*key)


def _queue_everything(memo: kopf.Memo) -> None:
    """Queue every known object behind anything an event queued (a resync, a new leader)."""
    queue: WorkQueue[Key] = memo["queue"]
    for body in memo["bodies"]:
        meta = body.get("metadata") or {}
        queue.add((str(meta.get("namespace", "")), str(meta.get("name", ""))), urgent=False)


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
        token=config.current_token(),
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        default_namespace=config.namespace,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    # Workers and the resync stop before the client they use is closed under them;
    # then the Lease is released, so a standby takes over without waiting for it to expire.
    tasks: list[asyncio.Task[None]] = memo.get("tasks") or []
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    election: asyncio.Task[None] | None = memo.get("election")
    if election is not None:
        election.cancel()  # the elector releases the Lease on its way out
        with contextlib.suppress(asyncio.CancelledError):
            await election
        client: KubeClient = memo["election_client"]
        await client.close()
    queue: WorkQueue[Key] | None = memo.get("queue")
    if queue is not None:
        queue.shutdown()
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        await reconciler.close()


@kopf.on.probe(id="reconciles")
def probe(memo: kopf.Memo, **_: Any) -> int:
    reconciler: Reconciler | None = memo.get("reconciler")
    return reconciler.reconciled if reconciler is not None else 0


async def _reconcile(key: Key, memo: kopf.Memo) -> float | None:
    """Reconcile one object from the caches; seconds until it is due again (None: gone).

    The body comes from the store, which holds the newest version seen by the
    watch or returned by our own last write: never one that predates a status
    this operator just wrote, so a step is not replayed.
    """
    reconciler: Reconciler = memo["reconciler"]
    bodies: Store = memo["bodies"]
    kube: CachedKubeClient = memo["kube"]
    await kube.wait_synced(within=SYNC_TIMEOUT_SECONDS)
    body = bodies.get(*key)  # a private copy: the store hands out no shared dicts
    if body is None:
        return None
    uid = (body.get("metadata") or {}).get("uid")
    now = datetime.datetime.now(datetime.UTC)
    try:
        outcome = await reconciler.reconcile(body, now=now)
        await write_outcome(kube, body, outcome, now=now)
    except OwnerGoneError:
        _forget(memo, key)
        return None
    except ApiError as exc:
        # A 404 on our own status write: the object may be gone without a DELETED
        # event (kopf stops watching a namespace being deleted). Ask the server.
        if exc.not_found and await owner_gone(kube, key[0], key[1], uid):
            _forget(memo, key)
            return None
        raise
    status = outcome.status if outcome.status is not None else body.get("status")
    quiet: dict[Key, int] = memo["quiet"]
    changed = outcome.status is not None or bool(outcome.events)
    quiet[key] = 0 if changed else quiet.get(key, 0) + 1
    return next_look(outcome.requeue_after, status, CADENCE, quiet[key])


async def _worker(memo: kopf.Memo) -> None:
    queue: WorkQueue[Key] = memo["queue"]
    leading: asyncio.Event = memo["leading"]
    metrics: OperatorMetrics = memo["metrics"]
    while True:
        await leading.wait()
        metrics.queue_depth.set(len(queue))
        key = await queue.get()
        metrics.queue_in_flight.set(queue.in_flight)
        if not leading.is_set():
            queue.done(key)  # a new leader queues every object again
            continue
        try:
            due = await _reconcile(key, memo)
        except asyncio.CancelledError:
            raise
        except NotLeaderError:
            logger.info("reconcile of %s/%s stopped: leadership lost", *key)
        except CacheNotSyncedError as exc:
            # Not the object's fault, and nothing was read or written: say why, loudly.
            delay = queue.retry(key)
            metrics.queue_retries.inc()
            metrics.reconciles.labels("error").inc()
            logger.error("cannot reconcile %s/%s: %s; retry in %.0fs", *key, exc, delay)
        except ApiError as exc:
            metrics.queue_retries.inc()
            delay = queue.retry(key)
            logger.warning("reconcile of %s/%s failed: %s; retry in %.0fs", *key, exc, delay)
        except Exception:
            # One object's bug must not stop any other object's reconcile.
            metrics.queue_retries.inc()
            delay = queue.retry(key)
            logger.exception("reconcile of %s/%s crashed; retry in %.0fs", *key, delay)
        else:
            queue.forget(key)
            if due is not None:
                queue.add_after(key, due)
        finally:
            queue.done(key)
            metrics.queue_in_flight.set(queue.in_flight)
            metrics.queue_depth.set(len(queue))


async def _resync_forever(memo: kopf.Memo) -> None:
    """Queue every object every ~GANTRY_RESYNC_SECONDS: a safety net, not the clock."""
    while True:
        await asyncio.sleep(RESYNC_SECONDS * random.uniform(0.9, 1.1))
        _queue_everything(memo)


def _controller_owner(obj: Mapping[str, Any]) -> str | None:
    """The name of the ModelDeployment controlling ``obj``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if (
            ref.get("controller")
            and ref.get("kind") == KIND
            and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")
        ):
            return str(ref.get("name"))
    return None


def owner_key(res: Resource, obj: Manifest, deployments: Store) -> Key | None:
    """Which ModelDeployment a child's change concerns.

    Children carry an ownerReference to it; a Pod's owner is a ReplicaSet, so it
    is traced through the Deployment its ``serving.gantry.dev/deployment`` label names.
    """
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")
    if res is kinds.POD:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        deployment = deployments.get(namespace, str(labels.get(DEPLOYMENT_LABEL, "")))
        if deployment is None:
            return None
        obj = deployment
    owner = _controller_owner(obj)
    return None if owner is None else (namespace, owner)


def _child_changed(memo: kopf.Memo, res: Resource, obj: Manifest) -> None:
    queue: WorkQueue[Key] | None = memo.get("queue")
    reconciler: Reconciler | None = memo.get("reconciler")
    if queue is None or reconciler is None:
        return
    if res is kinds.CRD:
        # A child kind appeared or went away: what failed for want of it is retried now.
        _queue_everything(memo)
        return
    kube: CachedKubeClient = memo["kube"]
    key = owner_key(res, obj, kube.stores[kinds.DEPLOYMENT])
    if key is not None and key in memo["bodies"]:
        queue.add(key)


def _trigger(body: Mapping[str, Any]) -> tuple[int, str]:
    """What makes a reconcile due: the spec's generation and the annotations (gates)."""
    meta = body.get("metadata") or {}
    annotations = json.dumps(meta.get("annotations") or {}, sort_keys=True)
    return int(meta.get("generation") or 0), annotations


@kopf.on.event(GROUP, VERSION, PLURAL)
async def track(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the newest copy of each object, and queue it when its spec or gates change."""
    body: dict[str, Any] = dict(event["object"])
    meta = body.get("metadata", {})
    key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
    bodies: Store = memo["bodies"]
    queue: WorkQueue[Key] = memo["queue"]
    seen: dict[Key, tuple[int, str]] = memo["seen"]
    if event["type"] == "DELETED":
        _forget(memo, key)
        return
    if event["type"] not in (None, "ADDED", "MODIFIED"):
        return
    bodies.put(body)
    trigger = _trigger(body)
    if seen.get(key) != trigger:
        seen[key] = trigger
        queue.add(key)
