"""残疾人证 — the disabled persons' federation certificate register.

The certificate number is the holder's 18-digit ID followed by the category digit (1-7)
and the grade digit (1-4). 身份证号 is often empty in the register: the ID is then read
from the certificate number, with the same cleaner (so a damaged number stays damaged).
An intact certificate number (its last two digits a real category and grade) also
vouches for an ID that ends in 000, which alone could be an Excel-rounded number.
"""

from __future__ import annotations

import polars as pl

from sources.cleaning import clean_id_column


def derive(frame: pl.DataFrame) -> pl.DataFrame:
    from_certificate = clean_id_column(
        frame.select(pl.col("certificate_no").str.slice(0, 18).alias("cert_id")), "cert_id"
    )
    frame = pl.concat([frame, from_certificate], how="horizontal")
    intact_certificate = pl.col("certificate_no").str.contains(r"^\d{17}[\dXx][1-7][1-4]$")
    given_trusted = pl.col("id_number_valid") & (pl.col("id_number_flag") != "possibly_excel_rounded")
    # 身份证号 ending in 000 is trusted when the intact certificate carries the same digits.
    vouched = intact_certificate & (pl.col("id_number_flag") == "possibly_excel_rounded") & (pl.col("id_number") == pl.col("cert_id"))
    use_given = given_trusted | vouched
    use_cert = ~use_given & pl.col("cert_id_valid")
    return frame.with_columns(
        pl.when(use_cert).then(pl.col("cert_id")).otherwise(pl.col("id_number")).alias("id_number"),
        pl.when(use_cert).then(True).otherwise(pl.col("id_number_valid")).alias("id_number_valid"),
        pl.when(use_cert).then(pl.col("cert_id_raw")).otherwise(pl.col("id_number_raw")).alias("id_number_raw"),
        pl.when(vouched).then(pl.lit("ok"))
        .when(use_cert & intact_certificate).then(pl.lit("from_certificate"))
        .when(use_cert).then(pl.col("cert_id_flag"))
        .otherwise(pl.col("id_number_flag")).alias("id_number_flag"),
    ).drop(["cert_id", "cert_id_valid", "cert_id_partial", "cert_id_raw", "cert_id_flag"])
