"""The tolerant Prometheus text parser, on Triton's real output shape and on odd lines."""

from __future__ import annotations

import math

import pytest
from triton_text import MODEL, triton_metrics

from gantry.analysis.textformat import finite, parse


def test_parses_triton_metrics() -> None:
    parsed = parse(triton_metrics(success=1200, failure_backend=5, failure_rejected=2))
    assert parsed.skipped == 0
    by_key = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in parsed.samples}
    key = ("nv_inference_request_success", (("model", MODEL), ("version", "3")))
    assert by_key[key] == 1200
    backend = (
        "nv_inference_request_failure",
        (("model", MODEL), ("reason", "BACKEND"), ("version", "3")),
    )
    assert by_key[backend] == 5
    assert (
        by_key[
            (
                "nv_gpu_memory_used_bytes",
                (("gpu_uuid", "GPU-3b2f1a0c-55e1-4d6b-9a7e-0f1e2d3c4b5a"),),
            )
        ]
        == 2.3e10
    )
    assert by_key[("nv_cpu_utilization", ())] == 0.125
    quantiles = [
        s
        for s in parsed.samples
        if s.name == "nv_inference_request_summary_us" and s.labels["model"] == MODEL
    ]
    assert [s.labels["quantile"] for s in quantiles] == ["0.5", "0.9", "0.95", "0.99"]


@pytest.mark.parametrize(
    ("line", "name", "labels", "value"),
    [
        ("up 1", "up", {}, 1.0),
        ("up 1 1712345678000", "up", {}, 1.0),  # with a timestamp
        ('m{a="x"} 2', "m", {"a": "x"}, 2.0),
        ('m{a="x",} 2', "m", {"a": "x"}, 2.0),  # trailing comma
        ('m{a = "x", b="y"} 3', "m", {"a": "x", "b": "y"}, 3.0),
        (
            'm{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 1',
            "m",
            {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"},
            1.0,
        ),
        ('m{a="{}, "} 1', "m", {"a": "{}, "}, 1.0),
        ("m +Inf", "m", {}, math.inf),
        ("m -Inf", "m", {}, -math.inf),
        ("m 1.5e-3", "m", {}, 0.0015),
        ("m{} 4", "m", {}, 4.0),
        ("ns:metric_total 9", "ns:metric_total", {}, 9.0),
    ],
    ids=[
        "bare",
        "timestamp",
        "label",
        "trailing-comma",
        "spaces",
        "escapes",
        "braces-in-value",
        "plus-inf",
        "minus-inf",
        "exponent",
        "empty-labels",
        "colon-name",
    ],
)
def test_sample_lines(line: str, name: str, labels: dict[str, str], value: float) -> None:
    parsed = parse(line)
    assert parsed.skipped == 0
    (sample,) = parsed.samples
    assert (sample.name, dict(sample.labels), sample.value) == (name, labels, value)


def test_nan_is_parsed_and_reported_as_no_value() -> None:
    (sample,) = parse("m NaN").samples
    assert math.isnan(sample.value)
    assert finite(sample.value) is None
    assert finite(2.0) == 2.0


@pytest.mark.parametrize(
    "line",
    [
        'm{a="unterminated} 1',
        'm{a="x" 1',
        "m{a=x} 1",
        'm{="x"} 1',
        "m",
        "m one",
        "m 1 2 3",
        "9bad 1",
        '{"utf8.name"} 1',
    ],
    ids=[
        "unterminated-value",
        "unterminated-set",
        "unquoted",
        "no-label-name",
        "no-value",
        "bad-value",
        "too-many-fields",
        "bad-name",
        "quoted-name",
    ],
)
def test_malformed_lines_are_skipped_not_fatal(line: str) -> None:
    parsed = parse(f"good 1\n{line}\nalso_good 2\n")
    assert parsed.skipped == 1
    assert [s.name for s in parsed.samples] == ["good", "also_good"]


def test_comments_blank_lines_and_eof_are_ignored() -> None:
    text = "# HELP x y\n\n# TYPE x counter\n   \nx 1\n# EOF\n"
    parsed = parse(text)
    assert (len(parsed.samples), parsed.skipped) == (1, 0)
