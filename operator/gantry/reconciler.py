"""One level-based reconcile of a ModelDeployment: observe, decide, apply, report.

No kopf here: the handlers call :meth:`Reconciler.reconcile` and turn its
:class:`Outcome` into a status patch, events and annotation removals. Each step
delegates to a pure module (render, rollout, status) or to an I/O module
(kube, health, analysis); this file only orders them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from gantry.analysis import AnalysisProviders, AnalysisTarget, PodEndpoint
from gantry.analysis.measurement import Measurement
from gantry.api.plan import Owner, ServingPlan
from gantry.api.spec import API_VERSION, KIND, ModelDeploymentSpec, ScalingProvider
from gantry.api.status import (
    CanaryPhase,
    CanaryStatus,
    Endpoints,
    GpuStatus,
    ModelDeploymentStatus,
    ScalingStatus,
)
from gantry.health import ACCESS_TOKEN_HEADER, ModelProbe, ProbePool, ProbeTarget, summarize
from gantry.kube import ApiError, KubeClient, Manifest, Resource, resource_of
from gantry.kube import resources as kinds
from gantry.metrics import OperatorMetrics
from gantry.render import CHILD_KINDS, render_children, revision, selector_string, service_name
from gantry.render.hpa import hpa_name
from gantry.render.labels import DEPLOYMENT as DEPLOYMENT_LABEL
from gantry.rollout import Decision, DeploymentReadiness, Observations, decide, invalid_gates
from gantry.scaling import (
    Allocation,
    BuiltinDecision,
    MetricsReader,
    PodReading,
    ScrapeTarget,
    accrued,
    allocation,
    decide_builtin,
    from_hpa,
    from_scaled_object,
    gpu_status,
)
from gantry.scaling.builtin import carried, frozen, resize
from gantry.status.child_failures import (
    ChildFailure,
    FailureKind,
    describe_conflict,
    describe_refusal,
    manifests_hash,
    record,
)
from gantry.status.conditions import (
    Autoscaler,
    Rollout,
    Sizing,
    StatusInputs,
    Transition,
    build_status,
    transitions,
)
from gantry.status.observe import (
    DeploymentObservation,
    ModelHealth,
    observe_deployment,
    observe_pods,
)

SCALE_MANAGER = "gantry-scale"


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


@dataclass(frozen=True)
class Outcome:
    """What the handler must write back.

    Attributes:
        status: The whole new status (JSON), or None when nothing changed.
        events: Events for transitions only.
        consumed_annotations: One-shot gate annotations to remove.
        requeue_after: Seconds until time-based work is due, if any.
    """

    status: dict[str, Any] | None
    events: tuple[Transition, ...] = ()
    consumed_annotations: tuple[str, ...] = ()
    requeue_after: float | None = None


async def write_outcome(
    kube: KubeClient, body: Mapping[str, Any], outcome: Outcome, *, now: datetime
) -> None:
    """Write what a reconcile decided: status, consumed gates, events (in that order).

    The status goes first: a gate annotation is removed only once the decision
    it caused is recorded, so a failure in between replays the gate at worst.
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if outcome.status is not None:
        await kube.patch_merge(
            kinds.MODEL_DEPLOYMENT, name, namespace, {"status": outcome.status}, sub="status"
        )
    if outcome.consumed_annotations:
        gone: dict[str, Any] = dict.fromkeys(outcome.consumed_annotations)
        await kube.patch_merge(
            kinds.MODEL_DEPLOYMENT, name, namespace, {"metadata": {"annotations": gone}}
        )
    for event in outcome.events:
        await kube.create(_event(meta, event, now))


def _event(meta: Mapping[str, Any], event: Transition, now: datetime) -> Manifest:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:1024],
        "source": {"component": "gantry"},
        "reportingComponent": "serving.gantry.dev/gantry",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def _owned_by(obj: Manifest, owner: Owner) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner.uid and ref.get("controller") for ref in refs)


