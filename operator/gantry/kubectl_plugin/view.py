"""A ModelDeployment as the plugin shows it, read tolerantly from the raw object (pure).

The plugin reads raw JSON, not :mod:`gantry.api` models: it must draw objects written by an
older or newer operator (fields missing, conditions or phases it does not know), where the
models, which refuse unknown fields, would draw nothing at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Obj = Mapping[str, Any]


def _map(obj: Any, *path: str) -> Obj:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj if isinstance(obj, Mapping) else {}


def _list(obj: Obj, key: str) -> list[Obj]:
    items = obj.get(key)
    if not isinstance(items, Sequence) or isinstance(items, str):
        return []
    return [item for item in items if isinstance(item, Mapping)]


def _str(obj: Obj, key: str) -> str:
    value = obj.get(key)
    return "" if value is None or isinstance(value, Mapping | list) else str(value)


def _int(obj: Obj, key: str) -> int | None:
    value = obj.get(key)
    # bool is an int in Python; a true/false here is a malformed object, not 1/0.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(obj: Obj, key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _time(obj: Obj, key: str) -> datetime | None:
    text = _str(obj, key)
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    since: datetime | None
    observed_generation: int | None


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None
    threshold: str
    verdict: str
    message: str


@dataclass(frozen=True)
class AnalysisRun:
    time: datetime | None
    verdict: str
    request_count: float | None
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class Analysis:
    successes: int
    failures: int
    inconclusive: int
    runs: tuple[AnalysisRun, ...]
    """Most recent first: the history, or only ``last`` when the history is empty."""


@dataclass(frozen=True)
class Revision:
    revision: str
    deployment: str
    model_version: str
    replicas: int | None
    ready_replicas: int | None
    model_ready_replicas: int | None


@dataclass(frozen=True)
class Canary:
    revision: Revision
    phase: str
    reason: str
    message: str
    step_index: int | None
    weight: int | None
    actual_weight: int | None
    analysis: Analysis


@dataclass(frozen=True)
class Step:
    """One spec step, in words: ``setWeight 10``, ``pause 60s``, ``analysis x2``."""

    text: str


@dataclass(frozen=True)
class ModelDeploymentView:
    name: str
    namespace: str
    generation: int | None
    observed_generation: int | None
    created: datetime | None
    deleting: bool
    has_status: bool
    phase: str
    message: str
    model: str
    model_version: str
    strategy: str
    steps: tuple[Step, ...]
    replicas: int | None
    ready_replicas: int | None
    model_ready_replicas: int | None
    endpoints: tuple[tuple[str, str], ...]
    stable: Revision | None
    canary: Canary | None
    conditions: tuple[Condition, ...]


def _revision(obj: Obj) -> Revision:
    return Revision(
        revision=_str(obj, "revision"),
        deployment=_str(obj, "deployment"),
        model_version=_str(obj, "modelVersion"),
        replicas=_int(obj, "replicas"),
        ready_replicas=_int(obj, "readyReplicas"),
        model_ready_replicas=_int(obj, "modelReadyReplicas"),
    )


def _run(obj: Obj) -> AnalysisRun:
    metrics = tuple(
        Metric(
            name=_str(m, "name"),
            value=_float(m, "value"),
            threshold=_str(m, "threshold"),
            verdict=_str(m, "verdict"),
            message=_str(m, "message"),
        )
        for m in _list(obj, "metrics")
    )
    return AnalysisRun(
        time=_time(obj, "time"),
        verdict=_str(obj, "verdict"),
        request_count=_float(obj, "requestCount"),
        metrics=metrics,
    )


def _analysis(obj: Obj) -> Analysis:
    history = [_run(r) for r in _list(obj, "history")]
    last = _map(obj, "last")
    if not history and last:
        history = [_run(last)]
    return Analysis(
        successes=_int(obj, "successes") or 0,
        failures=_int(obj, "failures") or 0,
        inconclusive=_int(obj, "inconclusive") or 0,
        runs=tuple(reversed(history)),
    )


def _step(obj: Obj) -> Step:
    if "setWeight" in obj:
        return Step(f"setWeight {_str(obj, 'setWeight')}")
    if "pause" in obj:
        duration = _str(_map(obj, "pause"), "duration")
        return Step(f"pause {duration}" if duration else "pause until promoted")
    if "analysis" in obj:
        return Step(f"analysis x{_int(_map(obj, 'analysis'), 'intervals') or 1}")
    return Step("?")


def _condition(obj: Obj) -> Condition:
    return Condition(
        type=_str(obj, "type"),
        status=_str(obj, "status"),
        reason=_str(obj, "reason"),
        message=_str(obj, "message"),
        since=_time(obj, "lastTransitionTime"),
        observed_generation=_int(obj, "observedGeneration"),
    )


def view(md: Obj) -> ModelDeploymentView:
    """The parts of a ModelDeployment the plugin draws; absent fields read as empty."""
    meta, spec, status = _map(md, "metadata"), _map(md, "spec"), _map(md, "status")
    rollout = _map(spec, "rollout")
    canary = _map(status, "canary")
    stable = _map(status, "stable")
    endpoints = _map(status, "endpoints")
    return ModelDeploymentView(
        name=_str(meta, "name"),
        namespace=_str(meta, "namespace"),
        generation=_int(meta, "generation"),
        observed_generation=_int(status, "observedGeneration"),
        created=_time(meta, "creationTimestamp"),
        deleting=bool(_str(meta, "deletionTimestamp")),
        has_status=bool(status),
        phase=_str(status, "phase"),
        message=_str(status, "message"),
        model=_str(_map(spec, "model"), "name"),
        model_version=_str(_map(spec, "model"), "version"),
        strategy=_str(rollout, "strategy") or "rolling",
        steps=tuple(_step(s) for s in _list(_map(rollout, "canary"), "steps")),
        replicas=_int(status, "replicas"),
        ready_replicas=_int(status, "readyReplicas"),
        model_ready_replicas=_int(status, "modelReadyReplicas"),
        endpoints=tuple((k, str(v)) for k, v in endpoints.items() if v and isinstance(v, str)),
        stable=_revision(stable) if stable else None,
        canary=Canary(
            revision=_revision(canary),
            phase=_str(canary, "phase"),
            reason=_str(canary, "reason"),
            message=_str(canary, "message"),
            step_index=_int(canary, "stepIndex"),
            weight=_int(canary, "weight"),
            actual_weight=_int(canary, "actualWeight"),
            analysis=_analysis(_map(canary, "analysis")),
        )
        if canary
        else None,
        conditions=tuple(_condition(c) for c in _list(status, "conditions")),
    )
