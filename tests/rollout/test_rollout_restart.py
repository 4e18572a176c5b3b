"""Every state: a restarted operator decides the same; a spec change restarts the canary.

Each state is reached by driving the machine (never hand-built), then frozen
as (spec, status, observations, now).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from rollout_builders import (
    CANARY_DEP,
    MD,
    NEW,
    OLD,
    Walker,
    at,
    at_step,
    build_spec,
    good,
    observe,
    quiet,
    reasons,
    replicas,
    run_decide,
    stable,
    started,
    status,
)

from gantry.api.spec import ModelDeploymentSpec
from gantry.api.status import CanaryPhase, ModelDeploymentStatus
from gantry.rollout import Decision, Observations

NEWER = "cccccccccc"
PROMOTE = "serving.gantry.dev/promote"


@dataclasses.dataclass(frozen=True)
class State:
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    obs: Observations
    clock: float


def _frozen(w: Walker, after: float = 1.0, **obs_kw: object) -> State:
    return State(w.spec, w.st, w.obs(**obs_kw), w.clock + after)  # type: ignore[arg-type]


def _paused_manual() -> State:
    w = at_step(1)
    w.tick(1, annotations={"serving.gantry.dev/pause": "1"})
    return _frozen(w)


def _paused_inconclusive() -> State:
    w = at_step(1, build_spec(steps=[{"setWeight": 10}, {"pause": {"duration": "1h"}}]))
    for _ in range(3):
        w.tick(30, measurer=quiet)
    assert w.st.canary is not None
    assert w.st.canary.reason == "InconclusiveAnalysis"
    return _frozen(w)


def _promotion() -> State:
    w = at_step(4)
    w.tick(1, annotations={PROMOTE: "1"})
    return _frozen(w, canary_ready=2)


def _aborted() -> State:
    w = at_step(1)
    w.tick(1, annotations={"serving.gantry.dev/abort": "1"})
    return _frozen(w)


def _promoted() -> State:
    w = at_step(4)
    w.tick(1, annotations={PROMOTE: "1"})
    w.tick(1)
    return _frozen(w)


def _gateway_growing() -> State:
    w = at_step(3, build_spec(routing="gatewayAPI"))
    return _frozen(w, canary_ready=1)


STATES: dict[str, Callable[[], State]] = {
    "first-creation": lambda: State(build_spec(), status(), observe({}), 0),
    "steady": lambda: State(build_spec(), status(stable_rev=stable(NEW)), observe(), 0),
    "canary-waiting-for-pods": lambda: _frozen(started(), 5, canary_ready=0),
    "timed-pause": lambda: _frozen(at_step(1), 5),
    "analysis-step": lambda: _frozen(at_step(2), 5),
    "second-weight-growing": lambda: _frozen(at_step(3), 1, canary_ready=1),
    "indefinite-pause": lambda: _frozen(at_step(4), 5),
    "paused-by-annotation": _paused_manual,
    "paused-inconclusive": _paused_inconclusive,
    "promotion-phase": _promotion,
    "aborted": _aborted,
    "promoted": _promoted,
    "gateway-growing": _gateway_growing,
}
IN_FLIGHT = [
    "canary-waiting-for-pods",
    "timed-pause",
    "analysis-step",
    "second-weight-growing",
    "indefinite-pause",
    "paused-by-annotation",
    "paused-inconclusive",
    "promotion-phase",
    "gateway-growing",
]


def _decide(s: State, st: ModelDeploymentStatus, *, revision: str = NEW) -> Decision:
    """One tick with the measurement protocol (a good measurement when asked)."""
    d = run_decide(s.spec, st, s.obs, at(s.clock), revision=revision)
    if d.measure:
        obs = dataclasses.replace(s.obs, measurement=good(at(s.clock), revision=revision))
        d = run_decide(s.spec, st, obs, at(s.clock), revision=revision)
    return d


def _roundtrip(st: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """The status as a restarted operator reads it back from the API server."""
    return ModelDeploymentStatus.model_validate(st.model_dump(mode="json", by_alias=True))


@pytest.mark.parametrize("name", STATES)
def test_a_restarted_operator_decides_the_same(name: str) -> None:
    s = STATES[name]()
    first = _decide(s, s.status)
    assert _decide(s, s.status) == first
    assert _decide(s, _roundtrip(s.status)) == first


@pytest.mark.parametrize("name", STATES)
def test_applying_a_decision_twice_changes_nothing_more(name: str) -> None:
    s = STATES[name]()
    first = _decide(s, s.status)
    applied = s.status.model_copy(update={"stable": first.stable, "canary": first.canary})
    again = _decide(s, _roundtrip(applied))
    assert again.events == ()
    assert again.plan == first.plan
    assert (again.stable, again.canary) == (first.stable, first.canary)


@pytest.mark.parametrize("name", STATES)
def test_a_spec_change_starts_a_canary_of_the_newest_revision(name: str) -> None:
    s = STATES[name]()
    d = _decide(s, s.status, revision=NEWER)
    newer = f"{MD}-{NEWER}"
    if s.status.stable is None:  # first creation: straight to stable
        assert d.stable is not None
        assert d.stable.revision == NEWER
        assert d.canary is None
        return
    assert d.stable == s.status.stable
    assert d.canary is not None
    assert (d.canary.revision, d.canary.step_index, d.canary.deployment) == (NEWER, 0, newer)
    assert d.canary.phase is CanaryPhase.PROGRESSING
    assert set(replicas(d)) == {s.status.stable.deployment, newer}
    in_flight = name in IN_FLIGHT
    assert reasons(d) == (["CanaryAbandoned"] if in_flight else []) + ["CanaryStarted"]
    if in_flight:
        # The stable keeps the size frozen by the abandoned canary.
        assert s.status.canary is not None
        assert d.canary.stable_replicas == s.status.canary.stable_replicas


@pytest.mark.parametrize("name", IN_FLIGHT)
def test_a_spec_back_at_the_stable_revision_drops_the_canary(name: str) -> None:
    s = STATES[name]()
    d = _decide(s, s.status, revision=OLD)
    assert d.canary is None
    assert replicas(d) == {MD: 4}
    assert d.plan.deployments[0].apply_template
    assert reasons(d) == ["CanaryAbandoned"]
    assert CANARY_DEP not in replicas(d)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run_decide(build_spec(), status(), observe({}), at(0).replace(tzinfo=None))
