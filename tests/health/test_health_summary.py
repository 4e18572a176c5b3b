"""summarize(): many probes -> (ready_count, worst reason, message). Pure."""

from __future__ import annotations

import pytest

from gantry.health import SEVERITY, ModelProbe, ProbeReason, ProbeSummary, summarize
from gantry.health.summary import MAX_SUMMARY_CHARS

R = ProbeReason


def probe(endpoint: str, reason: ProbeReason, message: str = "") -> ModelProbe:
    ready = reason is R.MODEL_READY
    server_ready = reason not in (R.SERVER_UNREACHABLE, R.SERVER_NOT_READY)
    return ModelProbe(endpoint, server_ready, ready, reason, message or reason.value)


def test_no_endpoints() -> None:
    assert summarize([]) == ProbeSummary(0, R.NO_ENDPOINTS, "no endpoints to probe")


def test_all_ready() -> None:
    probes = [probe("a:1", R.MODEL_READY), probe("b:1", R.MODEL_READY)]
    assert summarize(probes) == (2, R.MODEL_READY, "2/2 endpoints ready")


@pytest.mark.parametrize(
    ("reasons", "worst"),
    [
        ([R.MODEL_READY, R.MODEL_LOADING], R.MODEL_LOADING),
        ([R.MODEL_LOADING, R.SERVER_NOT_READY], R.SERVER_NOT_READY),
        ([R.SERVER_NOT_READY, R.MODEL_UNAVAILABLE], R.MODEL_UNAVAILABLE),
        ([R.MODEL_UNAVAILABLE, R.SERVER_UNREACHABLE], R.SERVER_UNREACHABLE),
        ([R.SERVER_UNREACHABLE, R.MODEL_LOAD_FAILED, R.MODEL_READY], R.MODEL_LOAD_FAILED),
    ],
)
def test_worst_reason_wins(reasons: list[ProbeReason], worst: ProbeReason) -> None:
    probes = [probe(f"10.0.0.{i}:8000", r) for i, r in enumerate(reasons)]
    summary = summarize(probes)
    assert summary.reason is worst
    assert summary.ready_count == reasons.count(R.MODEL_READY)


def test_message_quotes_first_worst_endpoint_and_counts_the_rest() -> None:
    probes = [
        probe("a:1", R.MODEL_READY),
        probe("b:1", R.MODEL_LOAD_FAILED, "Triton failed to load model m version 1: boom"),
        probe("c:1", R.MODEL_LOAD_FAILED, "other"),
        probe("d:1", R.SERVER_UNREACHABLE),
    ]
    ready, reason, message = summarize(probes)
    assert (ready, reason) == (1, R.MODEL_LOAD_FAILED)
    assert message == (
        "1/4 endpoints ready; b:1 (and 1 more): Triton failed to load model m version 1: boom"
    )


def test_message_is_stable_for_the_same_input() -> None:
    probes = [probe("b:1", R.MODEL_LOADING, "x"), probe("a:1", R.MODEL_LOADING, "y")]
    assert summarize(probes) == summarize(list(probes))
    assert summarize(probes).message.startswith("0/2 endpoints ready; b:1 (and 1 more): x")


def test_message_is_bounded() -> None:
    summary = summarize([probe("a:1", R.MODEL_LOAD_FAILED, "x" * 10_000)])
    assert len(summary.message) == MAX_SUMMARY_CHARS
    assert summary.message.endswith("...")


def test_every_reason_has_a_severity_and_codes_are_stable() -> None:
    assert set(SEVERITY) == set(ProbeReason)
    assert [r.value for r in ProbeReason] == [
        "ModelReady",
        "ModelLoading",
        "ServerNotReady",
        "ModelUnavailable",
        "ServerUnreachable",
        "ModelLoadFailed",
        "NoEndpoints",
    ]
