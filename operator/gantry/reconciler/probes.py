"""Model-health probe results, per pod and per Deployment (pure; the probes' types)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gantry.health import ModelProbe, summarize
from gantry.status.observe import ModelHealth


@dataclass(frozen=True)
class PodProbe:
    deployment: str
    probe: ModelProbe
    pod: str = ""


def model_ready_by_deployment(probes: Sequence[PodProbe]) -> dict[str, int]:
    """Model-ready pods per Deployment; a Deployment with no probed pod is absent."""
    ready: dict[str, int] = {}
    for p in probes:
        ready[p.deployment] = ready.get(p.deployment, 0) + int(p.probe.model_ready)
    return ready


def model_health(probes: Sequence[PodProbe], stable: str | None) -> ModelHealth | None:
    mine = [p.probe for p in probes if p.deployment == stable]
    if not mine:
        return ModelHealth(reason="NoRunningPods", message="no running pod to probe")
    ready, reason, message = summarize(mine)
    return ModelHealth(probed=len(mine), ready=ready, reason=reason, message=message)
