"""`clean_batch` cleans repeating columns once per distinct value; the rows it loads and
quarantines, and their order, must be exactly those of cleaning every row."""

import polars as pl
import pytest

from pipelines.ingest import load
from sources.registry import source

IDS = ["110101199003070015", "11010119900307001x", " 1.10101E+17", "110101900307001", "", None, "11010119900307001１"]
NAMES = ["张三", "张 三", "阿依·买买提", "阿依.买买提", None, ""]
DATES = ["2025-05-03", "2025/5/3", "20250503", "45780", "2025年5月3日", "", None, "昨天"]
VISITS = ["住院", "门诊", "门 诊", "特殊病", "其他", None]
AMOUNTS = ["1,234.50", "100", "1.2万", "-5", "", None, "abc"]


def messy_settlements(rows: int) -> pl.DataFrame:
    """Values drawn from small pools, in a scrambled order, so that every value repeats."""
    def pick(pool, step):
        return [pool[(i * step + i // 7) % len(pool)] for i in range(rows)]

    return pl.DataFrame(
        {
            "settlement_id": [f"S{i % (rows - 3)}" for i in range(rows)],
            "name": pick(NAMES, 5),
            "id_number": pick(IDS, 3),
            "settlement_date": pick(DATES, 11),
            "institution": pick(["县人民医院", " 乡镇卫生院 "], 1),
            "visit_type": pick(VISITS, 7),
            "total_cost_yuan": pick(AMOUNTS, 13),
            "basic_insurance_yuan": pick(AMOUNTS, 2),
            "critical_illness_yuan": pick(AMOUNTS, 17),
            "medical_assistance_yuan": pick(AMOUNTS, 19),
            "other_supplementary_yuan": pick(AMOUNTS, 23),
            "out_of_pocket_yuan": pick(AMOUNTS, 29),
        },
        schema_overrides={c: pl.Utf8 for c in ["name", "id_number", "settlement_date", "visit_type"]},
    ).with_row_index("source_row", 2).with_columns(pl.col("source_row").cast(pl.Int32))


@pytest.mark.parametrize("rows", [1, 2_000])
def test_cleaning_distinct_values_equals_cleaning_every_row(rows, monkeypatch):
    spec = source("medical")
    raw = messy_settlements(max(rows, 4)).head(rows)
    good, bad = load.clean_batch(spec, raw)
    monkeypatch.setattr(load, "CLEANED_PER_DISTINCT_VALUE", set())
    good_per_row, bad_per_row = load.clean_batch(spec, raw)
    # columns are read by name downstream; their order may differ
    assert sorted(good.columns) == sorted(good_per_row.columns) and good.equals(good_per_row.select(good.columns))
    assert sorted(bad.columns) == sorted(bad_per_row.columns) and bad.equals(bad_per_row.select(bad.columns))
    if rows > 1:  # the pools hold bad values: both outcomes are exercised
        assert good.height and bad.height
        assert good["source_row"].is_sorted() and bad["source_row"].is_sorted()