def _previous_status(raw: Mapping[str, Any] | None) -> ModelDeploymentStatus:
    # A status we cannot read (hand-edited, older schema) must not wedge the
    # operator: start afresh; the rollout logic then re-derives from children.
    try:
        return ModelDeploymentStatus.model_validate(raw or {})
    except ValidationError:
        return ModelDeploymentStatus()


def _status_json(status: ModelDeploymentStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each naming the field path as users write it."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        lines.append(f"spec.{path}: {err['msg']}" if path else f"spec: {err['msg']}")
    return "; ".join(lines)


def _served_model(pod: Manifest, spec: ModelDeploymentSpec) -> tuple[str, str]:
    """(model name, version) a pod's own template serves: its GANTRY_MODEL_* env."""
    containers = pod.get("spec", {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
    return (
        str(env.get("GANTRY_MODEL_NAME") or spec.model.name),
        str(env.get("GANTRY_MODEL_VERSION") or spec.model.version),
    )


def _pod_revision(pod: Manifest) -> str:
    """What, when it changes, makes a pod's last model-ready answer stale."""
    status = pod.get("status") or {}
    ready = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), ""
    )
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    return f"{pod.get('metadata', {}).get('uid', '')}/{ready}/{restarts}"


def _running_pods(pods: Sequence[Manifest]) -> list[Manifest]:
    return [
        p
        for p in pods
        if p.get("status", {}).get("phase") == "Running"
        and p.get("status", {}).get("podIP")
        and not p.get("metadata", {}).get("deletionTimestamp")
    ]


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
        # Each child's generation right after our last apply, by owner and child uid: a
        # child whose applied-hash and generation both still match needs no apply.
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
            outcome = _refuse_unknown_gates(await self._reconcile(body, now), body)
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
        previous = _previous_status(body.get("status"))
        selector = selector_string(owner)
        deployments = [
            d
            for d in await self.kube.list(kinds.DEPLOYMENT, owner.namespace, selector=selector)
            if _owned_by(d, owner)
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
        ready_models = _model_ready_by_deployment(probes)

        observations = Observations(
            deployments=_readiness(observed, ready_models),
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
        scaling, autoscaler = _scaling_status(owner, spec, plan, previous, scaled, owned, observed)
        status = build_status(
            StatusInputs(
                generation=owner.generation,
                stable=decision.stable,
                canary=decision.canary,
                deployments=observed,
                scheduling=observe_pods(pods),
                model=_model_health(
                    probes, decision.stable.deployment if decision.stable else None
                ),
                rollout=_rollout_summary(decision),
                endpoints=self._endpoints(owner, spec),
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
        self._record_metrics(owner, previous, status)
        events = tuple(Transition(e.type, e.reason, e.message) for e in decision.events)
        for event in decision.events:  # the rollout's own steps: Promoted, RolledBack, ...
            self.metrics.rollout_events.labels(owner.namespace, owner.name, event.reason).inc()
        if scaled is not None and scaled.rescaled:
            events += (Transition("Normal", "Rescaled", scaled.rescaled),)
        events += tuple(transitions(previous, status))
        changed = _status_json(status) != _status_json(previous)
        requeue = decision.requeue_after
        if plan.autoscale_target is not None and spec.scaling.effective_provider is BUILTIN:
            # The next read of the pods' metrics is due then, whatever else is.
            wait = self.settings.scale_interval
            requeue = wait if requeue is None else min(requeue, wait)
        return Outcome(
            status=_status_json(status) if changed else None,
            events=events,
            consumed_annotations=decision.consumed,
            requeue_after=requeue,
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
        self.metrics.set_phase(owner.namespace, owner.name, status.phase.value)
        changed = _status_json(status) != _status_json(previous)
        return Outcome(
            status=_status_json(status) if changed else None,
            events=tuple(transitions(previous, status)),
        )

    async def _probe(self, spec: ModelDeploymentSpec, pods: Sequence[Manifest]) -> list[PodProbe]:
        """Probe every running pod for the model *its own* revision serves.

        During a canary (and after a rollback) the stable pods serve an older
        model version than the spec names; asking them for the spec's version
        would report a healthy stable as not ready.
        """
        running = _running_pods(pods)
        groups: dict[tuple[str, str], list[Manifest]] = {}
        for pod in running:
            groups.setdefault(_served_model(pod, spec), []).append(pod)
        port = spec.runtime.ports.http
        probed: list[PodProbe] = []
        for (model, version), members in groups.items():
            targets = [
                ProbeTarget(f"{p['status']['podIP']}:{port}", _pod_revision(p)) for p in members
            ]
            results = await self.probes.probe(targets, model, version)
            probed += [
                PodProbe(deployment=_deployment_of(p), probe=r, pod=p["metadata"]["name"])
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
            for p in _running_pods(pods)
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
        generation, unchanged since that apply, says nobody edited the spec since
        (a ``kubectl edit`` bumps it, and the next reconcile applies again). After
        an operator restart nothing is remembered, so each child is applied once.
        """
        if current is None:
            return False
        meta = current.obj.get("metadata") or {}
        want = stamped["metadata"]["annotations"][APPLIED_ANNOTATION]
        if (meta.get("annotations") or {}).get(APPLIED_ANNOTATION) != want:
            return False
        seen = self._applied.get(key, {})
        uid = str(meta.get("uid"))
        return uid in seen and seen[uid] == meta.get("generation")

    def _remember_applied(self, key: str, applied: Manifest) -> None:
        meta = applied.get("metadata") or {}
        if meta.get("uid"):
            self._applied.setdefault(key, {})[str(meta["uid"])] = meta.get("generation")

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
                if _owned_by(item, owner):
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
        """
        for manifest in children:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            if (kind, name) in owned:
                continue
            # None also when the kind is not served here: the apply then says so.
            existing = await self.kube.get(resource_of(manifest), name, owner.namespace)
            if existing is not None and not _owned_by(existing, owner):
                return describe_conflict(kind, owner.namespace, name, _holder(existing))
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
        mine = [p for p in pods if _alive(p) and _deployment_of(p) == target]
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

    def _endpoints(self, owner: Owner, spec: ModelDeploymentSpec) -> Endpoints:
        host = f"{service_name(owner)}.{owner.namespace}.svc.{self.settings.cluster_domain}"
        ports = spec.runtime.ports
        return Endpoints(
            http=f"http://{host}:{ports.http}",
            grpc=f"{host}:{ports.grpc}",
            metrics=f"http://{host}:{ports.metrics}/metrics",
        )

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
            self.metrics.analysis_verdicts.labels(ns, name, last.verdict.value).inc()


class OwnedChild(NamedTuple):
    """A child this ModelDeployment controls, as listed (list items carry no kind)."""

    res: Resource
    obj: Manifest


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


APPLIED_ANNOTATION = "serving.gantry.dev/applied"


def stamp_applied(manifest: Manifest) -> Manifest:
    """``manifest`` with a hash of itself in an annotation, so an unchanged one is not resent."""
    digest = manifests_hash([manifest])
    meta = manifest["metadata"]
    annotations = {**(meta.get("annotations") or {}), APPLIED_ANNOTATION: digest}
    return {**manifest, "metadata": {**meta, "annotations": annotations}}


def _refuse_unknown_gates(outcome: Outcome, body: Mapping[str, Any]) -> Outcome:
    """Remove gate annotations with a value Gantry does not know, with one Warning each.

    The rollout never saw them (``read_gates`` skips them), so nothing was acted on;
    removing them keeps a typo from firing later under a different reading.
    """
    bad = invalid_gates(body["metadata"].get("annotations") or {})
    if not bad:
        return outcome
    consumed = tuple(dict.fromkeys([*outcome.consumed_annotations, *(g.key for g in bad)]))
    warnings = tuple(Transition("Warning", "InvalidAnnotation", g.message) for g in bad)
    return dataclasses.replace(
        outcome, events=outcome.events + warnings, consumed_annotations=consumed
    )


def _holder(obj: Manifest) -> str:
    """Who controls ``obj``, for a ChildConflict message."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    ctrl = next((r for r in refs if r.get("controller")), None)
    if ctrl is None:
        return "not controlled by this ModelDeployment"
    return f"controlled by {ctrl.get('kind', '?')} {ctrl.get('name', '?')}"


@dataclass(frozen=True)
class PodProbe:
    deployment: str
    probe: ModelProbe
    pod: str = ""


BUILTIN = ScalingProvider.BUILTIN


def _alive(pod: Manifest) -> bool:
    """Counted by an autoscaler: not terminating, not finished (the HPA's ignored pods)."""
    phase = pod.get("status", {}).get("phase")
    return not pod.get("metadata", {}).get("deletionTimestamp") and phase not in (
        "Failed",
        "Succeeded",
    )


def _deployment_of(pod: Manifest) -> str:
    return str(pod.get("metadata", {}).get("labels", {}).get(DEPLOYMENT_LABEL, ""))


def _scaling_status(
    owner: Owner,
    spec: ModelDeploymentSpec,
    plan: ServingPlan,
    previous: ModelDeploymentStatus,
    scaled: BuiltinDecision | None,
    owned: Mapping[tuple[str, str], OwnedChild],
    observed: Mapping[str, DeploymentObservation],
) -> tuple[ScalingStatus | None, Autoscaler | None]:
    """status.scaling and the autoscaler's account, from whichever provider sizes the stable."""
    if not spec.scaling.autoscaled:
        return None, None
    target = plan.autoscale_target
    if target is None:
        return frozen(previous.scaling), None
    provider = spec.scaling.effective_provider
    if provider is ScalingProvider.HPA:
        hpa = owned.get(("HorizontalPodAutoscaler", hpa_name(owner)))
        return from_hpa(spec.scaling, hpa.obj if hpa else None)
    if provider is ScalingProvider.KEDA:
        scaled_object = owned.get(("ScaledObject", hpa_name(owner)))
        current = observed[target].desired if target in observed else 0
        return from_scaled_object(
            spec.scaling, scaled_object.obj if scaled_object else None, current
        )
    if scaled is not None:
        return scaled.status, scaled.autoscaler
    return previous.scaling, carried(previous.scaling)


def _model_ready_by_deployment(probes: Sequence[PodProbe]) -> dict[str, int]:
    """Model-ready pods per Deployment; a Deployment with no probed pod is absent."""
    ready: dict[str, int] = {}
    for p in probes:
        ready[p.deployment] = ready.get(p.deployment, 0) + int(p.probe.model_ready)
    return ready


def _readiness(
    observed: Mapping[str, DeploymentObservation], ready_models: Mapping[str, int]
) -> dict[str, DeploymentReadiness]:
    # None (not probed: no running pod) lets availability alone count; 0 means
    # pods answered and none has the model.
    return {
        name: DeploymentReadiness(
            replicas=o.desired,
            ready=o.ready,
            available=o.available,
            model_ready=ready_models.get(name),
        )
        for name, o in observed.items()
    }


def _model_health(probes: Sequence[PodProbe], stable: str | None) -> ModelHealth | None:
    mine = [p.probe for p in probes if p.deployment == stable]
    if not mine:
        return ModelHealth(reason="NoRunningPods", message="no running pod to probe")
    ready, reason, message = summarize(mine)
    return ModelHealth(probed=len(mine), ready=ready, reason=reason, message=message)


def _rollout_summary(decision: Decision) -> Rollout:
    canary = decision.canary
    if canary is not None and canary.phase.value == "Aborted":
        return Rollout(
            progressing=False,
            message=decision.message,
            degraded_reason=canary.reason or "RolledBack",
            degraded_message=canary.message,
        )
    return Rollout(
        progressing=decision.progressing,
        message=decision.message,
        paused=canary is not None and canary.phase is CanaryPhase.PAUSED,
    )
