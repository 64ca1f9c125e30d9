"""Calendar quarters as the pipeline names them (`2025Q3`).

Every run is about one quarter `Q`: the roster is Q's, extracts are those delivered in Q,
and rules speak of `Q.start` / `Q.end` (RULES.md). This module is the one place that turns
the label into dates.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_LABEL = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, label: str) -> "Quarter":
        match = _LABEL.match(str(label).strip().upper())
        if not match:
            raise ValueError(f"not a quarter label (expected e.g. 2025Q3): {label!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, day: dt.date) -> "Quarter":
        return cls(day.year, (day.month - 1) // 3 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def label(self) -> str:
        return str(self)

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> dt.date:
        month = 3 * self.number
        return dt.date(self.year, month, calendar.monthrange(self.year, month)[1])

    @property
    def previous(self) -> "Quarter":
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    @property
    def next(self) -> "Quarter":
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def __add__(self, quarters: int) -> "Quarter":
        index = self.year * 4 + (self.number - 1) + quarters
        return Quarter(index // 4, index % 4 + 1)

    def __sub__(self, other: "Quarter") -> int:
        return (self.year * 4 + self.number) - (other.year * 4 + other.number)


def quarter_range(spec: str) -> list[Quarter]:
    """`2025Q1:2025Q4` -> the four quarters, inclusive; a single label gives one quarter."""
    first, _, last = spec.partition(":")
    start = Quarter.parse(first)
    stop = Quarter.parse(last) if last else start
    if stop < start:
        raise ValueError(f"quarter range runs backwards: {spec!r}")
    return [start + i for i in range(stop - start + 1)]


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months, clamped to the month's last day (2025-01-31 + 1 = 2025-02-28)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
