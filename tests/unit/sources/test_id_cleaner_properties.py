"""Property-based tests of the ID cleaner (hypothesis).

The property that matters: the cleaner never turns an input into a valid ID that differs
from every reading of that input. The readings of a text are computed here independently
of the cleaner: the text without spaces, apostrophes and full-width forms, upper-cased;
the digits of a number written in exact scientific or `.0` form; and the 18-digit form of
any 15-digit legacy number among those.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.cleaning import clean_id_column

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def is_valid(id18: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", id18) or check_char(id18[:17]) != id18[17]:
        return False
    try:
        born = dt.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= dt.date.today()


def upgrade(id15: str) -> str:
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_char(first17)


def readings(raw: str) -> set[str]:
    text = re.sub(r"[\s'‘’`\"“”]", "", unicodedata.normalize("NFKC", raw)).upper()
    found = {text}
    sci = re.fullmatch(r"(\d)(?:\.(\d+))?E\+?(\d{1,2})", text)
    if sci:
        mantissa = sci.group(1) + (sci.group(2) or "")
        if len(mantissa) == int(sci.group(3)) + 1:
            found.add(mantissa)
    decimal = re.fullmatch(r"(\d+)\.0*", text)
    if decimal and len(decimal.group(1)) <= 15:
        found.add(decimal.group(1))
    found |= {upgrade(r) for r in list(found) if re.fullmatch(r"\d{15}", r)}
    return found


@st.composite
def valid_ids(draw) -> str:
    region = draw(st.sampled_from(["140502", "140525", "410802", "110105", "650102"]))
    born = draw(st.dates(min_value=dt.date(1920, 1, 1), max_value=dt.date(2024, 12, 31)))
    seq = draw(st.integers(0, 999))
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + check_char(first17)


FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


@st.composite
def written_ids(draw) -> str:
    """An ID as a department might write it, damaged or not."""
    value = draw(valid_ids())
    how = draw(st.sampled_from([
        "as_is", "spaces", "full_width", "lower", "apostrophe", "legacy", "excel_general", "excel_number",
        "excel_sci15", "substitute", "swap", "truncate", "extra", "float_text",
    ]))
    if how == "spaces":
        cut = draw(st.integers(1, 17))
        return f" {value[:cut]} {value[cut:]}\u3000"
    if how == "full_width":
        return value.translate(FULL_WIDTH)
    if how == "lower":
        return value.lower()
    if how == "apostrophe":
        return "'" + value
    if how == "legacy":
        return value[:6] + value[8:17]
    if how in ("excel_general", "excel_number", "excel_sci15"):
        digits = 6 if how == "excel_general" else 15
        if not value[:17].isdigit() or not value[17].isdigit():
            return value  # Excel cannot take an ID ending in X as a number
        rounded = str((int(value) + 10 ** (17 - digits) * 5) // 10 ** (18 - digits))
        if how == "excel_number":
            return rounded + "0" * (18 - digits)
        return f"{rounded[0]}.{rounded[1:]}E+17"
    if how == "substitute":
        i = draw(st.integers(0, 17))
        digit = draw(st.sampled_from([d for d in "0123456789" if d != value[i]]))
        return value[:i] + digit + value[i + 1 :]
    if how == "swap":
        i = draw(st.integers(0, 16))
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    if how == "truncate":
        return value[: draw(st.integers(0, 17))]
    if how == "extra":
        return value + draw(st.sampled_from(["0", "1", "X", "号"]))
    if how == "float_text":
        return f"{int(value[:17])}.0" if draw(st.booleans()) else f"{value[:15]}.0"
    return value


NOISE = st.text(alphabet="0123456789Xx .E+-'０１２３ＸE号\u3000", max_size=24)


def _clean(values: list[str]) -> list[dict]:
    frame = pl.DataFrame({"id": values}, schema={"id": pl.Utf8})
    return clean_id_column(frame, "id").to_dicts()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(written_ids(), NOISE), min_size=1, max_size=40))
def test_a_valid_output_is_always_a_reading_of_the_input(values):
    for raw, row in zip(values, _clean(values)):
        if row["id_valid"]:
            assert row["id"] in readings(raw), (raw, row)
            assert is_valid(row["id"]), (raw, row)


@settings(max_examples=300, deadline=None)
@given(st.lists(written_ids(), min_size=1, max_size=40))
def test_a_valid_reading_is_always_found(values):
    """The converse: an input with a valid reading (other than an Excel-rounded number)
    gets that ID."""
    for raw, row in zip(values, _clean(values)):
        valid = {r for r in readings(raw) if is_valid(r)}
        if valid:
            assert row["id"] in valid and row["id_valid"], (raw, row)


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_ids(), min_size=1, max_size=20))
def test_excel_damage_is_never_a_full_id(values):
    digit_only = [v for v in values if v.isdigit()]
    written = [f"{v[0]}.{str((int(v) + 5 * 10**11) // 10**12)[1:]}E+17" for v in digit_only]
    for raw, row in zip(written, _clean(written)):
        assert row["id"] is None and not row["id_valid"] and row["id_flag"] == "excel_rounded", (raw, row)
