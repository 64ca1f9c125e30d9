"""A generated country written as one inbox per region, and merged back into one."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from devtools.synth.extracts import Delivery
from devtools.synth.generate import RegionSplit, _split_by_region, merge_region_inboxes

NAMES = ["13", "14", "41"]


def _delivery(source: str, n: int = 3000) -> Delivery:
    counties = np.array(["130102", "140502", "140821", "410802"])[np.arange(n) % 4]
    return Delivery(source, pl.DataFrame({"record_id": [f"R{i}" for i in range(n)], "__county": counties}), "__county")


def test_rows_go_to_the_region_of_their_county():
    parts = _split_by_region(RegionSplit(), _delivery("households"), NAMES, np.random.default_rng(1))
    assert sorted(parts) == NAMES
    for name, part in parts.items():
        assert part.records["__county"].str.starts_with(name).all()
        assert part.split_by == "__county" and part.source == "households"
    assert sum(p.records.height for p in parts.values()) == 3000


def test_some_deaths_are_registered_in_another_region():
    parts = _split_by_region(RegionSplit(away_deaths=0.2), _delivery("death"), NAMES, np.random.default_rng(1))
    everyone = pl.concat([p.records.with_columns(pl.lit(name).alias("region")) for name, p in parts.items()])
    assert everyone.height == 3000 and everyone["record_id"].n_unique() == 3000  # each record in one region only
    away = everyone.filter(pl.col("__county").str.slice(0, 2) != pl.col("region"))
    assert 0.15 < away.height / 3000 < 0.25
    assert set(away["region"]) == set(NAMES)


def test_a_region_without_rows_gets_no_delivery():
    delivery = Delivery("households", pl.DataFrame({"household_id": ["H1"], "__county": ["140502"]}), "__county")
    assert list(_split_by_region(RegionSplit(), delivery, NAMES, np.random.default_rng(1))) == ["14"]


def test_merging_region_inboxes(tmp_path):
    for name in ("14", "41"):
        folder = tmp_path / "country" / name / "2025Q1" / "death"
        folder.mkdir(parents=True)
        (folder / f"{name}_公安户籍注销.csv").write_text(f"记录编号\n{name}\n", encoding="utf-8")
    (tmp_path / "country" / "truth").mkdir()
    assert merge_region_inboxes(tmp_path / "country", tmp_path / "merged") == ["14", "41"]
    merged = sorted(p.name for p in (tmp_path / "merged" / "2025Q1" / "death").iterdir())
    assert merged == ["14_公安户籍注销.csv", "41_公安户籍注销.csv"]
    with pytest.raises(ValueError, match="already exists"):
        merge_region_inboxes(tmp_path / "country", tmp_path / "merged")
