"""Quarter × region partitions: keys, the helper assets use, region names."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from pipelines.partitions import (
    Partition,
    check_region,
    is_quarter_folder,
    partition_key,
    partition_of,
    quarter_from_key,
    quarter_key,
    quarter_region,
)
from pipelines.quarters import Quarter


def test_a_partition_key_names_quarter_and_region():
    key = partition_key("2025q3", "14")
    assert isinstance(key, dg.MultiPartitionKey)
    assert key.keys_by_dimension == {"quarter": "2025-07-01", "region": "14"}
    assert str(key) == "2025-07-01|14"
    assert partition_key("2025Q3").keys_by_dimension["region"] == "all"


def test_assets_get_quarter_and_region_from_the_context():
    context = dg.build_asset_context(partition_key=partition_key("2024Q4", "山西"))
    assert partition_of(context) == Partition(Quarter(2024, 4), "山西")


@pytest.mark.parametrize("name", ["14", "shanxi", "all", "晋城市", "41-08", "a_b"])
def test_region_names_that_are_folder_names(name):
    assert check_region(name) == name


@pytest.mark.parametrize("name", ["", "a b", "14|41", "../x", "a/b", "-x", ".hidden", "x" * 65, "a,b"])
def test_region_names_refused(name):
    with pytest.raises(ValueError, match="地区代码"):
        check_region(name)


def test_quarters_grow_with_time_from_the_first_quarter():
    keys = quarter_region.get_partitions_def_for_dimension("quarter").get_partition_keys()
    current = Quarter.containing(dt.date.today())
    assert keys[0] == "2020-01-01" and keys[-1] == current.start.isoformat()  # the quarter under way is a partition too
    assert len(keys) == current - Quarter(2020, 1) + 1
    assert [str(quarter_from_key(k)) for k in keys[:5]] == ["2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1"]
    assert all(quarter_key(quarter_from_key(k)) == k for k in keys)


@pytest.mark.parametrize("label, why", [("2025Q9", "写法不对"), ("2025-3", "写法不对"), ("2019Q4", "早于"), ("2999Q1", "尚未开始")])
def test_quarters_outside_the_partitions_are_refused_in_words(label, why):
    with pytest.raises(ValueError, match=why):
        quarter_key(label)
    assert not is_quarter_folder(label)


def test_inbox_folders_that_are_quarters():
    assert is_quarter_folder("2025Q3")
    assert not is_quarter_folder("2025q3")  # the folder must be written as the label
    assert not is_quarter_folder("truth")
