"""A canary in flight: starting, stepping, analysis, gates, rollback, promotion (pure).

One call handles the canary in this order and stops at the first transition,
so it advances at most one step:

1. steps edited (hash differs) -> restart from step 0;
2. gates: abort > promote (full or one step) > resume > pause; a promote gate
   also clears the inconclusive streak (so stale evidence cannot pause the
   promotion it asked for), and in the promotion phase, paused or not, it
   promotes as soon as the canary has every pod;
3. analysis, when an interval is due: ask for a measurement, or judge the one
   given (rollback on too many failures, pause on too many inconclusive);
4. the current step, when progressing: setWeight and the promotion phase wait
   for the canary's pods (rolling back after ``progressDeadlineSeconds``), a
   timed pause for its end, an analysis step for its successful intervals.
   Completing the last step enters the promotion phase; completing that promotes.

Rollback drops the canary Deployment from the plan (it is deleted: a failed
revision has no reason to hold GPUs) and gives the stable its steady size and
autoscaler back; the canary stays in status as Aborted, so the same revision is
not retried until the spec changes (or a resume gate retries it).
"""

from __future__ import annotations

from datetime import timedelta

from gantry.analysis.verdict import summary
from gantry.api.spec import TrafficRoutingType
from gantry.api.status import CanaryPhase, CanaryStatus, RevisionStatus
from gantry.rollout import judging, steps
from gantry.rollout.context import Ctx, canary_plan, shape, steady_plan
from gantry.rollout.types import Decision, Event, PromoteMode, Reason, read_gates

READINESS_POLL_S = 10.0
MIN_REQUEUE_S = 1.0


def start(
    ctx: Ctx,
    stable: RevisionStatus,
    stable_replicas: int,
    events: list[Event],
    *,
    verb: str,
    consumed: tuple[str, ...] = (),
) -> Decision:
    """A new canary of the desired revision at step 0.

    Gates other than ``consumed`` are left in place and apply to the new canary on
    the next tick (a pause set together with the spec change pauses the new canary).
    """
    canary = CanaryStatus(
        revision=ctx.revision,
        deployment=ctx.canary_deployment,
        model_version=ctx.spec.model.version,
        image=ctx.spec.runtime.image,
        steps_hash=steps.steps_hash(ctx.steps),
        stable_replicas=stable_replicas,
        started_at=ctx.now,
    )
    canary = steps.enter(canary, 0, ctx.steps, ctx.now)
    events.append(
        Event(
            "Normal",
            "CanaryStarted",
            f"canary {ctx.revision} {verb} beside stable {stable.revision} "
            f"({stable_replicas} replicas, frozen): {steps.label(0, ctx.steps)}",
        )
    )
    return finish(ctx, stable, canary, events, consumed)


def rollback(
    ctx: Ctx,
    stable: RevisionStatus,
    canary: CanaryStatus,
    reason: Reason,
    why: str,
    events: list[Event],
    consumed: tuple[str, ...] = (),
) -> Decision:
    message = f"canary {canary.revision} rolled back ({reason.value}): {why}"
    aborted = canary.model_copy(
        update={
            "phase": CanaryPhase.ABORTED,
            "reason": reason.value,
            "message": message,
            "weight": 0,
            "actual_weight": 0,
            "last_analysis_at": None,
        }
    )
    events.append(Event("Warning", reason.value, message))
    return Decision(
        plan=steady_plan(ctx, stable),
        stable=stable,
        canary=aborted,
        events=tuple(events),
        consumed=consumed,
        message=message,
    )


def promote(
    ctx: Ctx, canary: CanaryStatus, events: list[Event], consumed: tuple[str, ...] = ()
) -> Decision:
    """The canary Deployment becomes the stable one (only its role changes, no restart)."""
    stable = RevisionStatus(
        revision=canary.revision,
        deployment=canary.deployment,
        model_version=canary.model_version,
        image=canary.image,
    )
    old = ctx.status.stable
    message = f"canary {canary.revision} promoted: {canary.deployment} is the stable Deployment"
    if old is not None:
        message += f"; {old.deployment} (revision {old.revision}) is removed"
    promoted = canary.model_copy(
        update={
            "phase": CanaryPhase.PROMOTED,
            "reason": Reason.PROMOTED.value,
            "message": message,
            "weight": 100,
            "actual_weight": 100,
            "last_analysis_at": None,
        }
    )
    events.append(Event("Normal", "CanaryPromoted", message))
    return Decision(
        plan=steady_plan(ctx, stable),
        stable=stable,
        canary=promoted,
        events=tuple(events),
        consumed=consumed,
        message=message,
    )


