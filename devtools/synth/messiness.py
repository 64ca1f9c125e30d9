"""How departments write values: the messiness of CONTRACT.md §2, as vectorised renderers.

Each function takes clean values and a per-row or per-file choice and returns the text a
department would have delivered. Damage to ID numbers is recorded by the caller (it
decides what a linker can recover, see `truth`).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")

# Characters often swapped for a same-sounding one when a clerk types a name.
HOMOPHONES = {
    "丽": "莉", "莉": "丽", "明": "铭", "伟": "玮", "静": "婧", "华": "桦", "军": "君", "杰": "洁",
    "芳": "方", "敏": "民", "娟": "鹃", "涛": "韬", "强": "墙", "磊": "垒", "燕": "艳", "艳": "燕",
    "霞": "侠", "平": "萍", "萍": "平", "红": "宏", "宏": "红", "辉": "晖", "建": "健", "国": "果",
    "玉": "钰", "英": "瑛", "梅": "媚", "春": "椿", "林": "琳", "琳": "林", "凤": "风", "兰": "岚",
}

ID_DAMAGES = ("none", "format", "legacy15", "typo_sub", "typo_swap", "missing")


def choose_id_damage(rng: np.random.Generator, n: int, born_before_1985: np.ndarray, rates: dict[str, float]) -> np.ndarray:
    """Per record: how its ID is written (before any file-level Excel damage)."""
    draw = rng.random(n)
    out = np.full(n, "none", dtype="<U9")
    edge = 0.0
    for kind in ("missing", "typo_sub", "typo_swap", "format", "legacy15"):
        rate = rates.get(kind, 0.0)
        pick = (draw >= edge) & (draw < edge + rate)
        if kind == "legacy15":
            pick &= born_before_1985
        out[pick] = kind
        edge += rate
    return out


def render_ids(rng: np.random.Generator, id18: pl.Series, damage: np.ndarray) -> pl.Series:
    """The ID text for each record given its damage."""
    ids = id18.to_numpy().astype("<U18")
    out = ids.astype("<U40").copy()
    # Typos: one digit substituted, or two neighbours swapped (never the check digit).
    for kind in ("typo_sub", "typo_swap"):
        pick = np.flatnonzero(damage == kind)
        if len(pick) == 0:
            continue
        digits = np.frombuffer(ids[pick].astype("S18").tobytes(), dtype=np.uint8).reshape(-1, 18).copy()
        rows = np.arange(len(pick))
        pos = rng.integers(0, 16, len(pick))
        if kind == "typo_sub":
            digits[rows, pos] = (digits[rows, pos] - 48 + rng.integers(1, 10, len(pick))) % 10 + 48
        else:
            same = digits[rows, pos] == digits[rows, pos + 1]
            pos = np.where(same, (pos + 3) % 16, pos)  # move off a pair of equal digits
            a, b = digits[rows, pos].copy(), digits[rows, pos + 1].copy()
            digits[rows, pos], digits[rows, pos + 1] = b, a
        out[pick] = np.frombuffer(digits.tobytes(), dtype="S18").astype("<U18")
    pick = damage == "legacy15"
    out[pick] = np.strings.add(np.strings.slice(ids[pick], 0, 6), np.strings.slice(ids[pick], 8, 17))
    pick = np.flatnonzero(damage == "format")
    if len(pick):
        style = rng.integers(0, 4, len(pick))
        text = ids[pick].astype("<U40")
        spaced = np.strings.add(np.strings.add(np.strings.slice(text, 0, 6), " "), np.strings.slice(text, 6, None))
        text = np.where(style == 0, spaced, text)
        text = np.where(style == 1, np.strings.lower(text), text)
        text = np.where(style == 2, np.strings.add("'", text), text)
        full = np.array([t.translate(FULL_WIDTH) for t in text[style == 3]], dtype="<U40") if (style == 3).any() else None
        if full is not None:
            text[style == 3] = full
        out[pick] = text
    out[damage == "missing"] = ""
    return pl.Series(out.astype(str))


def excel_rounded(id18: np.ndarray, significant: int) -> np.ndarray:
    """What Excel keeps of an 18-digit number: `significant` digits, rounded half up."""
    value = np.asarray(id18, dtype="<U18").astype(np.int64)
    scale = np.int64(10 ** (18 - significant))
    return (value + scale // 2) // scale


def excel_text(id_text: pl.Series, style: str) -> tuple[pl.Series, np.ndarray]:
    """IDs in a CSV saved from Excel: digit-only 18-character IDs became numbers, shown
    as `1.40502E+17` (General format) or `140502198001011000` (Number format). IDs with an
    X, or with 15 digits, survive. Returns the text and which rows were damaged."""
    text = id_text.to_numpy().astype("<U40")
    numeric = np.strings.isdigit(text) & (np.strings.str_len(text) == 18)
    out = text.copy()
    idx = np.flatnonzero(numeric)
    if len(idx):
        if style == "general":
            mant = excel_rounded(text[idx], 6).astype(str)
            frac = np.strings.rstrip(np.strings.slice(mant, 1, None), "0")
            shown = np.where(
                np.strings.str_len(frac) > 0,
                np.strings.add(np.strings.add(np.strings.add(np.strings.slice(mant, 0, 1), "."), frac), "E+17"),
                np.strings.add(np.strings.slice(mant, 0, 1), "E+17"),
            )
        else:
            shown = np.strings.add(excel_rounded(text[idx], 15).astype(str), "000")
        out[idx] = shown
    return pl.Series(out.astype(str)), numeric


def render_names(rng: np.random.Generator, names: pl.Series, rates: dict[str, float]) -> tuple[pl.Series, np.ndarray]:
    """Names with the habits of clerks: a space after the surname, a same-sounding
    character, the traditional form, a different dot in minority names."""
    text = names.to_numpy().astype("<U24")
    n = len(text)
    variant = np.full(n, "none", dtype="<U12")
    draw = rng.random(n)
    space = draw < rates.get("space", 0.02)
    homophone = (draw >= 0.02) & (draw < 0.02 + rates.get("homophone", 0.007))
    traditional = (draw >= 0.03) & (draw < 0.03 + rates.get("traditional", 0.005))
    mistyped = (draw >= 0.04) & (draw < 0.04 + rates.get("mistyped", 0.003))
    out = text.copy()
    out[space] = np.strings.add(np.strings.add(np.strings.slice(text[space], 0, 1), " "), np.strings.slice(text[space], 1, None))
    variant[space] = "space"
    idx = np.flatnonzero(homophone)
    if len(idx):
        changed = np.array([_homophone(t) for t in text[idx]], dtype="<U24")  # 0.7% of rows
        moved = changed != text[idx]
        out[idx[moved]] = changed[moved]
        variant[idx[moved]] = "homophone"
    idx = np.flatnonzero(traditional)
    if len(idx):
        import opencc

        converter = opencc.OpenCC("s2t")
        changed = np.array([converter.convert(t) for t in text[idx]], dtype="<U24")  # 0.5% of rows
        moved = changed != text[idx]
        out[idx[moved]] = changed[moved]
        variant[idx[moved]] = "traditional"
    idx = np.flatnonzero(mistyped & (np.strings.str_len(text) >= 2) & (np.strings.find(text, "·") < 0))
    if len(idx):  # the last character of the given name replaced by another common one
        from devtools.synth.identity import GIVEN_CHARS

        replacement = np.array(list(GIVEN_CHARS))[rng.integers(0, len(GIVEN_CHARS), len(idx))]
        changed = np.strings.add(np.strings.slice(text[idx], 0, -1), replacement)
        moved = changed != text[idx]
        out[idx[moved]] = changed[moved]
        variant[idx[moved]] = "mistyped"
    dotted = np.strings.find(out, "·") >= 0
    dot_style = rng.integers(0, 3, n)
    out = np.where(dotted & (dot_style == 1), np.strings.replace(out, "·", "•"), out)
    out = np.where(dotted & (dot_style == 2), np.strings.replace(out, "·", "."), out)
    return pl.Series(out.astype(str)), variant


def _homophone(name: str) -> str:
    for i in range(len(name) - 1, 0, -1):
        if name[i] in HOMOPHONES:
            return name[:i] + HOMOPHONES[name[i]] + name[i + 1 :]
    return name


DATE_STYLES = ("iso", "slash", "compact", "chinese", "dotted")


def render_dates(dates: pl.Series, style: str) -> pl.Series:
    """Dates as departments write them; `excel` gives the serial number."""
    frame = pl.DataFrame({"d": dates})
    d = pl.col("d")
    expr = {
        "iso": d.dt.strftime("%Y-%m-%d"),
        "slash": pl.format("{}/{}/{}", d.dt.year(), d.dt.month(), d.dt.day()),
        "compact": d.dt.strftime("%Y%m%d"),
        "chinese": pl.format("{}年{}月{}日", d.dt.year(), d.dt.month(), d.dt.day()),
        "dotted": pl.format("{}.{}.{}", d.dt.year(), d.dt.month(), d.dt.day()),
        "excel": (d - pl.lit(dt.date(1899, 12, 30))).dt.total_days().cast(pl.Utf8),
    }[style]
    return frame.select(expr.alias("d"))["d"]


MONEY_STYLES = ("plain", "separators", "yuan")


def render_money(values: pl.Series, style: str) -> pl.Series:
    frame = pl.DataFrame({"v": values.cast(pl.Float64)})
    v = pl.col("v")
    if style == "plain":
        expr = v.round(2).cast(pl.Utf8).str.replace(r"\.0$", "")
    elif style == "yuan":
        expr = pl.concat_str([v.round(2).cast(pl.Utf8).str.replace(r"\.0$", ""), pl.lit("元")])
    else:
        fixed = pl.format("{}", v.round(2)).str.replace(r"^(-?\d+)$", "$1.00").str.replace(r"\.(\d)$", ".${1}0")
        integer = fixed.str.extract(r"^-?(\d+)", 1)
        grouped = integer.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.strip_suffix(",").str.reverse()
        sign = pl.when(v < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        expr = pl.concat_str([sign, grouped, pl.lit("."), fixed.str.extract(r"\.(\d+)$", 1)])
    return frame.select(expr.alias("v"))["v"]
