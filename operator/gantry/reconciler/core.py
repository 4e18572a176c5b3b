"""The reconcile's order of steps: observe, decide, apply, report.

Each step delegates to a pure module (render, rollout, status, scaling,
:mod:`gantry.reconciler.facts`) or to an I/O module (kube, health, analysis);
this file only orders them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from gantry.analysis import AnalysisProviders, AnalysisTarget, PodEndpoint
from gantry.analysis.measurement import Measurement
from gantry.api.plan import Owner, ServingPlan
from gantry.api.spec import ModelDeploymentSpec, ScalingProvider
from gantry.api.status import (
    CanaryStatus,
    GpuStatus,
    ModelDeploymentStatus,
)
from gantry.health import ACCESS_TOKEN_HEADER, ProbePool, ProbeTarget
from gantry.kube import ApiError, KubeClient, Manifest, Resource, resource_of
from gantry.kube import resources as kinds
from gantry.metrics import OperatorMetrics
from gantry.reconciler.facts import (
    APPLIED_ANNOTATION,
    Outcome,
    alive,
    deployment_of,
    describe_validation_error,
    event_manifest,
    holder,
    owned_by,
    pod_revision,
    previous_status,
    readiness,
    refuse_unknown_gates,
    rollout_summary,
    running_pods,
    scaling_status,
    served_model,
    service_endpoints,
    spec_digest,
    stamp_applied,
    status_json,
)
from gantry.reconciler.probes import PodProbe, model_health, model_ready_by_deployment
from gantry.render import CHILD_KINDS, render_children, revision, selector_string
from gantry.render.labels import DEPLOYMENT as DEPLOYMENT_LABEL
from gantry.rollout import Decision, Observations, decide
from gantry.scaling import (
    Allocation,
    BuiltinDecision,
    MetricsReader,
    PodReading,
    ScrapeTarget,
    accrued,
    allocation,
    decide_builtin,
    gpu_status,
)
from gantry.scaling.builtin import resize
from gantry.status.child_failures import (
    ChildFailure,
    FailureKind,
    describe_conflict,
    describe_refusal,
    manifests_hash,
    record,
)
from gantry.status.conditions import (
    Sizing,
    StatusInputs,
    Transition,
    build_status,
    transitions,
)
from gantry.status.observe import (
    DeploymentObservation,
    observe_deployment,
    observe_pods,
)

SCALE_MANAGER = "gantry-scale"
logger = logging.getLogger("gantry.reconciler")
BUILTIN = ScalingProvider.BUILTIN


@dataclass(frozen=True)
class Settings:
    """Operator tunables (environment variables of ``gantry run``)."""

    probe_timeout: float = 2.0
    probe_concurrency: int = 16
    scrape_timeout: float = 3.0
    prometheus_url: str | None = None
    cluster_domain: str = "cluster.local"
    # PyTriton restricts Triton's repository API (where load failures are read)
    # to holders of this token; a stock tritonserver needs none.
    triton_access_token: str | None = None
    # Seconds between two reads of the pods' metrics by the builtin scaler (the rate
    # metrics are deltas between reads; reconciles in between reuse the last decision).
    scale_interval: float = 15.0
    # Probes started per second across every object, and how long a model-ready
    # answer stands while its pod does not change (see gantry.health.pool).
    probe_rate: float = 50.0
    probe_ready_interval: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            probe_timeout=float(env.get("GANTRY_PROBE_TIMEOUT", cls.probe_timeout)),
            probe_concurrency=int(env.get("GANTRY_PROBE_CONCURRENCY", cls.probe_concurrency)),
            scrape_timeout=float(env.get("GANTRY_SCRAPE_TIMEOUT", cls.scrape_timeout)),
            prometheus_url=env.get("GANTRY_PROMETHEUS_URL") or None,
            cluster_domain=env.get("GANTRY_CLUSTER_DOMAIN", cls.cluster_domain),
            triton_access_token=env.get("GANTRY_TRITON_ACCESS_TOKEN") or None,
            scale_interval=float(env.get("GANTRY_SCALE_INTERVAL", cls.scale_interval)),
            probe_rate=float(env.get("GANTRY_PROBES_PER_SECOND", cls.probe_rate)),
            probe_ready_interval=float(
                env.get("GANTRY_PROBE_READY_SECONDS", cls.probe_ready_interval)
            ),
        )


async def write_outcome(
    kube: KubeClient, body: Mapping[str, Any], outcome: Outcome, *, now: datetime
) -> None:
    """Write what a reconcile decided: status, consumed gates, events (in that order).

    The status goes first: a gate annotation is removed only once the decision
    it caused is recorded, so a failure in between replays the gate at worst.
    The status is written only onto the version it was decided from.
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if outcome.status is not None:
        # The version decided from is a precondition: if the object changed since (a
        # spec edit, or our own earlier write whose answer was lost), the server says
        # 409 and the next reconcile decides again from the newer copy, instead of
        # this one recording a step twice.
        patch: dict[str, Any] = {"status": outcome.status}
        if meta.get("resourceVersion"):
            patch["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        await kube.patch_merge(kinds.MODEL_DEPLOYMENT, name, namespace, patch, sub="status")
    if outcome.consumed_annotations:
        gone: dict[str, Any] = dict.fromkeys(outcome.consumed_annotations)
        await kube.patch_merge(
            kinds.MODEL_DEPLOYMENT, name, namespace, {"metadata": {"annotations": gone}}
        )
    for index, event in enumerate(outcome.events):
        await _post_event(kube, event_manifest(meta, event, now, index))


EVENT_ATTEMPTS = 3


async def _post_event(kube: KubeClient, manifest: Manifest) -> None:
    """Post one Event, retrying a transient failure briefly; never fail the reconcile.

    The decision behind it is already recorded in the status, so a retried reconcile
    would not send it again: a few quick tries here are the only second chance, and a
    lost Event (or a namespace being deleted) must not stop the events after it.
    """
    for attempt in range(1, EVENT_ATTEMPTS + 1):
        try:
            await kube.create(manifest)
            return
        except ApiError as exc:
            if exc.conflict and attempt > 1:
                return  # our earlier try created it; only its answer was lost
            if not exc.retryable or attempt == EVENT_ATTEMPTS:
                logger.warning("event %s not posted: %s", manifest.get("reason"), exc)
                return
            await asyncio.sleep(0.2 * 2 ** (attempt - 1))


class Reconciler:
    """Reconciles ModelDeployments through one Kubernetes client.

    Args:
        kube: The API client (its field manager owns every applied child).
        settings: Tunables.
        metrics: Where to count reconciles, phases and verdicts.
    """

    def __init__(self, kube: KubeClient, settings: Settings, metrics: OperatorMetrics) -> None:
        self.kube = kube
        self.reconciled = 0  # successful reconciles, for the liveness probe
        self.settings = settings
        self.metrics = metrics
        token = settings.triton_access_token
        self.probes = ProbePool(
            timeout=settings.probe_timeout,
            concurrency=settings.probe_concurrency,
            rate=settings.probe_rate,
            ready_interval=settings.probe_ready_interval,
            headers={ACCESS_TOKEN_HEADER: token} if token else None,
        )
        self.analysis = AnalysisProviders(
            default_prometheus=settings.prometheus_url, scrape_timeout=settings.scrape_timeout
        )
        # The last refused write of each ModelDeployment's children (for backoff).
        self._failures: dict[str, ChildFailure] = {}
        # Each child's spec digest right after our last apply, by owner and child uid: a
        # child whose applied-hash and spec both still match needs no apply.
        self._applied: dict[str, dict[str, Any]] = {}
        self.scaler = MetricsReader(
            timeout=settings.scrape_timeout, concurrency=settings.probe_concurrency
        )
        # GPUs held at the last reconcile, per ModelDeployment (GPU-seconds between two).
        self._gpus: dict[str, Allocation] = {}

    async def close(self) -> None:
        await self.probes.close()
        await self.analysis.close()
        await self.scaler.close()
        await self.kube.close()

    def forget(self, namespace: str, name: str) -> None:
        self._failures.pop(f"{namespace}/{name}", None)
        self._applied.pop(f"{namespace}/{name}", None)
        self.analysis.forget(f"{namespace}/{name}")
        self.scaler.forget(f"{namespace}/{name}")
        self._gpus.pop(f"{namespace}/{name}", None)
        self.metrics.forget(namespace, name)

    async def reconcile(self, body: Mapping[str, Any], *, now: datetime) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = refuse_unknown_gates(await self._reconcile(body, now), body)
        except Exception:
            self.metrics.reconciles.labels("error").inc()
            raise
        finally:
            self.metrics.reconcile_seconds.observe(time.perf_counter() - started)
        self.metrics.reconciles.labels("ok").inc()
        self.reconciled += 1
        return outcome

    async def _reconcile(self, body: Mapping[str, Any], now: datetime) -> Outcome:
        meta = body["metadata"]
        owner = Owner(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation", 0)),
        )
        previous = previous_status(body.get("status"))
        selector = selector_string(owner)
        deployments = [
            d
            for d in await self.kube.list(kinds.DEPLOYMENT, owner.namespace, selector=selector)
            if owned_by(d, owner)
        ]
        observed = {o.name: o for o in map(observe_deployment, deployments)}
        try:
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            # Nothing is applied for a spec we cannot read: children stay as they
            # are and keep serving, and the status says both.
            return self._report_failure(
                owner, previous, describe_validation_error(exc), observed, now
            )

        pods = await self.kube.list(kinds.POD, owner.namespace, selector=selector)
        probes = await self._probe(spec, pods)
        ready_models = model_ready_by_deployment(probes)

        observations = Observations(
            deployments=readiness(observed, ready_models),
            annotations=dict(meta.get("annotations") or {}),
        )
        desired_revision = revision(spec)

        def decide_with(obs: Observations) -> Decision:
            return decide(
                spec, previous, obs, now, desired_revision=desired_revision, md_name=owner.name
            )

        decision = decide_with(observations)
        if decision.measure and decision.canary is not None:
            # An interval is due: measure, then decide again on the same tick.
            measurement = await self._measure(owner, spec, decision.canary, pods, now)
            decision = decide_with(dataclasses.replace(observations, measurement=measurement))

        plan, scaled = await self._builtin_scale(
            owner, spec, decision.plan, observed, pods, probes, previous, now
        )
        failure, owned = await self._apply(owner, spec, plan, observed, deployments, now)
        if failure is not None:
            if failure.reportable:
                return self._report_failure(
                    owner, previous, failure.message, observed, now, reason=failure.kind.value
                )
            # A transient answer, not yet repeated: nothing of this decision happened,
            # so record none of it (a step taken here would be replayed) and retry later.
            return Outcome(
                status=None, requeue_after=max(0.0, (failure.retry_at - now).total_seconds())
            )
        scaling, autoscaler = scaling_status(
            owner, spec, plan, previous, scaled, {k: c.obj for k, c in owned.items()}, observed
        )
        status = build_status(
            StatusInputs(
                generation=owner.generation,
                stable=decision.stable,
                canary=decision.canary,
                deployments=observed,
                scheduling=observe_pods(pods),
                model=model_health(probes, decision.stable.deployment if decision.stable else None),
                rollout=rollout_summary(decision),
                endpoints=service_endpoints(owner, spec, self.settings.cluster_domain),
                selector=selector,
                progress_deadline_seconds=spec.rollout.progress_deadline_seconds,
                model_ready=ready_models,
                sizing=Sizing(
                    autoscaled=spec.scaling.autoscaled,
                    min_replicas=spec.scaling.min_replicas,
                    max_replicas=spec.scaling.max_replicas,
                    replicas=spec.replicas,
                    provider=spec.scaling.effective_provider.value,
                    autoscaler=autoscaler,
                ),
            ),
            previous,
            now,
        )
        status = status.model_copy(
            update={"scaling": scaling, "gpus": self._count_gpus(owner, pods, now)}
        )
        events = tuple(Transition(e.type, e.reason, e.message) for e in decision.events)
        for event in decision.events:  # the rollout's own steps: Promoted, RolledBack, ...
            self.metrics.count_rollout_event(owner.namespace, owner.name, event.reason)
        if scaled is not None and scaled.rescaled:
            events += (Transition("Normal", "Rescaled", scaled.rescaled),)
        requeue = decision.requeue_after
        if plan.autoscale_target is not None and spec.scaling.effective_provider is BUILTIN:
            # The next read of the pods' metrics is due then, whatever else is.
            wait = self.settings.scale_interval
            requeue = wait if requeue is None else min(requeue, wait)
        return self._report(
            owner, previous, status, events, consumed=decision.consumed, requeue_after=requeue
        )

    def _report_failure(
        self,
        owner: Owner,
        previous: ModelDeploymentStatus,
        message: str,
        observed: Mapping[str, DeploymentObservation],
        now: datetime,
        *,
        reason: str = "InvalidSpec",
    ) -> Outcome:
        status = build_status(
            StatusInputs(
                generation=owner.generation,
                stable=previous.stable,
                canary=previous.canary,
                deployments=observed,
                failure=message,
                failure_reason=reason,
                model_ready={
                    r.deployment: r.model_ready_replicas
                    for r in (previous.stable, previous.canary)
                    if r is not None
                },
                endpoints=previous.endpoints,
                selector=previous.selector,
            ),
            previous,
            now,
        )
        # Model readiness was not probed this time: keep the last counts seen.
        status = status.model_copy(
            update={
                "model_ready_replicas": previous.model_ready_replicas,
                "servers": previous.servers,
                "canary_version": previous.canary_version,
                "canary_weight": previous.canary_weight,
                "scaling": previous.scaling,
                "gpus": previous.gpus,
            }
        )
        return self._report(owner, previous, status)

    def _report(
        self,
        owner: Owner,
        previous: ModelDeploymentStatus,
        status: ModelDeploymentStatus,
        events: tuple[Transition, ...] = (),
        *,
        consumed: tuple[str, ...] = (),
        requeue_after: float | None = None,
    ) -> Outcome:
        """The one tail of every reconcile: metrics, transition events, the status if changed."""
        self._record_metrics(owner, previous, status)
        changed = status_json(status) != status_json(previous)
        return Outcome(
            status=status_json(status) if changed else None,
            events=events + tuple(transitions(previous, status)),
            consumed_annotations=consumed,
            requeue_after=requeue_after,
        )

    async def _probe(self, spec: ModelDeploymentSpec, pods: Sequence[Manifest]) -> list[PodProbe]:
        """Probe every running pod for the model *its own* revision serves.

        During a canary (and after a rollback) the stable pods serve an older
        model version than the spec names; asking them for the spec's version
        would report a healthy stable as not ready.
        """
        running = running_pods(pods)
        groups: dict[tuple[str, str], list[Manifest]] = {}
        for pod in running:
            groups.setdefault(served_model(pod, spec), []).append(pod)
        port = spec.runtime.ports.http
        probed: list[PodProbe] = []
        for (model, version), members in groups.items():
            targets = [
                ProbeTarget(f"{p['status']['podIP']}:{port}", pod_revision(p)) for p in members
            ]
            sent, reused = self.probes.stats.sent, self.probes.stats.reused
            results = await self.probes.probe(targets, model, version)
            self.metrics.probes.labels("sent").inc(self.probes.stats.sent - sent)
            self.metrics.probes.labels("reused").inc(self.probes.stats.reused - reused)
            probed += [
                PodProbe(deployment=deployment_of(p), probe=r, pod=p["metadata"]["name"])
                for p, r in zip(members, results, strict=True)
            ]
        return probed

    async def _measure(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        canary: CanaryStatus,
        pods: Sequence[Manifest],
        now: datetime,
    ) -> Measurement:
        assert spec.rollout.canary is not None
        port = spec.runtime.ports.metrics
        endpoints = tuple(
            PodEndpoint(
                name=p["metadata"]["name"], url=f"http://{p['status']['podIP']}:{port}/metrics"
            )
            for p in running_pods(pods)
            if p["metadata"].get("labels", {}).get(DEPLOYMENT_LABEL) == canary.deployment
        )
        target = AnalysisTarget(
            namespace=owner.namespace,
            name=owner.name,
            deployment=canary.deployment,
            revision=canary.revision,
            model=spec.model.name,
            model_version=spec.model.version,
            pods=endpoints,
        )
        return await self.analysis.measure(target, spec.rollout.canary.analysis, now)

    async def _apply(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        plan: ServingPlan,
        observed: Mapping[str, DeploymentObservation],
        deployments: Sequence[Manifest],
        now: datetime,
    ) -> tuple[ChildFailure | None, Mapping[tuple[str, str], OwnedChild]]:
        """Write the plan's children, scales and garbage collection; the failure, if any.

        Also returns the owned children as listed before the writes (the autoscaler's
        status is read from them).

        Nothing is written over an object this ModelDeployment does not control:
        every name the plan needs is checked before the first write, so a clash
        leaves the children as they were. A refused write is remembered with its
        backoff, so the same manifests are not sent again until it expires.
        """
        key = f"{owner.namespace}/{owner.name}"
        children = render_children(owner, spec, plan)
        scales = [(d.name, d.replicas) for d in plan.deployments if d.replicas is not None]
        digest = manifests_hash([*children, scales])
        prior = self._failures.get(key)
        if prior is not None and not prior.due(digest, now):
            return prior, {}
        owned: dict[tuple[str, str], OwnedChild] = {}
        try:
            owned = await self._owned_children(owner, deployments)
            conflict = await self._find_conflict(owner, children, owned)
            if conflict is not None:
                return self._fail(key, FailureKind.CONFLICT, conflict, digest, 0, now), owned
            for manifest in children:
                name = manifest["metadata"]["name"]
                stamped = stamp_applied(manifest)
                if self._unchanged(key, stamped, owned.get((manifest["kind"], name))):
                    continue
                with _refusal(manifest["kind"], owner.namespace, name):
                    applied = await self.kube.apply(stamped)
                self._remember_applied(key, applied)
            for dep in plan.deployments:
                current = observed.get(dep.name)
                if dep.replicas is None or (
                    current is not None and current.desired == dep.replicas
                ):
                    continue
                with _refusal("Deployment", owner.namespace, dep.name):
                    await self.kube.scale(
                        kinds.DEPLOYMENT,
                        dep.name,
                        owner.namespace,
                        dep.replicas,
                        manager=SCALE_MANAGER,
                    )
        except ChildWriteError as exc:
            return self._fail(key, exc.kind, exc.text, digest, exc.status, now), owned
        keep = {(c["kind"], c["metadata"]["name"]) for c in children}
        keep |= {("Deployment", d.name) for d in plan.deployments}
        await self._collect_garbage(owner, keep, owned)
        self._failures.pop(key, None)
        return None, owned

    def _unchanged(self, key: str, stamped: Manifest, current: OwnedChild | None) -> bool:
        """Whether ``current`` already is what applying ``stamped`` would make it.

        The hash annotation says the manifest is the one last applied; the
        object's spec, unchanged since that apply but for ``replicas``, says nobody
        edited it since (a ``kubectl edit`` changes it, and the next reconcile applies
        again). Replicas are left out because resizing is someone else's job: an
        autoscaler's or ``/scale``'s (which also bumps the generation, so the
        generation cannot tell). After an operator restart nothing is remembered,
        so each child is applied once.
        """
        if current is None:
            return False
        meta = current.obj.get("metadata") or {}
        want = stamped["metadata"]["annotations"][APPLIED_ANNOTATION]
        if (meta.get("annotations") or {}).get(APPLIED_ANNOTATION) != want:
            return False
        seen = self._applied.get(key, {})
        uid = str(meta.get("uid"))
        return uid in seen and seen[uid] == spec_digest(current.obj)

    def _remember_applied(self, key: str, applied: Manifest) -> None:
        meta = applied.get("metadata") or {}
        if meta.get("uid"):
            self._applied.setdefault(key, {})[str(meta["uid"])] = spec_digest(applied)

    def _fail(
        self, key: str, kind: FailureKind, message: str, digest: str, status: int, now: datetime
    ) -> ChildFailure:
        failure = record(
            self._failures.get(key),
            kind=kind,
            message=message,
            manifests=digest,
            status=status,
            now=now,
        )
        self._failures[key] = failure
        return failure

    async def _owned_children(
        self, owner: Owner, deployments: Sequence[Manifest]
    ) -> dict[tuple[str, str], OwnedChild]:
        """This ModelDeployment's children by (kind, name): listed by label, kept by uid.

        Deployments were listed at the start of this reconcile; the only ones
        created since are the plan's own, so they are not listed again.
        """
        selector = selector_string(owner)
        owned: dict[tuple[str, str], OwnedChild] = {}
        for child in CHILD_KINDS:
            res = kinds.KNOWN[(child.api_version, child.kind)]
            if res is kinds.DEPLOYMENT:
                items = list(deployments)
            else:
                try:
                    items = await self.kube.list(res, owner.namespace, selector=selector)
                except ApiError as exc:
                    if exc.not_found:  # the kind is not installed (e.g. no Gateway API CRDs)
                        continue
                    raise
            for item in items:
                if owned_by(item, owner):
                    owned[(child.kind, item["metadata"]["name"])] = OwnedChild(res, item)
        return owned

    async def _find_conflict(
        self,
        owner: Owner,
        children: Sequence[Manifest],
        owned: Mapping[tuple[str, str], OwnedChild],
    ) -> str | None:
        """The first child name held by an object this ModelDeployment does not control.

        Only names missing from the owned lists are looked up, so a steady
        reconcile sends no request here. A label-selected list cannot see a
        user's object (it lacks our labels): a GET by name can.

        Before anything is created, the owner itself is read live: a cached copy
        can outlive its object (deleted with its namespace, its DELETED event never
        delivered), and children created for it would only feed the garbage
        collector. Raises :class:`OwnerGoneError` then.
        """
        missing = [m for m in children if (m["kind"], m["metadata"]["name"]) not in owned]
        if missing and await owner_gone(self.kube, owner.namespace, owner.name, owner.uid):
            raise OwnerGoneError(f"{owner.namespace}/{owner.name}")
        for manifest in missing:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            # None also when the kind is not served here: the apply then says so.
            existing = await self.kube.get(resource_of(manifest), name, owner.namespace)
            if existing is not None and not owned_by(existing, owner):
                return describe_conflict(kind, owner.namespace, name, holder(existing))
        return None

    async def _collect_garbage(
        self,
        owner: Owner,
        keep: set[tuple[str, str]],
        owned: Mapping[tuple[str, str], OwnedChild],
    ) -> None:
        """Delete owned children the plan no longer wants (exact uid, never a namesake)."""
        for (kind, name), child in owned.items():
            if (kind, name) not in keep:
                uid = child.obj["metadata"].get("uid")
                await self.kube.delete(child.res, name, owner.namespace, uid=uid)

    async def _builtin_scale(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        plan: ServingPlan,
        observed: Mapping[str, DeploymentObservation],
        pods: Sequence[Manifest],
        probes: Sequence[PodProbe],
        previous: ModelDeploymentStatus,
        now: datetime,
    ) -> tuple[ServingPlan, BuiltinDecision | None]:
        """The plan with the size the builtin scaler decides, when a read of the pods is due.

        Between reads (and for other providers, during a canary, before the stable
        Deployment exists) the plan is returned as it is: an autoscaled stable keeps
        ``replicas=None``, so its size is not touched.
        """
        target = plan.autoscale_target
        key = f"{owner.namespace}/{owner.name}"
        current = observed.get(target) if target is not None else None
        if (
            target is None
            or current is None
            or spec.scaling.effective_provider is not BUILTIN
            or not self.scaler.due(key, now, self.settings.scale_interval)
        ):
            return plan, None
        model_ready = {p.pod for p in probes if p.probe.model_ready}
        mine = [p for p in pods if alive(p) and deployment_of(p) == target]
        port = spec.runtime.ports.metrics
        values = await self.scaler.read(
            key,
            [
                ScrapeTarget(p["metadata"]["name"], f"http://{p['status']['podIP']}:{port}/metrics")
                for p in mine
                if p["metadata"]["name"] in model_ready
            ],
            model=spec.model.name,
            metric=spec.scaling.metric.type,
            now=now,
        )
        readings = [
            PodReading(
                name=(n := p["metadata"]["name"]), serving=n in model_ready, value=values.get(n)
            )
            for p in mine
        ]
        decided = decide_builtin(
            spec.scaling, current=current.desired, pods=readings, previous=previous.scaling, now=now
        )
        return resize(plan, target, decided.replicas), decided

    def _count_gpus(self, owner: Owner, pods: Sequence[Manifest], now: datetime) -> GpuStatus:
        """status.gpus now, and the GPU-seconds since the last reconcile counted."""
        key = f"{owner.namespace}/{owner.name}"
        held = allocation(pods, now)
        self.metrics.add_gpu_seconds(
            owner.namespace, owner.name, accrued(self._gpus.get(key), held)
        )
        self._gpus[key] = held
        return gpu_status(held)

    def _record_metrics(
        self, owner: Owner, previous: ModelDeploymentStatus, status: ModelDeploymentStatus
    ) -> None:
        ns, name = owner.namespace, owner.name
        self.metrics.set_phase(ns, name, status.phase.value)
        canary = status.canary
        self.metrics.canary_weight.labels(ns, name).set(canary.weight if canary else 0)
        self.metrics.canary_step.labels(ns, name).set(canary.step_index if canary else 0)
        last = canary.analysis.last if canary else None
        before = previous.canary.analysis.last if previous.canary else None
        if last is not None and (before is None or before.time != last.time):
            self.metrics.count_verdict(ns, name, last.verdict.value)


class OwnedChild(NamedTuple):
    """A child this ModelDeployment controls, as listed (list items carry no kind)."""

    res: Resource
    obj: Manifest


class OwnerGoneError(Exception):
    """The ModelDeployment being reconciled no longer exists (or is another object now)."""


async def owner_gone(kube: KubeClient, namespace: str, name: str, uid: object) -> bool:
    """Whether ModelDeployment ``namespace/name`` with ``uid`` is gone, read live.

    A cached copy can outlive its object: a namespace being deleted is no longer
    watched, so its objects' DELETED events may never come. The caller asks the
    server before acting on the copy (a cached client reads through on a miss).
    """
    live = await kube.get(kinds.MODEL_DEPLOYMENT, name, namespace)
    return live is None or (live.get("metadata") or {}).get("uid") != uid


class ChildWriteError(Exception):
    """A child write the API server refused, as the status will tell it."""

    def __init__(self, kind: FailureKind, text: str, status: int) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text
        self.status = status


@contextlib.contextmanager
def _refusal(kind: str, namespace: str, name: str) -> Iterator[None]:
    """Turn the API server's refusal of one child write into a ChildWriteError."""
    try:
        yield
    except ApiError as exc:
        if exc.not_found:
            # The kind is not served here (an HTTPRoute without the Gateway API CRDs):
            # retrying cannot help, so the status says what to install.
            text = (
                f"cannot apply {kind} {namespace}/{name}: {exc.message}; for trafficRouting "
                "gatewayAPI install the Gateway API CRDs, or use trafficRouting replicas"
            )
            raise ChildWriteError(FailureKind.KIND_NOT_INSTALLED, text, exc.status) from exc
        text = describe_refusal(kind, namespace, name, exc.status, exc.message)
        raise ChildWriteError(FailureKind.REJECTED, text, exc.status) from exc
