"""The plugin's picture of a ModelDeployment: one exact frame, then a table of cases.

Each case is a hand-written object (tests/kubectl_plugin/builders.py) with the lines the
drawing must contain and the ones it must not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from gantry.kubectl_plugin.render import age, render
from tests.kubectl_plugin.builders import (
    GOOD_RUN,
    NOW,
    THIN_RUN,
    canary,
    canary_status,
    cond,
    md,
    metric,
    ready_status,
    run,
    stable,
    ts,
)

CANARY_FRAME = """\
Name:            resnet
Namespace:       ml
Status:          ◌ Progressing
Message:         canary step 2/4 (analysis x2): 1/2 intervals passed
Model:           resnet50 version 4 (spec)
Generation:      3 (observed 3)
Strategy:        Canary
  Canary:        ◌ Progressing
  Step:          2/4 (analysis x2)
  SetWeight:     10
  ActualWeight:  33
Replicas:        ready 3/3, model-ready 3/3
Endpoints:       http http://resnet.ml:8000
                 grpc resnet.ml:8001

NAME                       KIND             STATUS          AGE  INFO
⟳ resnet                   ModelDeployment  ◌ Progressing   60m
├──# revision:bbbbbbbbbb                    ◌ Progressing        canary, analysis 1/2 intervals passed
│  ├──⧉ resnet-bbbbbbbbbb  Deployment       ✔ Healthy            model 4, ready 1/1, model-ready 1
│  └──Σ analysis           Analysis         ✔ Successful         ✔ 1, ✖ 0, ? 0
│     ├──α 11:59:30        AnalysisRun      ✔ Successful    30s  1200 requests
│     │  ├──success-rate   Metric           ✔ Successful         0.995 vs >= 0.99
│     │  └──latency-mean   Metric           ✔ Successful         120.5 vs <= 200ms
│     └──α 11:59:00        AnalysisRun      ? Inconclusive  60s  3 requests
│        └──success-rate   Metric           ? Inconclusive       no data vs >= 0.99: 3 requests < 10
└──# revision:aaaaaaaaaa                                         stable
   └──⧉ resnet-aaaaaaaaaa  Deployment       ✔ Healthy            model 3, ready 2/2, model-ready 2