def _advance(ctx: Ctx, canary: CanaryStatus, events: list[Event], why: str) -> CanaryStatus:
    done = steps.label(canary.step_index, ctx.steps)
    nxt = canary.step_index + 1
    entered = steps.enter(canary, nxt, ctx.steps, ctx.now)
    if nxt >= len(ctx.steps):
        text = f"{done} {why}; promotion: canary grows to full size, then becomes stable"
        events.append(Event("Normal", "CanaryPromoting", text))
    else:
        events.append(Event("Normal", "CanaryStep", f"{done} {why}; {steps.label(nxt, ctx.steps)}"))
    return entered


def progress(ctx: Ctx, stable: RevisionStatus, canary: CanaryStatus) -> Decision:
    """One tick of a canary in flight (Progressing or Paused)."""
    events: list[Event] = []
    if canary.steps_hash != steps.steps_hash(ctx.steps):
        restarted = judging.reset_counters(canary).model_copy(
            update={"steps_hash": steps.steps_hash(ctx.steps), "weight": 0}
        )
        restarted = steps.enter(restarted, 0, ctx.steps, ctx.now)
        text = f"canary steps changed: restarting from {steps.label(0, ctx.steps)}"
        events.append(Event("Normal", "CanaryStepsChanged", text))
        return finish(ctx, stable, restarted, events)

    gates = read_gates(ctx.obs.annotations)
    consumed = gates.present
    step = steps.current(canary.step_index, ctx.steps)
    promoting = step is None
    if gates.abort:
        why = "aborted with the serving.gantry.dev/abort annotation"
        return rollback(ctx, stable, canary, Reason.MANUAL_ABORT, why, events, consumed)
    if gates.promote is not None:
        # The gate is a person's word that the evidence so far is enough: an
        # inconclusive streak left from before must not pause what it asked for.
        canary = _fresh_streak(canary)
        if promoting:
            return _promote_gate_at_full_weight(ctx, stable, canary, events, consumed)
        if gates.promote is PromoteMode.FULL:
            text = "promotion requested: skipping steps"
            events.append(Event("Normal", "CanaryPromoting", text))
            entered = steps.enter(canary, len(ctx.steps), ctx.steps, ctx.now)
            return finish(ctx, stable, entered, events, consumed)
        canary = _advance(ctx, canary, events, "skipped by the promote annotation")
        return finish(ctx, stable, canary, events, consumed)
    if gates.resume and canary.phase is CanaryPhase.PAUSED:
        if canary.reason == Reason.PAUSE_STEP:
            canary = _advance(ctx, canary, events, "resumed")
        else:
            canary = _unpaused(_fresh_streak(canary), ctx)
            text = f"canary resumed at {steps.label(canary.step_index, ctx.steps)}"
            events.append(Event("Normal", "CanaryResumed", text))
        return finish(ctx, stable, canary, events, consumed)
    if gates.pause and canary.phase is CanaryPhase.PROGRESSING:
        paused = canary.model_copy(
            update={"phase": CanaryPhase.PAUSED, "reason": Reason.MANUAL_PAUSE.value}
        )
        text = f"canary paused at {steps.label(canary.step_index, ctx.steps)} by annotation"
        events.append(Event("Normal", "CanaryPaused", text))
        return finish(ctx, stable, paused, events, consumed)

    measure = False
    note = ""
    spec = ctx.canary_spec.analysis
    if _analysis_active(ctx, canary):
        if judging.is_due(canary, spec, ctx.now):
            measurement = judging.usable(ctx.obs.measurement, canary)
            if measurement is None:
                measure = True
            else:
                on_analysis = step is not None and step.analysis is not None
                j = judging.judge(canary, measurement, spec, ctx.now, on_analysis_step=on_analysis)
                events.extend(j.events)
                canary, note = j.canary, j.note
                if j.rollback is not None:
                    return rollback(
                        ctx, stable, canary, Reason.ANALYSIS_FAILED, j.rollback, events, consumed
                    )
                if j.pause is not None:
                    canary = canary.model_copy(
                        update={"phase": CanaryPhase.PAUSED, "reason": Reason.INCONCLUSIVE.value}
                    )
                    events.append(Event("Warning", "CanaryPaused", j.pause))
                    return finish(ctx, stable, canary, events, consumed)
    elif canary.last_analysis_at is not None:
        # Not serving: the next run of analysis starts with a fresh interval.
        canary = canary.model_copy(update={"last_analysis_at": None})

    if canary.phase is CanaryPhase.PROGRESSING:
        return _step(ctx, stable, canary, events, consumed, measure=measure, note=note)
    return finish(ctx, stable, canary, events, consumed, measure=measure, note=note)


