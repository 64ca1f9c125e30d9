"""The cleaners on the values CONTRACT.md §2 lists."""

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from sources.cleaning import (
    clean_date_column,
    clean_id_column,
    clean_money_column,
    clean_name_column,
    excel_rounded_prefix,
)

VALID = "140502198001014736"  # valid GB 11643 numbers (check digits 6 and X)
VALID_X = "11010519491231002X"


def _id(raw):
    return clean_id_column(pl.DataFrame({"id": [raw]}, schema={"id": pl.Utf8}), "id").row(0, named=True)


def test_a_valid_id_is_kept():
    row = _id(VALID)
    assert row["id"] == VALID and row["id_valid"] and row["id_flag"] == "ok"


@pytest.mark.parametrize(
    "raw",
    [" 1405 0219 8001 0147 36 ", "１４０５０２１９８００１０１４７３６", "'140502198001014736", "140502198001014736\u3000"],
)
def test_formatting_noise_is_removed(raw):
    row = _id(raw)
    assert row["id"] == VALID and row["id_valid"] and row["id_flag"] == "normalized"


def test_lower_case_x_is_upper_cased():
    row = _id("11010519491231002x")
    assert row["id"] == VALID_X and row["id_valid"] and row["id_flag"] == "normalized"


def test_legacy_15_digits_are_upgraded():
    row = _id("110105491231002")
    assert row["id"] == VALID_X and row["id_valid"] and row["id_flag"] == "upgraded_15"


@pytest.mark.parametrize(
    "raw,partial",
    [("1.40502E+17", "140502"), ("1.4050219800101E+17", "14050219800101"), ("140502198001015000", "140502198001015")],
)
def test_excel_numbers_are_only_partial_keys(raw, partial):
    row = _id(raw)
    assert row["id"] is None and not row["id_valid"] and row["id_flag"] == "excel_rounded"
    assert row["id_partial"] == partial


def test_a_bad_check_digit_is_flagged_not_repaired():
    row = _id("140502198001014737")
    assert row["id"] == "140502198001014737" and not row["id_valid"] and row["id_flag"] == "bad_checksum"


def test_rounded_prefix_matches_excel():
    frame = pl.DataFrame({"id": ["140502198001011756"]})
    assert frame.select(excel_rounded_prefix(pl.col("id"), 15)).item() == "140502198001012"  # rounded half up
    assert frame.select(excel_rounded_prefix(pl.col("id"), 6)).item() == "140502"


@pytest.mark.parametrize(
    "raw", ["2025-07-03", "2025/7/3", "20250703", "2025年7月3日", "2025.7.3", "45841", "2025-07-03 00:00:00"]
)
def test_dates_in_every_format(raw):
    row = clean_date_column(pl.DataFrame({"d": [raw]}), "d").row(0, named=True)
    assert row["d"] == dt.date(2025, 7, 3)


def test_unreadable_dates_are_flagged():
    frame = clean_date_column(pl.DataFrame({"d": ["不详", "2025-02-30", None]}), "d")
    assert frame["d"].to_list() == [None, None, None]
    assert frame["d_flag"].to_list() == ["unparseable", "unparseable", "missing"]


@pytest.mark.parametrize("raw,value", [("1,234.50", "1234.50"), ("1234.5元", "1234.50"), ("￥88", "88.00"), ("1.2万", "12000.00")])
def test_money(raw, value):
    row = clean_money_column(pl.DataFrame({"m": [raw]}), "m").row(0, named=True)
    assert row["m"] == Decimal(value)


def test_names_lose_spaces_and_unify_dots():
    frame = clean_name_column(pl.DataFrame({"n": ["张 三", "阿依古丽.买买提", "阿依古丽•买买提", "ＬＩ　Ｍｉｎｇ"]}), "n")
    assert frame["n"].to_list() == ["张三", "阿依古丽·买买提", "阿依古丽·买买提", "LIMing"]