CONDITION      STATUS  REASON                    AGE  MESSAGE
✖ Ready        False   CanaryInProgress          90s  canary step 2/4
✔ Available    True    MinimumReplicasAvailable  2m   3/3 replicas ready
◌ Reconciling  True    CanaryInProgress          90s  canary step 2/4
✔ Stalled      False   AsExpected                2m
"""  # noqa: E501, RUF001 (a real frame is wide; the icons are Greek on purpose)


def test_canary_in_analysis_draws_the_whole_picture() -> None:
    assert "\n".join(render(md(status=canary_status()), now=NOW)) + "\n" == CANARY_FRAME


def _with(obj: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    change(obj)
    return obj


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for key in parents:
            obj = obj[key]
        obj[leaf] = value

    return change


HISTORY = [run(300 - 30 * i, "Successful", 100 + i) for i in range(6)]

# (id, object, lines or fragments that must appear, fragments that must not)
CASES: list[tuple[str, dict[str, Any], list[str], list[str]]] = [
    (
        "nothing but a name",
        {"metadata": {"name": "x"}},
        ["Status:          ◌ Pending (not yet observed by the operator)", "⟳ x"],
        ["CONDITION", "Canary:", "Replicas:"],
    ),
    (
        "not even a dict inside",
        {"metadata": "x", "spec": [], "status": "broken"},
        ["Status:          ◌ Pending (not yet observed by the operator)"],
        [],
    ),
    (
        "ready, rolling",
        md(status=ready_status(), strategy="rolling"),
        [
            "Status:          ✔ Ready",
            "Strategy:        Rolling",
            "└──# revision:aaaaaaaaaa",
            "model 3, ready 2/2, model-ready 2",
            "✔ Ready        True    Serving",
        ],
        ["Canary:", "Step:", "SetWeight:", "Message:"],
    ),
    (
        "paused by hand",
        md(
            status=canary_status(
                phase="Paused", canary=canary(phase="Paused", reason="ManualPause")
            )
        ),
        ["Status:          ॥ Paused", "  Canary:        ॥ Paused (ManualPause)"],
        [],
    ),
    (
        "aborted after failed analysis",
        md(
            status=canary_status(
                phase="Degraded",
                canary=canary(
                    phase="Aborted",
                    reason="AnalysisFailed",
                    weight=0,
                    actualWeight=0,
                    replicas=0,
                    readyReplicas=0,
                    modelReadyReplicas=0,
                    analysis={
                        "successes": 0,
                        "failures": 2,
                        "inconclusive": 0,
                        "history": [
                            run(
                                10,
                                "Failed",
                                900,
                                metric("success-rate", 0.91, ">= 0.99", "Failed", "too many 5xx"),
                            )
                        ],
                    },
                ),
                conditions=[cond("Stalled", "True", "AnalysisFailed", "canary aborted")],
            )
        ),
        [
            "Status:          ✖ Degraded",
            "  Canary:        ✖ Aborted (AnalysisFailed)",
            "  SetWeight:     0",
            "• ScaledDown",
            "✖ Failed",
            "✔ 0, ✖ 2, ? 0",
            "0.91 vs >= 0.99: too many 5xx",
            "✖ Stalled  True    AnalysisFailed",
        ],
        [],
    ),
    (
        "invalid spec",
        md(
            status=ready_status(
                phase="Failed",
                message="InvalidSpec: spec.scaling: minReplicas > maxReplicas",
                conditions=[cond("Degraded", "True", "InvalidSpec", "minReplicas > maxReplicas")],
            )
        ),
        [
            "Status:          ✖ Failed",
            "Message:         InvalidSpec: spec.scaling: minReplicas > maxReplicas",
            "✖ Degraded",
        ],
        [],
    ),
    (
        "a phase this plugin does not know",
        md(status=ready_status(phase="Exploding")),
        ["Status:          ? Exploding"],
        [],
    ),
    (
        "promotion phase, past the last step",
        md(status=canary_status(canary=canary(stepIndex=4, weight=100, actualWeight=100))),
        ["  Step:          4/4 (promotion)", "  SetWeight:     100"],
        [],
    ),
    (
        "an indefinite pause step",
        md(status=canary_status(canary=canary(stepIndex=3, phase="Paused", reason="PauseStep"))),
        ["  Step:          4/4 (pause until promoted)", "॥ Paused (PauseStep)"],
        [],
    ),
    (
        "steps unknown (spec without a canary)",
        md(status=canary_status(), strategy="rolling"),
        ["  Step:          2\n"],
        ["  Step:          2/"],
    ),
    (
        "a spec the operator has not seen yet",
        md(status=canary_status(), generation=4),
        ["Generation:      4 (observed 3)", "[generation 3] canary step 2/4"],
        [],
    ),
    (
        "being deleted",
        md(status=ready_status(), deletionTimestamp=ts(5)),
        ["Status:          ✖ Terminating"],
        [],
    ),
    (
        "only the three most recent analyses, newest first",
        md(
            status=canary_status(
                canary=canary(
                    analysis={"successes": 6, "history": HISTORY, "last": HISTORY[-1]},
                )
            )
        ),
        ["105 requests", "104 requests", "103 requests"],
        ["102 requests", "100 requests"],
    ),
    (
        "only last, no history",
        md(status=canary_status(canary=canary(analysis={"successes": 1, "last": GOOD_RUN}))),
        ["1200 requests"],
        ["3 requests"],
    ),
    (
        "no analysis yet",
        md(status=canary_status(canary=canary(analysis={}))),
        ["│  └──⧉ resnet-bbbbbbbbbb"],
        ["Σ analysis"],
    ),
    (
        "no request count",
        md(
            status=canary_status(
                canary=canary(analysis={"history": [{**THIN_RUN, "requestCount": None}]})
            )
        ),
        ["AnalysisRun      ? Inconclusive  60s\n"],
        ["60s  3 requests", "None"],
    ),
    (
        "model not ready on a ready pod",
        md(status=ready_status(stable=stable(modelReadyReplicas=1))),
        ["Deployment       ◌ Progressing       model 3, ready 2/2, model-ready 1"],
        [],
    ),
    (
        "malformed numbers are shown as unknown, not as zero",
        md(status=ready_status(stable=stable(replicas="two", readyReplicas=True))),
        ["? Unknown", "ready ?/?"],
        [],
    ),
    (
        "conditions: abnormal-true, under-way and unknown",
        md(
            status=ready_status(
                conditions=[
                    cond("Stalled", "True", "InsufficientGPU", "no node has 2 GPUs"),
                    cond("Degraded", "False", "AsExpected"),
                    cond("Reconciling", "True", "Scaling"),
                    cond("ModelReady", "Unknown", "Probing"),
                    cond("Scheduled", "False", "InsufficientGPU", "0/3 nodes\n  have 2 GPUs"),
                ]
            )
        ),
        [
            "✖ Stalled      True     InsufficientGPU",
            "✔ Degraded     False    AsExpected",
            "◌ Reconciling  True     Scaling",
            "? ModelReady   Unknown  Probing",
            "✖ Scheduled    False    InsufficientGPU  2m   0/3 nodes have 2 GPUs",
        ],
        [],
    ),
]


@pytest.mark.parametrize(
    ("obj", "present", "absent"),
    [pytest.param(obj, present, absent, id=name) for name, obj, present, absent in CASES],
)
def test_render(obj: dict[str, Any], present: list[str], absent: list[str]) -> None:
    text = "\n".join(render(obj, now=NOW))
    for fragment in present:
        assert fragment in text, f"{fragment!r} missing from:\n{text}"
    for fragment in absent:
        assert fragment not in text, f"{fragment!r} unexpected in:\n{text}"


def test_render_never_changes_its_input() -> None:
    obj = md(status=canary_status())
    before = copy.deepcopy(obj)
    render(obj, now=NOW)
    assert obj == before


def test_lines_carry_no_trailing_blanks() -> None:
    assert all(line == line.rstrip() for line in render(md(status=canary_status()), now=NOW))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 600, "5h10m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (3 * 86400, "3d"),
    ],
)
def test_age(seconds: int, text: str) -> None:
    assert age(NOW - timedelta(seconds=seconds), NOW) == text


def test_age_of_nothing_is_blank() -> None:
    assert age(None, NOW) == ""