def _fresh_streak(canary: CanaryStatus) -> CanaryStatus:
    return canary.model_copy(
        update={"analysis": canary.analysis.model_copy(update={"inconclusive": 0})}
    )


def _unpaused(canary: CanaryStatus, ctx: Ctx) -> CanaryStatus:
    """Progressing again at the same step. Its clock restarts: a wait for pods is not
    charged the time spent paused (``progressDeadlineSeconds`` would end it at once)."""
    return canary.model_copy(
        update={"phase": CanaryPhase.PROGRESSING, "reason": "", "step_started_at": ctx.now}
    )


def _promote_gate_at_full_weight(
    ctx: Ctx,
    stable: RevisionStatus,
    canary: CanaryStatus,
    events: list[Event],
    consumed: tuple[str, ...],
) -> Decision:
    """A promote gate (either value) in the promotion phase, where the only step left
    is the promotion itself: promote now if the canary has every pod, else wait for
    them, un-paused whatever paused it (a paused canary never completes a step)."""
    cs = shape(ctx, canary)
    if cs.ready:
        return promote(ctx, canary, events, consumed)
    if canary.phase is CanaryPhase.PAUSED:
        canary = _unpaused(canary, ctx)
    text = (
        f"promotion requested: {cs.serving}/{cs.split.canary} canary pods ready, "
        "promoted once all are"
    )
    events.append(Event("Normal", "CanaryPromoting", text))
    return finish(ctx, stable, canary, events, consumed)


def _analysis_active(ctx: Ctx, canary: CanaryStatus) -> bool:
    step = steps.current(canary.step_index, ctx.steps)
    on_analysis_step = step is not None and step.analysis is not None
    if ctx.routing is TrafficRoutingType.GATEWAY_API:
        serving = canary.actual_weight > 0  # the weight the route carries now
    else:
        serving = canary.weight > 0 and ctx.serving(canary.deployment) > 0
    return serving or on_analysis_step


def _step(
    ctx: Ctx,
    stable: RevisionStatus,
    canary: CanaryStatus,
    events: list[Event],
    consumed: tuple[str, ...],
    *,
    measure: bool,
    note: str,
) -> Decision:
    """Complete the current step when its condition holds (a progressing canary)."""
    step = steps.current(canary.step_index, ctx.steps)
    if steps.waits_for_pods(step):
        cs = shape(ctx, canary)
        if cs.ready:
            if step is None:
                return promote(ctx, canary, events, consumed)
            canary = _advance(ctx, canary, events, f"done ({cs.serving} canary pods ready)")
        elif canary.step_started_at is not None:
            waited = (ctx.now - canary.step_started_at).total_seconds()
            deadline = ctx.spec.rollout.progress_deadline_seconds
            if waited > deadline:
                why = (
                    f"{cs.serving}/{cs.split.canary} canary pods ready after {waited:.0f}s "
                    f"(progressDeadlineSeconds {deadline})"
                )
                return rollback(
                    ctx, stable, canary, Reason.PROGRESS_DEADLINE, why, events, consumed
                )
    elif steps.is_indefinite_pause(step):
        canary = canary.model_copy(
            update={"phase": CanaryPhase.PAUSED, "reason": Reason.PAUSE_STEP.value}
        )
    elif (seconds := steps.pause_seconds(step)) is not None:
        started = canary.pause_started_at or canary.step_started_at or ctx.now
        if ctx.now >= started + timedelta(seconds=seconds):
            canary = _advance(ctx, canary, events, "done")
    elif (
        step is not None
        and step.analysis is not None
        and canary.analysis.step_successes >= step.analysis.intervals
    ):
        canary = _advance(ctx, canary, events, "passed")
    return finish(ctx, stable, canary, events, consumed, measure=measure, note=note)


