"""The bench's table and its numbers (pure)."""

from __future__ import annotations

import math

import pytest

from bench.operator.report import Table, fmt, percentile, ratio


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([3.0], 0.5, 3.0),
        ([3.0], 0.95, 3.0),
        ([1.0, 2.0], 0.5, 1.0),
        ([1.0, 2.0], 0.51, 2.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),  # unsorted input
        ([4.0, 1.0, 3.0, 2.0], 1.0, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 0.0, 1.0),
        ([float(i) for i in range(1, 101)], 0.95, 95.0),
        ([float(i) for i in range(1, 51)], 0.95, 48.0),  # nearest rank: ceil(47.5)
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 0.5))


@pytest.mark.parametrize("q", [-0.1, 1.5])
def test_percentile_refuses_q_outside_0_1(q: float) -> None:
    with pytest.raises(ValueError, match=r"q must be within 0\.\.1"):
        percentile([1.0], q)


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [(4.0, 2.0, 2.0), (0.0, 5.0, 0.0), (1.0, 0.0, math.nan), (1.0, -1.0, math.nan)],
)
def test_ratio(num: float, den: float, expected: float) -> None:
    got = ratio(num, den)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize(
    ("value", "unit", "digits", "expected"),
    [
        (1.234, "", 2, "1.23"),
        (1.5, "x", 2, "1.50x"),
        (87.5, "%", 0, "88%"),
        (None, "s", 2, "n/a"),
        (math.nan, "x", 2, "n/a"),
    ],
)
def test_fmt(value: float | None, unit: str, digits: int, expected: str) -> None:
    assert fmt(value, unit, digits) == expected


def test_table_aligns_rows_under_columns_in_first_seen_order() -> None:
    table = Table()
    table.put("N=100", "create ratio", "1.50x")
    table.put("N=1000", "create ratio", "12.25x")
    table.put_all("N=100", {"steady requests/object/min": "65.44"})
    assert table.render().splitlines() == [
        "                            N=100  N=1000",
        "create ratio                1.50x  12.25x",
        "steady requests/object/min  65.44       -",
    ]


def test_empty_table_renders_nothing() -> None:
    assert Table().render() == ""
