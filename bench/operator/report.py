"""The bench's table: one row per figure, one column per N (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within 0..1, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.nan


def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    """A number for the table; ``n/a`` for a figure that was not measured (None or NaN)."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}{unit}"


@dataclass
class Table:
    """Figures by row label and column (N); rows keep the order they were first added in."""

    columns: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    def put(self, column: str, row: str, value: str) -> None:
        if column not in self.columns:
            self.columns.append(column)
        self.rows.setdefault(row, {})[column] = value

    def put_all(self, column: str, figures: Mapping[str, str]) -> None:
        for row, value in figures.items():
            self.put(column, row, value)

    def render(self) -> str:
        """Aligned text: labels left, values right; a figure missing in a column shows ``-``."""
        if not self.rows:
            return ""
        label_width = max(len(label) for label in self.rows)
        widths = [
            max([len(c)] + [len(cells.get(c, "-")) for cells in self.rows.values()])
            for c in self.columns
        ]
        sized = list(zip(self.columns, widths, strict=True))
        lines = [" " * label_width + "".join(f"  {c:>{w}}" for c, w in sized)]
        for label, cells in self.rows.items():
            values = "".join(f"  {cells.get(c, '-'):>{w}}" for c, w in sized)
            lines.append(f"{label:<{label_width}}{values}")
        return "\n".join(lines)
