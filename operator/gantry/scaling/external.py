"""``status.scaling`` for the hpa and keda providers: the autoscaler's own words (pure).

For ``hpa`` the HorizontalPodAutoscaler's conditions (AbleToScale, ScalingActive,
ScalingLimited), current metric and sizes are copied, so ``kubectl describe md``
answers "why is it not scaling" without opening the HPA. The mapping onto
Gantry's ScalingActive condition:

* HPA ScalingActive=False (no metrics: "no metrics returned from custom metrics
  API", a missing adapter) -> False, ``MetricUnavailable`` with the HPA's reason
  and message;
* HPA ScalingLimited=True because of maxReplicas (TooManyReplicas) ->
  True, ``AtMaxReplicas`` (it still scales; it cannot go further);
* otherwise True, ``Autoscaling``; an HPA not yet observed -> True,
  ``AwaitingMetrics``.

For ``keda`` the ScaledObject's conditions (Ready, Active, Fallback) are copied;
Ready=False -> False, ``AutoscalerNotReady`` with KEDA's message. KEDA's own HPA
(``keda-hpa-<name>``) belongs to the ScaledObject, not to Gantry, so it is not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from gantry.api.spec import ScalingSpec
from gantry.api.status import AutoscalerCondition, ConditionStatus, ScalingStatus
from gantry.render.hpa import quantity
from gantry.status.conditions import Autoscaler


def _conditions(obj: Mapping[str, Any]) -> list[AutoscalerCondition]:
    out = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        try:
            out.append(
                AutoscalerCondition(
                    type=str(c.get("type", ""))[:64],
                    status=ConditionStatus(c.get("status", "Unknown")),
                    reason=str(c.get("reason", ""))[:256],
                    message=str(c.get("message", ""))[:2048],
                )
            )
        except (ValidationError, ValueError):
            continue  # a condition we cannot read is left out, not fatal
    return out[:8]


def _current_value(status: Mapping[str, Any]) -> str | None:
    for m in status.get("currentMetrics") or []:
        for key in ("pods", "resource", "external", "object", "containerResource"):
            current = (m.get(key) or {}).get("current") or {}
            if "averageUtilization" in current:
                return f"{current['averageUtilization']}%"
            for field in ("averageValue", "value"):
                if field in current:
                    return str(current[field])
    return None


def _target(scaling: ScalingSpec) -> str:
    if scaling.metric.type.value == "cpu":
        return f"{round(scaling.metric.target)}%"
    return quantity(scaling.metric.target)


def _time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def from_hpa(
    scaling: ScalingSpec, hpa: Mapping[str, Any] | None
) -> tuple[ScalingStatus, Autoscaler]:
    """status.scaling and the condition's account from the HPA as last listed."""
    status = (hpa or {}).get("status") or {}
    conds = _conditions(hpa or {})
    by_type = {c.type: c for c in conds}
    active, limited = by_type.get("ScalingActive"), by_type.get("ScalingLimited")
    if hpa is None or active is None:
        verdict = Autoscaler(
            True, "AwaitingMetrics", "the HorizontalPodAutoscaler has not reported yet"
        )
    elif active.status is ConditionStatus.FALSE:
        verdict = Autoscaler(
            False, "MetricUnavailable", f"HorizontalPodAutoscaler {active.reason}: {active.message}"
        )
    elif (
        limited is not None
        and limited.status is ConditionStatus.TRUE
        and limited.reason == "TooManyReplicas"
    ):
        verdict = Autoscaler(True, "AtMaxReplicas", f"HorizontalPodAutoscaler: {limited.message}")
    else:
        verdict = Autoscaler(
            True, "Autoscaling", f"HorizontalPodAutoscaler {active.reason}: {active.message}"
        )
    return (
        ScalingStatus(
            provider="hpa",
            metric=scaling.metric.type.value,
            current_value=_current_value(status),
            target=_target(scaling),
            current_replicas=int(status.get("currentReplicas") or 0),
            desired_replicas=int(status.get("desiredReplicas") or 0),
            last_scale_time=_time(status.get("lastScaleTime")),
            reason=verdict.reason,
            message=verdict.message[:4096],
            conditions=conds,
        ),
        verdict,
    )


def from_scaled_object(
    scaling: ScalingSpec, scaled: Mapping[str, Any] | None, current: int
) -> tuple[ScalingStatus, Autoscaler]:
    """status.scaling and the condition's account from KEDA's ScaledObject."""
    conds = _conditions(scaled or {})
    ready = next((c for c in conds if c.type == "Ready"), None)
    if scaled is None or ready is None:
        verdict = Autoscaler(
            True, "AwaitingMetrics", "KEDA has not reported on the ScaledObject yet"
        )
    elif ready.status is not ConditionStatus.TRUE:
        verdict = Autoscaler(
            False, "AutoscalerNotReady", f"ScaledObject {ready.reason}: {ready.message}"
        )
    else:
        verdict = Autoscaler(True, "Autoscaling", f"ScaledObject {ready.reason}: {ready.message}")
    return (
        ScalingStatus(
            provider="keda",
            metric=scaling.metric.type.value,
            target=_target(scaling),
            current_replicas=current,
            desired_replicas=current,
            reason=verdict.reason,
            message=verdict.message[:4096],
            conditions=conds,
        ),
        verdict,
    )
