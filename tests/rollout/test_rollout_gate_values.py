"""Gate annotations act only on values Gantry knows; anything else is named, never guessed."""

from __future__ import annotations

import pytest

from gantry.rollout.types import (
    ABORT_ANNOTATION,
    GATE_ANNOTATIONS,
    PAUSE_ANNOTATION,
    PROMOTE_ANNOTATION,
    RESUME_ANNOTATION,
    Gates,
    InvalidGate,
    PromoteMode,
    invalid_gates,
    read_gates,
)

BOOLEAN_GATES = [ABORT_ANNOTATION, PAUSE_ANNOTATION, RESUME_ANNOTATION]
FIELD = {ABORT_ANNOTATION: "abort", PAUSE_ANNOTATION: "pause", RESUME_ANNOTATION: "resume"}
UNKNOWN = ["banana", "", "  ", "2", "truee", "promote", "step-2", "yes please", "null"]


@pytest.mark.parametrize("key", BOOLEAN_GATES)
@pytest.mark.parametrize("value", ["true", "True", " TRUE ", "1", "yes", "on"])
def test_boolean_gate_set(key: str, value: str) -> None:
    gates = read_gates({key: value})
    assert getattr(gates, FIELD[key]) is True
    assert gates.present == (key,)
    assert invalid_gates({key: value}) == ()


@pytest.mark.parametrize("key", GATE_ANNOTATIONS)
@pytest.mark.parametrize("value", ["false", "0", "no", "off", "OFF"])
def test_unset_values_are_known_and_do_nothing(key: str, value: str) -> None:
    gates = read_gates({key: value})
    assert gates == Gates(present=(key,))
    assert invalid_gates({key: value}) == ()


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("true", PromoteMode.FULL),
        ("step", PromoteMode.STEP),
        ("Step", PromoteMode.STEP),
        ("1", PromoteMode.FULL),
        ("false", None),
    ],
)
def test_promote_values(value: str, mode: PromoteMode | None) -> None:
    assert read_gates({PROMOTE_ANNOTATION: value}).promote is mode


@pytest.mark.parametrize("key", GATE_ANNOTATIONS)
@pytest.mark.parametrize("value", UNKNOWN)
def test_unknown_values_are_never_acted_on(key: str, value: str) -> None:
    annotations = {key: value}
    assert read_gates(annotations) == Gates()
    (bad,) = invalid_gates(annotations)
    assert bad == InvalidGate(key, value)
    assert key in bad.message
    assert repr(value) in bad.message
    accepted = "true or step" if key == PROMOTE_ANNOTATION else "use true;"
    assert accepted in bad.message


def test_step_is_only_a_promote_value() -> None:
    assert read_gates({PAUSE_ANNOTATION: "step"}) == Gates()
    assert invalid_gates({PAUSE_ANNOTATION: "step"}) == (InvalidGate(PAUSE_ANNOTATION, "step"),)


def test_a_bad_gate_does_not_hide_a_good_one() -> None:
    annotations = {PROMOTE_ANNOTATION: "banana", PAUSE_ANNOTATION: "true", "other/x": "banana"}
    gates = read_gates(annotations)
    assert (gates.pause, gates.promote, gates.present) == (True, None, (PAUSE_ANNOTATION,))
    assert invalid_gates(annotations) == (InvalidGate(PROMOTE_ANNOTATION, "banana"),)
