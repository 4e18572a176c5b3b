"""The pure parts of a reconcile: what was observed, what to report, what to write.

Everything here is a function of its arguments (no I/O, no clock): the
:class:`~gantry.reconciler.core.Reconciler` calls these between its reads and
writes, and the tests drive them with plain dicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from gantry.api.plan import Owner, ServingPlan
from gantry.api.spec import API_VERSION, KIND, ModelDeploymentSpec, ScalingProvider
from gantry.api.status import CanaryPhase, ModelDeploymentStatus, ScalingStatus
from gantry.render.hpa import hpa_name
from gantry.render.labels import DEPLOYMENT as DEPLOYMENT_LABEL
from gantry.rollout import Decision, DeploymentReadiness, invalid_gates
from gantry.scaling.builtin import BuiltinDecision, carried, frozen
from gantry.scaling.external import from_hpa, from_scaled_object
from gantry.status.child_failures import manifests_hash
from gantry.status.conditions import Autoscaler, Rollout, Transition
from gantry.status.observe import DeploymentObservation

Manifest = dict[str, Any]

APPLIED_ANNOTATION = "serving.gantry.dev/applied"


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


def event_manifest(meta: Mapping[str, Any], event: Transition, now: datetime) -> Manifest:
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


def owned_by(obj: Manifest, owner: Owner) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner.uid and ref.get("controller") for ref in refs)


def previous_status(raw: Mapping[str, Any] | None) -> ModelDeploymentStatus:
    # A status we cannot read (hand-edited, older schema) must not wedge the
    # operator: start afresh; the rollout logic then re-derives from children.
    try:
        return ModelDeploymentStatus.model_validate(raw or {})
    except ValidationError:
        return ModelDeploymentStatus()


def status_json(status: ModelDeploymentStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each naming the field path as users write it."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        lines.append(f"spec.{path}: {err['msg']}" if path else f"spec: {err['msg']}")
    return "; ".join(lines)


def served_model(pod: Manifest, spec: ModelDeploymentSpec) -> tuple[str, str]:
    """(model name, version) a pod's own template serves: its GANTRY_MODEL_* env."""
    containers = pod.get("spec", {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
    return (
        str(env.get("GANTRY_MODEL_NAME") or spec.model.name),
        str(env.get("GANTRY_MODEL_VERSION") or spec.model.version),
    )


def pod_revision(pod: Manifest) -> str:
    """What, when it changes, makes a pod's last model-ready answer stale."""
    status = pod.get("status") or {}
    ready = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), ""
    )
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    return f"{pod.get('metadata', {}).get('uid', '')}/{ready}/{restarts}"


def running_pods(pods: Sequence[Manifest]) -> list[Manifest]:
    return [
        p
        for p in pods
        if p.get("status", {}).get("phase") == "Running"
        and p.get("status", {}).get("podIP")
        and not p.get("metadata", {}).get("deletionTimestamp")
    ]


def alive(pod: Manifest) -> bool:
    """Counted by an autoscaler: not terminating, not finished (the HPA's ignored pods)."""
    phase = pod.get("status", {}).get("phase")
    return not pod.get("metadata", {}).get("deletionTimestamp") and phase not in (
        "Failed",
        "Succeeded",
    )


def deployment_of(pod: Manifest) -> str:
    return str(pod.get("metadata", {}).get("labels", {}).get(DEPLOYMENT_LABEL, ""))


def holder(obj: Manifest) -> str:
    """Who controls ``obj``, for a ChildConflict message."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    ctrl = next((r for r in refs if r.get("controller")), None)
    if ctrl is None:
        return "not controlled by this ModelDeployment"
    return f"controlled by {ctrl.get('kind', '?')} {ctrl.get('name', '?')}"


def spec_digest(obj: Manifest) -> str:
    """A hash of ``obj``'s spec without ``replicas`` (what an autoscaler or /scale sets)."""
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "replicas"}
    return manifests_hash([spec])


def stamp_applied(manifest: Manifest) -> Manifest:
    """``manifest`` with a hash of itself in an annotation, so an unchanged one is not resent."""
    digest = manifests_hash([manifest])
    meta = manifest["metadata"]
    annotations = {**(meta.get("annotations") or {}), APPLIED_ANNOTATION: digest}
    return {**manifest, "metadata": {**meta, "annotations": annotations}}


def refuse_unknown_gates(outcome: Outcome, body: Mapping[str, Any]) -> Outcome:
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


def readiness(
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


def rollout_summary(decision: Decision) -> Rollout:
    canary = decision.canary
    if canary is not None and canary.phase is CanaryPhase.ABORTED:
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


def scaling_status(
    owner: Owner,
    spec: ModelDeploymentSpec,
    plan: ServingPlan,
    previous: ModelDeploymentStatus,
    scaled: BuiltinDecision | None,
    owned: Mapping[tuple[str, str], Manifest],
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
        return from_hpa(spec.scaling, hpa)
    if provider is ScalingProvider.KEDA:
        scaled_object = owned.get(("ScaledObject", hpa_name(owner)))
        current = observed[target].desired if target in observed else 0
        return from_scaled_object(spec.scaling, scaled_object, current)
    if scaled is not None:
        return scaled.status, scaled.autoscaler
    return previous.scaling, carried(previous.scaling)
