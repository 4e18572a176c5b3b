"""A small, tolerant parser of the Prometheus text exposition format (pure).

``prometheus_client`` has a parser, but the import contract keeps that package
inside ``gantry.metrics`` (the operator's own metrics). Triton's ``/metrics``
output is plain text format 0.0.4, which is simple enough to read here:

    # HELP nv_inference_request_success Number of successful inference requests
    # TYPE nv_inference_request_success counter
    nv_inference_request_success{model="resnet",version="1"} 1234

Comments, blank lines and ``# EOF`` are skipped. A line that does not parse is
skipped and counted rather than failing the whole scrape: one odd metric from a
newer Triton must not blind the canary analysis.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class MetricSample:
    """One sample line: ``name{labels} value``."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Parsed:
    """The samples of one exposition, and how many lines were skipped as malformed."""

    samples: tuple[MetricSample, ...]
    skipped: int = 0


class _Malformed(ValueError):
    pass


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _labels(line: str, pos: int) -> tuple[dict[str, str], int]:
    """Parse ``{a="x",b="y"}`` starting at ``line[pos] == "{"``; return labels and end."""
    labels: dict[str, str] = {}
    pos += 1
    # Each iteration consumes at least one character or returns/raises: bounded by len(line).
    while pos < len(line):
        while pos < len(line) and line[pos] in " \t,":
            pos += 1
        if pos < len(line) and line[pos] == "}":
            return labels, pos + 1
        match = _LABEL_NAME.match(line, pos)
        if not match:
            raise _Malformed("label name expected")
        name, pos = match.group(), match.end()
        pos = _skip_blanks(line, pos)
        if line[pos : pos + 1] != "=":
            raise _Malformed("= expected after label name")
        pos = _skip_blanks(line, pos + 1)
        if line[pos : pos + 1] != '"':
            raise _Malformed("quoted label value expected")
        pos += 1
        chars: list[str] = []
        while True:
            if pos >= len(line):
                raise _Malformed("unterminated label value")
            ch = line[pos]
            if ch == "\\" and pos + 1 < len(line):
                chars.append(_ESCAPES.get(line[pos + 1], "\\" + line[pos + 1]))
                pos += 2
            elif ch == '"':
                pos += 1
                break
            else:
                chars.append(ch)
                pos += 1
        labels[name] = "".join(chars)
    raise _Malformed("unterminated label set")


def _sample(line: str) -> MetricSample:
    match = _NAME.match(line)
    if not match:
        raise _Malformed("metric name expected")
    name, pos = match.group(), match.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        labels, pos = _labels(line, pos)
    fields = line[pos:].split()
    if not fields or len(fields) > 2:
        raise _Malformed("value (and optional timestamp) expected")
    try:
        value = float(fields[0])  # accepts NaN, +Inf, -Inf and exponents
    except ValueError as exc:
        raise _Malformed(f"bad value {fields[0]!r}") from exc
    return MetricSample(name=name, labels=labels, value=value)


def parse(text: str) -> Parsed:
    """Parse an exposition into samples.

    Args:
        text: The body of a ``/metrics`` response.

    Returns:
        The samples in order, and the number of malformed lines skipped.
    """
    samples: list[MetricSample] = []
    skipped = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            samples.append(_sample(line))
        except _Malformed:
            skipped += 1
    return Parsed(samples=tuple(samples), skipped=skipped)


def finite(value: float) -> float | None:
    """The value, or None for NaN (Prometheus' "no value")."""
    return None if math.isnan(value) else value
