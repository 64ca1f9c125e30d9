"""Keys that let names written differently compare equal.

- `name_s`: the simplified form (OpenCC t2s), so 張偉 and 张伟 agree;
- `name_py`: toneless pinyin (pypinyin), so homophones typed for one another (丽/莉,
  明/铭) agree;
- `surname`: the first character of the simplified name (two for compound surnames).

Both libraries work per character here: names are short, readings of single characters
are what a clerk's homophone slip changes, and it lets the conversion run once per
distinct character (a few thousand) instead of once per name (millions), mapped back over
whole columns by polars.
"""

from __future__ import annotations

import functools

import polars as pl

COMPOUND_SURNAMES = {
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "令狐", "钟离", "端木", "南宫", "西门", "独孤",
}


@functools.cache
def _converter():
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=200_000)
def _char_keys(char: str) -> tuple[str, str]:
    from pypinyin import Style, lazy_pinyin

    simplified = _converter().convert(char)
    reading = lazy_pinyin(simplified, style=Style.NORMAL, errors="default")
    return simplified, "".join(reading)


def first_character_pinyin(characters: list[str]) -> pl.DataFrame:
    """first_char -> surname_py, for the candidate search (one row per distinct character)."""
    return pl.DataFrame(
        {"first_char": characters, "surname_py": [_char_keys(c)[1] for c in characters]},
        schema={"first_char": pl.Utf8, "surname_py": pl.Utf8},
    )


def name_keys(names: pl.Series) -> pl.DataFrame:
    """name_s, name_py and surname for a column of cleaned names (nulls stay null)."""
    chars = names.drop_nulls().str.split("").explode().unique().drop_nulls().to_list()
    simplified = {c: _char_keys(c)[0] for c in chars}
    pinyin = {c: _char_keys(c)[1] for c in chars}
    frame = pl.DataFrame({"name": names})
    split = pl.col("name").str.split("")
    frame = frame.with_columns(
        split.list.eval(pl.element().replace_strict(simplified, default=pl.element())).list.join("").alias("name_s"),
        split.list.eval(pl.element().replace_strict(pinyin, default=pl.element())).list.join(" ").alias("name_py"),
    )
    first_two = pl.col("name_s").str.slice(0, 2)
    return frame.select(
        pl.when(pl.col("name").is_null()).then(None).otherwise(pl.col("name_s")).alias("name_s"),
        pl.when(pl.col("name").is_null()).then(None).otherwise(pl.col("name_py")).alias("name_py"),
        pl.when(pl.col("name").is_null())
        .then(None)
        .when(first_two.is_in(list(COMPOUND_SURNAMES)))
        .then(first_two)
        .otherwise(pl.col("name_s").str.slice(0, 1))
        .alias("surname"),
    )
