"""羁押服刑 — the detention and imprisonment register.

A release date before the admission date is a keying error that could make a detained
person look released (or the reverse): the row is quarantined rather than guessed at.
"""

from __future__ import annotations

import polars as pl

from sources.rowrules import RowRule

ROW_RULES = [
    RowRule(
        code="release_before_admission",
        reason="出所日期早于入所日期",
        fails=pl.col("release_date").is_not_null() & (pl.col("release_date") < pl.col("admission_date")),
    )
]
