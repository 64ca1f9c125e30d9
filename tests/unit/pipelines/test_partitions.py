"""Quarter × region partitions: keys, the helper assets use, region names."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.partitions import Partition, check_region, partition_key, partition_of, quarter_region
from pipelines.quarters import Quarter


def test_a_partition_key_names_quarter_and_region():
    key = partition_key("2025q3", "14")
    assert isinstance(key, dg.MultiPartitionKey)
    assert key.keys_by_dimension == {"quarter": "2025Q3", "region": "14"}
    assert str(key) == "2025Q3|14"
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


def test_every_quarter_label_is_a_valid_dimension_key():
    quarters = quarter_region.get_partitions_def_for_dimension("quarter").get_partition_keys()
    assert quarters[0] == "2020Q1" and quarters[-1] == "2039Q4" and len(quarters) == 80
