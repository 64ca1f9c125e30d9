"""Row rules: conditions beyond a column's type that send a row to quarantine.

A department module lists them as `ROW_RULES`; each names its reason in Chinese for the
quarantine table (read by analysts) and a stable code for counting.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class RowRule:
    code: str
    reason: str
    fails: pl.Expr  # true where the row breaks the rule (evaluated on cleaned columns)