def _requeue(ctx: Ctx, canary: CanaryStatus, ready: bool) -> float | None:
    """Seconds until the next time-based event of this canary."""
    waits: list[float] = []
    if canary.phase in (CanaryPhase.PROGRESSING, CanaryPhase.PAUSED) and _analysis_active(
        ctx, canary
    ):
        due = judging.next_due(canary, ctx.canary_spec.analysis)
        waits.append(0.0 if due is None else (due - ctx.now).total_seconds())
    step = steps.current(canary.step_index, ctx.steps)
    if canary.phase is CanaryPhase.PROGRESSING:
        seconds = steps.pause_seconds(step)
        if seconds is not None and canary.pause_started_at is not None:
            end = canary.pause_started_at + timedelta(seconds=seconds)
            waits.append((end - ctx.now).total_seconds())
        if steps.waits_for_pods(step) and not ready:
            waits.append(READINESS_POLL_S)
            if canary.step_started_at is not None:
                deadline = canary.step_started_at + timedelta(
                    seconds=ctx.spec.rollout.progress_deadline_seconds
                )
                waits.append((deadline - ctx.now).total_seconds() + MIN_REQUEUE_S)
    if not waits:
        return None
    return max(MIN_REQUEUE_S, min(waits))


_PAUSE_HINTS = {
    Reason.PAUSE_STEP.value: "paused until promoted: set the serving.gantry.dev/promote "
    "(or resume) annotation",
    Reason.MANUAL_PAUSE.value: "paused by annotation: set serving.gantry.dev/resume to continue",
    Reason.INCONCLUSIVE.value: "paused, too little evidence to judge: set serving.gantry.dev/"
    "resume or promote",
}


def _describe(ctx: Ctx, canary: CanaryStatus, serving: int, desired: int) -> str:
    where = steps.label(canary.step_index, ctx.steps)
    text = (
        f"canary {canary.revision} at {where}: weight {canary.weight}% "
        f"(effective {canary.actual_weight}%), {serving}/{desired} canary pods ready"
    )
    if canary.phase is CanaryPhase.PAUSED:
        text += f"; {_PAUSE_HINTS.get(canary.reason, 'paused')}"
        if canary.reason == Reason.INCONCLUSIVE and canary.analysis.last is not None:
            text += f" ({summary(canary.analysis.last)})"
    a = canary.analysis
    if a.last is not None:
        text += f"; analysis {a.successes} ok, {a.failures} failed, {a.inconclusive} inconclusive"
    return text


def finish(
    ctx: Ctx,
    stable: RevisionStatus,
    canary: CanaryStatus,
    events: list[Event],
    consumed: tuple[str, ...] = (),
    *,
    measure: bool = False,
    note: str = "",
) -> Decision:
    """The decision for a canary still in flight: plan, effective weight, requeue, message."""
    cs = shape(ctx, canary)
    canary = canary.model_copy(update={"actual_weight": cs.actual_weight})
    message = _describe(ctx, canary, cs.serving, cs.split.canary)
    if note:
        message += f" -- {note}"
    canary = canary.model_copy(update={"message": message})
    return Decision(
        plan=canary_plan(ctx, stable, canary, cs),
        stable=stable,
        canary=canary,
        events=tuple(events),
        requeue_after=_requeue(ctx, canary, cs.ready),
        measure=measure,
        consumed=consumed,
        message=message,
    )
