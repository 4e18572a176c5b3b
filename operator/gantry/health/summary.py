"""Fold many endpoint probes into one line for a condition: pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from gantry.health.probe import SEVERITY, ModelProbe, ProbeReason

__all__ = ["MAX_SUMMARY_CHARS", "ProbeSummary", "summarize"]

#: Condition messages stay readable in ``kubectl get``/``describe``.
MAX_SUMMARY_CHARS = 1024


class ProbeSummary(NamedTuple):
    """The outcome across endpoints.

    Attributes:
        ready_count: endpoints whose model version is ready.
        reason: the worst reason seen (``ModelReady`` when all are ready).
        message: counts, and the first worst endpoint's message.
    """

    ready_count: int
    reason: ProbeReason
    message: str


def summarize(probes: Sequence[ModelProbe]) -> ProbeSummary:
    """Summarize probes into ``(ready_count, worst reason, message)``.

    The worst reason is the most severe by :data:`~gantry.health.probe.SEVERITY`
    (a load failure outranks an unreachable server, which outranks a model still
    loading); the message quotes the first endpoint (in input order) that had it,
    so the text is stable for the same inputs and a status is not rewritten for
    nothing.
    """
    total = len(probes)
    if total == 0:
        return ProbeSummary(0, ProbeReason.NO_ENDPOINTS, "no endpoints to probe")
    ready = sum(1 for p in probes if p.model_ready)
    worst = max(probes, key=lambda p: SEVERITY[p.reason])
    if worst.reason is ProbeReason.MODEL_READY:
        return ProbeSummary(ready, worst.reason, f"{ready}/{total} endpoints ready")
    same = sum(1 for p in probes if p.reason is worst.reason)
    others = f" (and {same - 1} more)" if same > 1 else ""
    message = f"{ready}/{total} endpoints ready; {worst.endpoint}{others}: {worst.message}"
    if len(message) > MAX_SUMMARY_CHARS:
        message = message[: MAX_SUMMARY_CHARS - 3] + "..."
    return ProbeSummary(ready, worst.reason, message)
