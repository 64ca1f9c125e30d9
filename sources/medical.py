"""医保结算 — medical-insurance settlements.

Departments often leave 个人负担 empty, or omit the column: it is then what the person
paid after every reimbursement, total minus the four payments (CONTRACT.md §2). A missing
payment cell means the fund paid nothing.
"""

from __future__ import annotations

import polars as pl

PAYMENTS = ("basic_insurance_yuan", "critical_illness_yuan", "medical_assistance_yuan", "other_supplementary_yuan")


def derive(frame: pl.DataFrame) -> pl.DataFrame:
    if "out_of_pocket_yuan" not in frame.collect_schema().names():
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Decimal(18, 2)).alias("out_of_pocket_yuan"),
            pl.lit("missing").alias("out_of_pocket_yuan_flag"),
        )
    paid = pl.sum_horizontal([pl.col(c).fill_null(0) for c in PAYMENTS])
    derived = (pl.col("total_cost_yuan") - paid).cast(pl.Decimal(18, 2))
    missing = pl.col("out_of_pocket_yuan").is_null() & (pl.col("out_of_pocket_yuan_flag") == "missing")
    return frame.with_columns(
        pl.when(missing).then(derived).otherwise(pl.col("out_of_pocket_yuan")).alias("out_of_pocket_yuan"),
        pl.when(missing).then(pl.lit("derived")).otherwise(pl.col("out_of_pocket_yuan_flag")).alias("out_of_pocket_yuan_flag"),
    )

