"""The history window: which settlements a quarter looks back on.

晋市民〔2023〕2号 counts a household's rigid expenditure over the 12 months before the
check (parameter `rigid_expenditure_lookback_months`). The linker links the settlements of
that window, and the rules (N01, N05, N06 through `int_settlements`) read the same window:
both take it from here, so the two can never disagree on where the window starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipelines.policy.params import ParameterSet, default_parameters
from pipelines.quarters import Quarter, add_months

LOOKBACK_PARAMETER = "rigid_expenditure_lookback_months"


@dataclass(frozen=True)
class HistoryWindow:
    """Settlement dates `start < date <= end` (`start` exclusive: 12 months before Q.end)."""

    start: dt.date
    end: dt.date
    months: int


def history_window(quarter: Quarter, params: ParameterSet | None = None) -> HistoryWindow:
    """The window of the quarter, from the parameters in force on its last day."""
    params = params if params is not None else default_parameters().at(quarter.end)
    months = int(params[LOOKBACK_PARAMETER])
    return HistoryWindow(start=add_months(quarter.end, -months), end=quarter.end, months=months)
