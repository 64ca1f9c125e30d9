"""学籍 — the student register.

The national student number (全国学籍号) is usually `G` followed by the student's ID
number; where 身份证号 is empty or unreadable the ID is taken from it, with the same
cleaner as any other ID. A student number that carries the same 18 digits vouches for an
ID ending in 000 (which alone could be an Excel-rounded number).
"""

from __future__ import annotations

import polars as pl

from sources.cleaning import clean_id_column


def derive(frame: pl.DataFrame) -> pl.DataFrame:
    carried = pl.col("student_no").str.normalize("NFKC").str.to_uppercase().str.extract(r"^G(\d{17}[\dX])$", 1)
    from_number = clean_id_column(frame.select(carried.alias("sn_id")), "sn_id")
    frame = pl.concat([frame, from_number], how="horizontal")
    given_trusted = pl.col("id_number_valid") & (pl.col("id_number_flag") != "possibly_excel_rounded")
    vouched = (pl.col("id_number_flag") == "possibly_excel_rounded") & (pl.col("id_number") == pl.col("sn_id"))
    use_given = given_trusted | vouched
    # A student number starts with a letter, so Excel never turns it into a number: the
    # digits it carries are intact even when they end in 000.
    use_number = ~use_given & pl.col("sn_id_valid")
    return frame.with_columns(
        pl.when(use_number).then(pl.col("sn_id")).otherwise(pl.col("id_number")).alias("id_number"),
        pl.when(use_number).then(True).otherwise(pl.col("id_number_valid")).alias("id_number_valid"),
        pl.when(use_number).then(pl.col("sn_id_raw")).otherwise(pl.col("id_number_raw")).alias("id_number_raw"),
        pl.when(vouched).then(pl.lit("ok"))
        .when(use_number).then(pl.lit("from_student_no"))
        .otherwise(pl.col("id_number_flag")).alias("id_number_flag"),
    ).drop(["sn_id", "sn_id_valid", "sn_id_partial", "sn_id_raw", "sn_id_flag"])
