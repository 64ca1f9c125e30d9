"""Vectorised cleaners for the values departments send, one per column type.

Every cleaner works on a polars DataFrame or LazyFrame alike (the ingest builds one lazy
plan for a whole batch).

Each cleaner takes a DataFrame whose column holds the raw text and replaces it with the
typed value plus a `<column>_flag` saying what was done (`ok`, `normalized`,
`reformatted`, ...). Nothing here guesses: a value that cannot be read becomes null with
a flag that says why, and the ingest decides whether that row is quarantined.

ID numbers (GB 11643) deserve the most care, because a wrong ID links a record to the
wrong person. The cleaner only ever outputs an 18-character ID that is a literal reading
of the input (the same digits, or a legacy 15-digit number upgraded by inserting `19`
and computing the check digit). Numbers that went through Excel (`1.40502E+17`,
`140502198001011000`) keep only their leading digits, as Excel rounded them, in
`<column>_partial`: a partial key that needs the name to agree, never a full ID.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

# GB 11643-1999 check digit: weights of the first 17 digits, and the digit for sum mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

# Flags, in the words the quarantine and the checks use.
OK, NORMALIZED, MISSING = "ok", "normalized", "missing"
UPGRADED_15 = "upgraded_15"  # legacy 15-digit number, converted to 18 digits
EXCEL_ROUNDED = "excel_rounded"  # went through Excel: only the leading digits survive
POSSIBLY_EXCEL_ROUNDED = "possibly_excel_rounded"  # valid, but ends in 000 like an Excel-rounded one
BAD_CHECKSUM = "bad_checksum"
BAD_BIRTH_DATE = "bad_birth_date"
INVALID_FORMAT = "invalid_format"
REFORMATTED, EXCEL_SERIAL, UNPARSEABLE, OUT_OF_RANGE, NEGATIVE, UNKNOWN_VALUE = (
    "reformatted",
    "excel_serial",
    "unparseable",
    "out_of_range",
    "negative",
    "unknown_value",
)

_APOSTROPHES_AND_SPACE = r"[\s'‘’`\"“”]"
_MIDDLE_DOTS = r"[•∙⋅・･‧.．。﹒·]"


def _tmp(col: str, part: str) -> str:
    return f"__{col}__{part}"


def check_digit(first17: pl.Expr) -> pl.Expr:
    """The GB 11643 check character for an expression of 17 digits (null if not digits)."""
    total = pl.sum_horizontal(
        [first17.str.slice(i, 1).cast(pl.Int32, strict=False) * w for i, w in enumerate(ID_WEIGHTS)]
    )
    total = pl.when(first17.str.contains(r"^\d{17}$")).then(total).otherwise(None)
    return (total % 11).replace_strict(list(range(11)), list(ID_CHECK_CHARS), default=None, return_dtype=pl.Utf8)


def _birth_date_ok(id18: pl.Expr) -> pl.Expr:
    birth = id18.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)
    return birth.is_not_null() & (birth >= dt.date(1900, 1, 1)) & (birth <= dt.date.today())


def normalise_id_text(raw: pl.Expr) -> pl.Expr:
    """Full-width to half-width, no spaces or apostrophes, upper-case X."""
    return raw.str.normalize("NFKC").str.replace_all(_APOSTROPHES_AND_SPACE, "").str.to_uppercase()


def clean_id_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    """Replace raw ID text in `col` by the cleaned ID and its companions.

    Adds `col` (18 characters, or null when no full ID can be read), `col_valid` (check
    digit and embedded birth date both right), `col_partial` (leading digits of an
    Excel-rounded number), `col_raw` (the text after normalisation, for fuzzy linking and
    for caseworkers) and `col_flag`.
    """
    n, cls, digits, mant, exp = (_tmp(col, p) for p in ("n", "cls", "digits", "mant", "exp"))
    sci = r"^(\d)(?:\.(\d+))?E\+?(\d{1,2})$"
    out = df.with_columns(normalise_id_text(pl.col(col)).alias(n))
    out = out.with_columns(
        pl.concat_str(
            [pl.col(n).str.extract(sci, 1), pl.col(n).str.extract(sci, 2).fill_null("")]
        ).alias(mant),
        pl.col(n).str.extract(sci, 3).cast(pl.Int32, strict=False).alias(exp),
    )
    # The digit string a value stands for, when it stands for an exact one.
    exact_sci = pl.col(mant).is_not_null() & (pl.col(mant).str.len_chars() == pl.col(exp) + 1)
    float_text = pl.col(n).str.extract(r"^(\d+)\.0*$", 1)  # "140502800101123.0" from a float
    out = out.with_columns(
        pl.when(exact_sci)
        .then(pl.col(mant))
        .when(float_text.is_not_null() & (float_text.str.len_chars() <= 15))
        .then(float_text)
        .when(pl.col(n).str.contains(r"^(\d{15}|\d{17}[\dX])$"))
        .then(pl.col(n))
        .otherwise(None)
        .alias(digits)
    )
    upgraded = pl.concat_str([pl.col(digits).str.slice(0, 6), pl.lit("19"), pl.col(digits).str.slice(6, 9)])
    id18 = (
        pl.when(pl.col(digits).str.len_chars() == 18)
        .then(pl.col(digits))
        .when(pl.col(digits).str.len_chars() == 15)
        .then(pl.concat_str([upgraded, check_digit(upgraded)]))
        .otherwise(None)
    )
    out = out.with_columns(id18.alias(f"{col}__id18"))
    c = pl.col(f"{col}__id18")
    checksum_ok = check_digit(c.str.slice(0, 17)) == c.str.slice(17, 1)
    birth_ok = _birth_date_ok(c)
    excel_mantissa = pl.col(mant).is_not_null() & ~exact_sci
    excel_float = float_text.is_not_null() & (float_text.str.len_chars() > 15)
    ends_000 = c.str.ends_with("000")
    is_missing = pl.col(n).is_null() | (pl.col(n) == "")
    out = out.with_columns(
        pl.when(is_missing)
        .then(pl.lit(MISSING))
        .when(excel_mantissa | excel_float)
        .then(pl.lit(EXCEL_ROUNDED))
        .when(c.is_null())
        .then(pl.lit(INVALID_FORMAT))
        .when(ends_000 & ~checksum_ok & (pl.col(digits).str.len_chars() == 18))
        .then(pl.lit(EXCEL_ROUNDED))
        .when(~checksum_ok)
        .then(pl.lit(BAD_CHECKSUM))
        .when(~birth_ok)
        .then(pl.lit(BAD_BIRTH_DATE))
        .when(pl.col(digits).str.len_chars() == 15)
        .then(pl.lit(UPGRADED_15))
        .when(ends_000)
        .then(pl.lit(POSSIBLY_EXCEL_ROUNDED))
        .when(pl.col(n) != pl.col(col))
        .then(pl.lit(NORMALIZED))
        .otherwise(pl.lit(OK))
        .alias(cls)
    )
    flag = pl.col(cls)
    partial = (
        pl.when(excel_mantissa)
        .then(pl.col(mant).str.slice(0, 15))
        .when(excel_float)
        .then(float_text.str.slice(0, 15))
        .when(flag.is_in([EXCEL_ROUNDED, POSSIBLY_EXCEL_ROUNDED]))
        .then(c.str.slice(0, 15))
        .otherwise(None)
    )
    out = out.with_columns(
        pl.when(flag.is_in([MISSING, EXCEL_ROUNDED, INVALID_FORMAT])).then(None).otherwise(c).alias(col),
        flag.is_in([OK, NORMALIZED, UPGRADED_15, POSSIBLY_EXCEL_ROUNDED]).alias(f"{col}_valid"),
        partial.alias(f"{col}_partial"),
        pl.when(is_missing).then(None).otherwise(pl.col(n)).alias(f"{col}_raw"),
        flag.alias(f"{col}_flag"),
    )
    return out.drop([n, cls, digits, mant, exp, f"{col}__id18"])


def excel_rounded_prefix(id18: pl.Expr, digits: pl.Expr) -> pl.Expr:
    """The leading `digits` digits of a full ID as Excel would round them (for comparing a
    roster ID with a partial key). Works on the 18-digit numeric value; X counts as 10
    only in the last place, which rounding at <= 15 digits never reaches."""
    value = id18.str.slice(0, 17).cast(pl.Int64, strict=False) * 10 + id18.str.slice(17, 1).replace(
        "X", "10"
    ).cast(pl.Int64, strict=False)
    scale = pl.lit(10, dtype=pl.Int64).pow(18 - digits)
    rounded = (value + scale // 2) // scale
    return rounded.cast(pl.Utf8)


def clean_name_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    """Names: NFKC (full-width letters), no spaces, every middle-dot variant as `·`."""
    raw = pl.col(col)
    cleaned = (
        raw.str.normalize("NFKC")
        .str.replace_all(r"\s+", "")
        .str.replace_all(_MIDDLE_DOTS, "·")
        .str.strip_chars("·")
    )
    out = df.with_columns(cleaned.alias(_tmp(col, "n")))
    n = pl.col(_tmp(col, "n"))
    return out.with_columns(
        pl.when(n.is_null() | (n == "")).then(None).otherwise(n).alias(col),
        pl.when(n.is_null() | (n == ""))
        .then(pl.lit(MISSING))
        .when(n != raw)
        .then(pl.lit(NORMALIZED))
        .otherwise(pl.lit(OK))
        .alias(f"{col}_flag"),
    ).drop(_tmp(col, "n"))


def clean_date_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    """Dates as `2025-07-03`, `2025/7/3`, `2025.7.3`, `20250703`, `2025年7月3日`, with or
    without a time of day, or Excel serial numbers (days since 1899-12-30)."""
    s_name, y, m, d = (_tmp(col, p) for p in ("s", "y", "m", "d"))
    s = (
        pl.col(col)
        .str.normalize("NFKC")
        .str.strip_chars()
        .str.replace(r"(?:[ T]|\s*)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$", "")
        .str.strip_chars()
    )
    out = df.with_columns(s.alias(s_name))
    s = pl.col(s_name)
    general = s.str.replace_all(r"[年月/.]", "-").str.replace_all("日", "")
    pattern = r"^(\d{4})-(\d{1,2})-(\d{1,2})$"
    out = out.with_columns(
        pl.when(s.str.contains(r"^\d{8}$")).then(s.str.slice(0, 4)).otherwise(general.str.extract(pattern, 1)).alias(y),
        pl.when(s.str.contains(r"^\d{8}$")).then(s.str.slice(4, 2)).otherwise(general.str.extract(pattern, 2)).alias(m),
        pl.when(s.str.contains(r"^\d{8}$")).then(s.str.slice(6, 2)).otherwise(general.str.extract(pattern, 3)).alias(d),
    )
    calendar_date = pl.concat_str(
        [pl.col(y), pl.col(m).str.zfill(2), pl.col(d).str.zfill(2)], separator="-"
    ).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    is_serial = s.str.contains(r"^\d{1,5}(?:\.\d+)?$")
    serial_days = s.str.extract(r"^(\d{1,5})", 1).cast(pl.Int64, strict=False)
    serial_date = pl.lit(dt.date(1899, 12, 30)) + pl.duration(days=serial_days)
    value = pl.when(is_serial).then(serial_date.cast(pl.Date)).otherwise(calendar_date)
    in_range = value.is_between(dt.date(1900, 1, 1), dt.date(2100, 12, 31))
    missing = s.is_null() | (s == "")
    out = out.with_columns(
        pl.when(in_range).then(value).otherwise(None).alias(f"{col}__v"),
        pl.when(missing)
        .then(pl.lit(MISSING))
        .when(value.is_null())
        .then(pl.lit(UNPARSEABLE))
        .when(~in_range)
        .then(pl.lit(OUT_OF_RANGE))
        .when(is_serial)
        .then(pl.lit(EXCEL_SERIAL))
        .when(pl.col(col) == value.dt.strftime("%Y-%m-%d"))
        .then(pl.lit(OK))
        .otherwise(pl.lit(REFORMATTED))
        .alias(f"{col}_flag"),
    )
    return out.drop([col, s_name, y, m, d]).rename({f"{col}__v": col})


def clean_money_column(df: pl.DataFrame, col: str, allow_negative: bool = False) -> pl.DataFrame:
    """Yuan amounts as `1,234.50`, `1234.5元`, `￥1234`, `1.2万`; kept to the fen."""
    s_name = _tmp(col, "s")
    s = pl.col(col).str.normalize("NFKC").str.replace_all(r"[\s,，元¥￥]", "")
    out = df.with_columns(s.alias(s_name))
    s = pl.col(s_name)
    wan = s.str.ends_with("万")
    number = s.str.strip_suffix("万")
    valid_text = number.str.contains(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
    value = pl.when(valid_text).then(number.cast(pl.Decimal(18, 4), strict=False)).otherwise(None)
    value = pl.when(wan).then(value * 10000).otherwise(value).cast(pl.Decimal(18, 2), strict=False)
    missing = s.is_null() | (s == "")
    negative = value < 0
    out = out.with_columns(
        pl.when(missing | value.is_null() | (negative & (not allow_negative))).then(None).otherwise(value).alias(f"{col}__v"),
        pl.when(missing)
        .then(pl.lit(MISSING))
        .when(value.is_null())
        .then(pl.lit(UNPARSEABLE))
        .when(negative & (not allow_negative))
        .then(pl.lit(NEGATIVE))
        .when((s == pl.col(col)) & ~wan)
        .then(pl.lit(OK))
        .otherwise(pl.lit(REFORMATTED))
        .alias(f"{col}_flag"),
    )
    return out.drop([col, s_name]).rename({f"{col}__v": col})


def clean_integer_column(df: pl.DataFrame, col: str, minimum: int | None = None) -> pl.DataFrame:
    """Counts such as 家庭人口数: `3`, `3人`, `3.0`."""
    s_name = _tmp(col, "s")
    s = pl.col(col).str.normalize("NFKC").str.replace_all(r"[\s人口个]", "")
    out = df.with_columns(s.alias(s_name))
    s = pl.col(s_name)
    value = s.str.extract(r"^(\d+)(?:\.0+)?$", 1).cast(pl.Int32, strict=False)
    too_small = value < minimum if minimum is not None else pl.lit(False)
    missing = s.is_null() | (s == "")
    out = out.with_columns(
        pl.when(too_small).then(None).otherwise(value).alias(f"{col}__v"),
        pl.when(missing)
        .then(pl.lit(MISSING))
        .when(value.is_null())
        .then(pl.lit(UNPARSEABLE))
        .when(too_small)
        .then(pl.lit(OUT_OF_RANGE))
        .when(s == pl.col(col))
        .then(pl.lit(OK))
        .otherwise(pl.lit(REFORMATTED))
        .alias(f"{col}_flag"),
    )
    return out.drop([col, s_name]).rename({f"{col}__v": col})


def _enum_text(raw: pl.Expr) -> pl.Expr:
    return raw.str.normalize("NFKC").str.replace_all(r"\s+", "").str.to_uppercase()


def _mapped_flag(df: pl.DataFrame, col: str, text: pl.Expr, mapped: pl.Expr) -> pl.DataFrame:
    missing = text.is_null() | (text == "")
    return df.with_columns(
        mapped.alias(f"{col}__v"),
        pl.when(missing)
        .then(pl.lit(MISSING))
        .when(mapped.is_null())
        .then(pl.lit(UNKNOWN_VALUE))
        .when(mapped.cast(pl.Utf8) == pl.col(col))
        .then(pl.lit(OK))
        .otherwise(pl.lit(NORMALIZED))
        .alias(f"{col}_flag"),
    ).drop(col).rename({f"{col}__v": col})


def clean_enum_column(df: pl.DataFrame, col: str, values: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """Map the words departments use to the canonical value; unknown words become null
    with the flag `unknown_value`."""
    import unicodedata

    mapping: dict[str, str] = {}
    for canonical, synonyms in values.items():
        for word in (canonical, *synonyms):
            mapping[unicodedata.normalize("NFKC", word).replace(" ", "").upper()] = canonical
    text = _enum_text(pl.col(col))
    return _mapped_flag(df, col, text, text.replace_strict(mapping, default=None, return_dtype=pl.Utf8))


TRUE_WORDS = ("是", "Y", "YES", "TRUE", "1", "√", "是的", "有")
FALSE_WORDS = ("否", "N", "NO", "FALSE", "0", "×", "不是", "无")


def clean_boolean_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    """是/否 and the other ways of writing yes and no."""
    text = _enum_text(pl.col(col))
    mapping = {w: True for w in TRUE_WORDS} | {w: False for w in FALSE_WORDS}
    mapped = text.replace_strict(mapping, default=None, return_dtype=pl.Boolean)
    missing = text.is_null() | (text == "")
    return df.with_columns(
        mapped.alias(f"{col}__v"),
        pl.when(missing)
        .then(pl.lit(MISSING))
        .when(mapped.is_null())
        .then(pl.lit(UNKNOWN_VALUE))
        .when(pl.col(col).is_in(["是", "否"]))
        .then(pl.lit(OK))
        .otherwise(pl.lit(NORMALIZED))
        .alias(f"{col}_flag"),
    ).drop(col).rename({f"{col}__v": col})


def clean_county_code_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    """Six-digit GB/T 2260 codes; a 12-digit statistical code ending in zeros is cut to 6."""
    s_name = _tmp(col, "s")
    s = pl.col(col).str.normalize("NFKC").str.replace_all(r"\s", "").str.replace(r"\.0+$", "")
    out = df.with_columns(s.alias(s_name))
    s = pl.col(s_name)
    value = (
        pl.when(s.str.contains(r"^\d{6}$"))
        .then(s)
        .when(s.str.contains(r"^\d{6}0{3,6}$"))
        .then(s.str.slice(0, 6))
        .otherwise(None)
    )
    missing = s.is_null() | (s == "")
    out = out.with_columns(
        value.alias(f"{col}__v"),
        pl.when(missing)
        .then(pl.lit(MISSING))
        .when(value.is_null())
        .then(pl.lit(INVALID_FORMAT))
        .when(value == pl.col(col))
        .then(pl.lit(OK))
        .otherwise(pl.lit(REFORMATTED))
        .alias(f"{col}_flag"),
    )
    return out.drop([col, s_name]).rename({f"{col}__v": col})


def clean_key_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    """Keys keep their characters; only width and surrounding spaces are normalised."""
    cleaned = pl.col(col).str.normalize("NFKC").str.strip_chars().str.strip_chars("'")
    return df.with_columns(pl.when(cleaned == "").then(None).otherwise(cleaned).alias(col))


def clean_text_column(df: pl.DataFrame, col: str) -> pl.DataFrame:
    cleaned = pl.col(col).str.strip_chars()
    return df.with_columns(pl.when(cleaned == "").then(None).otherwise(cleaned).alias(col))
