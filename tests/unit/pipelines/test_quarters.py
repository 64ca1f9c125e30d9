import datetime as dt

import pytest

from pipelines.quarters import Quarter, add_months, quarter_range


def test_parse_and_dates():
    q = Quarter.parse("2025q3")
    assert str(q) == "2025Q3"
    assert q.start == dt.date(2025, 7, 1) and q.end == dt.date(2025, 9, 30)
    assert str(q.previous) == "2025Q2" and str(Quarter.parse("2025Q1").previous) == "2024Q4"
    assert str(Quarter.parse("2025Q4").next) == "2026Q1"


@pytest.mark.parametrize("bad", ["2025Q5", "2025-3", "Q3", ""])
def test_bad_labels_are_refused(bad):
    with pytest.raises(ValueError):
        Quarter.parse(bad)


def test_range_and_month_arithmetic():
    assert [str(q) for q in quarter_range("2024Q4:2025Q2")] == ["2024Q4", "2025Q1", "2025Q2"]
    assert add_months(dt.date(2025, 1, 31), 1) == dt.date(2025, 2, 28)  # clamped (RULES.md)
    assert add_months(dt.date(2024, 2, 29), 12) == dt.date(2025, 2, 28)
    assert add_months(dt.date(2025, 9, 30), -12) == dt.date(2024, 9, 30)
