"""The demo's live view and the end of each act, on ModelDeployment objects as served."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.demo_view import Frame, frame_of, promoted, rolled_back, serving

STEPS = [
    {"setWeight": 34},
    {"analysis": {"intervals": 2}},
    {"setWeight": 50},
    {"analysis": {"intervals": 2}},
]


def run(verdict: str) -> dict[str, Any]:
    return {"time": "2025-01-01T00:00:00Z", "verdict": verdict, "metrics": []}


def canary(
    *,
    version: str = "2",
    phase: str = "Progressing",
    step: int | None = 0,
    weight: int | None = 34,
    actual: int | None = 33,
    runs: tuple[str, ...] = (),
    successes: int = 0,
    failures: int = 0,
    inconclusive: int = 0,
) -> dict[str, Any]:
    out: dict[str, Any] = {"revision": "abc", "modelVersion": version, "phase": phase}
    for key, value in (("stepIndex", step), ("weight", weight), ("actualWeight", actual)):
        if value is not None:
            out[key] = value
    if runs:
        out["analysis"] = {
            "successes": successes,
            "failures": failures,
            "inconclusive": inconclusive,
            "history": [run(v) for v in runs],
            "last": run(runs[-1]),
        }
    return out


def md(
    *,
    spec_version: str = "2",
    generation: int = 2,
    observed: int | None = 2,
    phase: str = "Progressing",
    stable_version: str | None = "1",
    stable_model_ready: int = 2,
    canary_status: dict[str, Any] | None = None,
    replicas: int | None = 3,
    model_ready: int | None = 2,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if observed is not None:
        status["observedGeneration"] = observed
    if replicas is not None:
        status["replicas"] = replicas
    if model_ready is not None:
        status["modelReadyReplicas"] = model_ready
    if stable_version is not None:
        status["stable"] = {
            "revision": "s",
            "modelVersion": stable_version,
            "modelReadyReplicas": stable_model_ready,
        }
    if canary_status is not None:
        status["canary"] = canary_status
    return {
        "metadata": {"name": "echo-cpu", "namespace": "demo", "generation": generation},
        "spec": {
            "model": {"name": "echo", "version": spec_version},
            "rollout": {"strategy": "canary", "canary": {"steps": STEPS}},
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {"metadata": {"name": "x"}},
            Frame("", "", "", "", "", "", "?/?"),
            id="no status yet",
        ),
        pytest.param(
            md(spec_version="1", stable_version="1", replicas=2, model_ready=0),
            Frame("Progressing", "1", "", "", "", "", "0/2"),
            id="first model loading",
        ),
        pytest.param(
            md(canary_status=canary()),
            Frame(
                "Progressing", "1", "v2 Progressing", "1/4 setWeight 34", "34% (actual 33%)", "",
                "2/3",
            ),
            id="first step, weight by replica ratio",
        ),
        pytest.param(
            md(canary_status=canary(step=1, runs=("Successful",), successes=1)),
            Frame(
                "Progressing", "1", "v2 Progressing", "2/4 analysis x2", "34% (actual 33%)",
                "Successful (1 ok, 0 failed)", "2/3",
            ),
            id="analysis step with one verdict",
        ),
        pytest.param(
            md(
                canary_status=canary(
                    step=3, weight=50, actual=50, runs=("Successful", "Inconclusive"),
                    successes=1, inconclusive=1,
                ),
            ),
            Frame(
                "Progressing", "1", "v2 Progressing", "4/4 analysis x2", "50%",
                "Inconclusive (1 ok, 0 failed, 1 inconclusive)", "2/3",
            ),
            id="the last verdict is shown, with the tally",
        ),
        pytest.param(
            md(
                phase="Ready", stable_version="2", replicas=2,
                canary_status=canary(phase="Promoted", step=4, weight=100, actual=100),
            ),
            Frame("Ready", "2", "v2 Promoted", "4/4 done", "100%", "", "2/2"),
            id="promoted: the step index is past the last step",
        ),
        pytest.param(
            md(
                phase="Failed", spec_version="3", stable_version="2", replicas=2,
                canary_status=canary(
                    version="3", phase="Aborted", step=1, weight=0, actual=0,
                    runs=("Failed", "Failed"), failures=2,
                ),
            ),
            Frame(
                "Failed", "2", "v3 Aborted", "2/4 analysis x2", "0%", "Failed (0 ok, 2 failed)",
                "2/2",
            ),
            id="rolled back",
        ),
        pytest.param(
            md(canary_status=canary(step=None, weight=None, actual=None)),
            Frame("Progressing", "1", "v2 Progressing", "", "", "", "2/3"),
            id="a canary without step or weight yet",
        ),
    ],
)  # fmt: skip
def test_frame(obj: dict[str, Any], expected: Frame) -> None:
    assert frame_of(obj) == expected


def test_frame_text_names_every_part_and_leaves_out_the_empty_ones() -> None:
    full = Frame(
        "Progressing",
        "1",
        "v2 Progressing",
        "2/4 analysis x2",
        "34%",
        "Failed (0 ok, 1 failed)",
        "2/3",
    )
    assert full.text().split() == [
        "Progressing", "serving", "v1", "canary", "v2", "Progressing", "step", "2/4", "analysis",
        "x2", "weight", "34%", "analysis", "Failed", "(0", "ok,", "1", "failed)", "ready", "2/3",
    ]  # fmt: skip
    assert Frame("", "", "", "", "", "", "?/?").text().split() == [
        "Pending", "serving", "v?", "ready", "?/?",
    ]  # fmt: skip


def test_equal_objects_give_equal_frames_so_the_view_prints_once() -> None:
    a = md(canary_status=canary(step=1, runs=("Successful",), successes=1))
    b = md(canary_status=canary(step=1, runs=("Successful",), successes=1))
    assert frame_of(a) == frame_of(b)
    c = md(canary_status=canary(step=1, runs=("Successful", "Successful"), successes=2))
    assert frame_of(a).text() != frame_of(c).text()


READY_V1 = md(spec_version="1", phase="Ready", stable_version="1", replicas=2)


@pytest.mark.parametrize(
    ("obj", "replicas", "expected"),
    [
        (READY_V1, 2, True),
        (READY_V1, 3, False),  # not on every pod yet
        (md(spec_version="1", phase="Ready", stable_version="1", stable_model_ready=1), 2, False),
        (md(spec_version="1", phase="Progressing", stable_version="1"), 2, False),
        (
            md(spec_version="1", phase="Ready", stable_version="1", observed=1, generation=2),
            2,
            False,
        ),
        (md(spec_version="1", phase="Ready", stable_version="1", observed=None), 2, False),
        (md(spec_version="2", phase="Ready", stable_version="1"), 2, False),  # older spec's model
        (md(spec_version="1", phase="Ready", stable_version=None), 2, False),
        ({"metadata": {"name": "x"}}, 1, False),
    ],
)
def test_serving(obj: dict[str, Any], replicas: int, expected: bool) -> None:
    assert serving(obj, replicas) is expected


PROMOTED_V2 = md(
    phase="Ready", stable_version="2", canary_status=canary(phase="Promoted", step=4, weight=100)
)


@pytest.mark.parametrize(
    ("obj", "version", "expected"),
    [
        (PROMOTED_V2, "2", True),
        (PROMOTED_V2, "3", False),
        # Promoted, but the status is of an earlier generation.
        (md(phase="Ready", stable_version="2", observed=1,
            canary_status=canary(phase="Promoted")), "2", False),
        # The canary is done but the handover has not made it the stable yet.
        (md(phase="Progressing", stable_version="1", canary_status=canary(phase="Promoted")),
         "2", False),
        (md(phase="Ready", stable_version="2", canary_status=canary(phase="Progressing")),
         "2", False),
        (md(phase="Ready", stable_version="2"), "2", False),  # no canary at all
        (md(phase="Failed", canary_status=canary(phase="Aborted")), "2", False),
    ],
)  # fmt: skip
def test_promoted(obj: dict[str, Any], version: str, expected: bool) -> None:
    assert promoted(obj, version) is expected


ROLLED_BACK_V3 = md(
    spec_version="3",
    phase="Failed",
    stable_version="2",
    canary_status=canary(version="3", phase="Aborted"),
)


@pytest.mark.parametrize(
    ("obj", "version", "expected"),
    [
        (ROLLED_BACK_V3, "3", True),
        (ROLLED_BACK_V3, "2", False),
        (md(spec_version="3", phase="Progressing", stable_version="2",
            canary_status=canary(version="3")), "3", False),
        (md(spec_version="3", phase="Failed", stable_version="2", observed=1,
            canary_status=canary(version="3", phase="Aborted")), "3", False),
        # Only a canary that left another version serving counts as rolled back.
        (md(spec_version="3", phase="Failed", stable_version="3",
            canary_status=canary(version="3", phase="Aborted")), "3", False),
        (md(spec_version="3", phase="Failed", stable_version="2"), "3", False),
    ],
)  # fmt: skip
def test_rolled_back(obj: dict[str, Any], version: str, expected: bool) -> None:
    assert rolled_back(obj, version) is expected
