"""The demo's live view of a rollout, one line per change (pure: no I/O).

``make demo`` polls the ModelDeployment once a second and prints a :class:`Frame` only when it
differs from the last one printed, so a newcomer sees every step, weight and analysis verdict
the operator wrote, without a wall of identical lines. The object is read through the kubectl
plugin's tolerant reader (:func:`gantry.kubectl_plugin.view.view`), so a field the operator
has not written yet reads as empty instead of failing the demo.

The end of each act is decided here too: :func:`serving` (the first model is Ready on every
replica), :func:`promoted` and :func:`rolled_back` (a canary of one model version finished).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gantry.kubectl_plugin.view import ModelDeploymentView, view

__all__ = ["Frame", "frame_of", "promoted", "rolled_back", "serving"]

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Frame:
    """What one line of the live view shows; equal frames are printed once."""

    phase: str
    serving: str
    """The stable's model version (what the Service sends most traffic to)."""
    canary: str
    """The canary's model version and phase, empty when no canary is known."""
    step: str
    weight: str
    analysis: str
    ready: str
    """Model servers that answer ready over desired pods, as ``kubectl get md`` READY."""

    def text(self) -> str:
        parts = [f"{self.phase or 'Pending':<11}", f"serving v{self.serving or '?'}"]
        if self.canary:
            parts.append(f"canary {self.canary}")
        if self.step:
            parts.append(f"step {self.step}")
        if self.weight:
            parts.append(f"weight {self.weight}")
        if self.analysis:
            parts.append(f"analysis {self.analysis}")
        parts.append(f"ready {self.ready}")
        return "  ".join(parts)


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _step(md: ModelDeploymentView) -> str:
    canary = md.canary
    if canary is None or canary.step_index is None:
        return ""
    total = len(md.steps)
    index = canary.step_index
    # The index runs one past the last step once every step is done (promotion under way).
    if index >= total:
        return f"{total}/{total} done"
    return f"{index + 1}/{total} {md.steps[index].text}"


def _weight(md: ModelDeploymentView) -> str:
    canary = md.canary
    if canary is None or canary.weight is None:
        return ""
    if canary.actual_weight is None or canary.actual_weight == canary.weight:
        return f"{canary.weight}%"
    return f"{canary.weight}% (actual {canary.actual_weight}%)"


def _analysis(md: ModelDeploymentView) -> str:
    if md.canary is None:
        return ""
    a = md.canary.analysis
    if not a.runs:
        return ""
    tally = f"{a.successes} ok, {a.failures} failed"
    if a.inconclusive:
        tally += f", {a.inconclusive} inconclusive"
    return f"{a.runs[0].verdict or '?'} ({tally})"


def frame_of(md: Obj) -> Frame:
    """The live view's line for one ModelDeployment object (as ``kubectl get -o json``)."""
    v = view(md)
    canary = ""
    if v.canary is not None:
        canary = f"v{v.canary.revision.model_version or '?'} {v.canary.phase}".rstrip()
    return Frame(
        phase=v.phase,
        serving=v.stable.model_version if v.stable is not None else "",
        canary=canary,
        step=_step(v),
        weight=_weight(v),
        analysis=_analysis(v),
        ready=f"{_count(v.model_ready_replicas)}/{_count(v.replicas)}",
    )


def _current(md: ModelDeploymentView) -> bool:
    """The status describes the spec as it is now (not an earlier generation)."""
    return md.generation is not None and md.observed_generation == md.generation


def serving(md: Obj, replicas: int) -> bool:
    """The spec's model is Ready and answers on every one of ``replicas`` pods."""
    v = view(md)
    return (
        _current(v)
        and v.phase == "Ready"
        and v.stable is not None
        and v.stable.model_version == v.model_version
        and v.stable.model_ready_replicas == replicas
    )


def promoted(md: Obj, version: str) -> bool:
    """The canary of model ``version`` was promoted: it is the stable and the object Ready."""
    v = view(md)
    return (
        _current(v)
        and v.phase == "Ready"
        and v.canary is not None
        and v.canary.phase == "Promoted"
        and v.canary.revision.model_version == version
        and v.stable is not None
        and v.stable.model_version == version
    )


def rolled_back(md: Obj, version: str) -> bool:
    """The canary of model ``version`` was aborted and the stable serves another version."""
    v = view(md)
    return (
        _current(v)
        and v.canary is not None
        and v.canary.phase == "Aborted"
        and v.canary.revision.model_version == version
        and v.stable is not None
        and v.stable.model_version != version
    )
