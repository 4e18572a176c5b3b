"""Background analysis inside the rollout: when to measure and what a verdict does (pure).

Analysis runs every ``analysis.interval`` while the canary serves traffic (its
routed weight is above 0 and it has a pod to take it) or sits at an analysis
step, in every phase of a canary in flight, paused included: a paused canary
still serves its share, so failing it must still roll it back.

The first measurement of a run of analysis (``last_analysis_at`` empty) and a
*warming* one (the scrape provider had no previous counters) only start an
interval. After that each interval's verdict:

* Successful: ``successes`` +1, the inconclusive streak resets, and on an
  analysis step (not paused) the step's success count +1.
* Failed: ``failures`` +1 (cumulative over the canary, like Flagger's failed
  checks); more than ``failureLimit`` -> roll back with reason AnalysisFailed,
  naming the failing metrics.
* Inconclusive (too little traffic, no data) and Error (the provider could not
  measure): the inconclusive streak +1; a streak above ``inconclusiveLimit``
  pauses a progressing canary (reason InconclusiveAnalysis) until a resume or
  promote gate. Neither ever counts as a success.

With measurements every interval, the worst case from the first bad request to
the rollback is ``interval * (failureLimit + 1)`` plus the interval in which
the bad data started.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gantry.analysis.measurement import Measurement
from gantry.analysis.verdict import evaluate, failing_metrics, summary
from gantry.api.spec import AnalysisSpec, parse_duration
from gantry.api.status import AnalysisStatus, CanaryPhase, CanaryStatus, Verdict
from gantry.rollout.types import Event

HISTORY_LENGTH = 10


@dataclass(frozen=True)
class Judgement:
    """The canary after one measurement, and what the verdict demands.

    Attributes:
        canary: Counters, history and interval clock updated.
        events: Events for failed or errored intervals.
        rollback: Why to roll back now, or None.
        pause: Why to pause now, or None.
        note: A line about the measurement for the decision message.
    """

    canary: CanaryStatus
    events: tuple[Event, ...] = ()
    rollback: str | None = None
    pause: str | None = None
    note: str = ""


def interval_seconds(spec: AnalysisSpec) -> float:
    return parse_duration(spec.interval)


def next_due(canary: CanaryStatus, spec: AnalysisSpec) -> datetime | None:
    """When the next interval ends; None when a measurement is due right away."""
    if canary.last_analysis_at is None:
        return None
    return canary.last_analysis_at + timedelta(seconds=interval_seconds(spec))


def is_due(canary: CanaryStatus, spec: AnalysisSpec, now: datetime) -> bool:
    due = next_due(canary, spec)
    return due is None or now >= due


def usable(measurement: Measurement | None, canary: CanaryStatus) -> Measurement | None:
    """The measurement if it is about this canary revision; a stale one is ignored."""
    if measurement is None or measurement.revision != canary.revision:
        return None
    return measurement


def judge(
    canary: CanaryStatus,
    measurement: Measurement,
    spec: AnalysisSpec,
    now: datetime,
    *,
    on_analysis_step: bool,
) -> Judgement:
    """Fold one due measurement into the canary.

    Args:
        canary: The canary in flight.
        measurement: The interval's measurement (for this revision).
        spec: Thresholds and limits.
        now: The decision time; it ends this interval and starts the next.
        on_analysis_step: The canary sits at an analysis step.

    Returns:
        The judgement.
    """
    started = canary.model_copy(update={"last_analysis_at": now})
    if canary.last_analysis_at is None or measurement.warming:
        return Judgement(started, note="analysis interval started")
    run = evaluate(measurement, spec)
    old = canary.analysis
    a = AnalysisStatus(
        successes=old.successes,
        failures=old.failures,
        inconclusive=old.inconclusive,
        step_successes=old.step_successes,
        last=run,
        history=[*old.history, run][-HISTORY_LENGTH:],
    )
    text = summary(run)
    events: list[Event] = []
    rollback = pause = None
    if run.verdict is Verdict.SUCCESSFUL:
        counts = on_analysis_step and canary.phase is CanaryPhase.PROGRESSING
        a = a.model_copy(
            update={
                "successes": a.successes + 1,
                "inconclusive": 0,
                "step_successes": a.step_successes + (1 if counts else 0),
            }
        )
    elif run.verdict is Verdict.FAILED:
        a = a.model_copy(update={"failures": a.failures + 1})
        limit = spec.failure_limit
        if a.failures > limit:
            names = ", ".join(failing_metrics(run))
            rollback = f"analysis failed {a.failures} times (limit {limit}): {names}: {text}"
        else:
            message = f"analysis interval failed ({a.failures} of {limit} tolerated): {text}"
            events.append(Event("Warning", "AnalysisIntervalFailed", message))
    else:
        a = a.model_copy(update={"inconclusive": a.inconclusive + 1})
        limit = spec.inconclusive_limit
        if run.verdict is Verdict.ERROR:
            events.append(Event("Warning", "AnalysisError", text))
        if a.inconclusive > limit and canary.phase is CanaryPhase.PROGRESSING:
            pause = (
                f"{text} ({a.inconclusive} inconclusive intervals in a row, limit {limit}); "
                "resume with the serving.gantry.dev/resume or promote annotation"
            )
    judged = started.model_copy(update={"analysis": a})
    return Judgement(judged, tuple(events), rollback=rollback, pause=pause, note=text)


def reset_counters(canary: CanaryStatus) -> CanaryStatus:
    """Counters back to zero for a restarted step list; the history stays for display."""
    a = canary.analysis
    fresh = AnalysisStatus(last=a.last, history=list(a.history))
    return canary.model_copy(update={"analysis": fresh, "last_analysis_at": None})
