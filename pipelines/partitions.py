"""The partitions of doudi's assets: quarter × region.

- quarter: a static list from 2020Q1 to 2039Q4. Dagster's time-window partitions cannot
  name a quarter `2025Q3`, and a fixed list keeps `doudi run --quarter` independent of any
  sensor having registered the quarter first.
- region: a dynamic partition named "region" (a province, a city: whatever a deployment
  runs as one unit with its own inbox, warehouse and output folder). Regions are added to
  the Dagster instance by `doudi run --region` (before it launches the run), by the inbox
  sensor and by the schedule; a deployment that runs one region uses `all`, which is what
  `doudi run` without `--region` does.

Every regional asset is partitioned by `quarter_region`, so one (quarter, region) is one
Dagster run that any run launcher can place on any machine. The national step (rules D01
and D03 across regions, `pipelines/national`) is partitioned by quarter only.

Assets never parse partition keys themselves: `partition_of(context)` gives the quarter
and the region (`quarter_of` the quarter of a quarter-only asset).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import dagster as dg

from pipelines.quarters import Quarter

FIRST, LAST = Quarter(2020, 1), Quarter(2039, 4)
QUARTER_LABELS = [str(FIRST + i) for i in range(LAST - FIRST + 1)]
quarters = dg.StaticPartitionsDefinition(QUARTER_LABELS)

REGION_DIMENSION = "region"
SINGLE_REGION = "all"  # the region of a deployment that is not split (doudi run without --region)
regions = dg.DynamicPartitionsDefinition(name=REGION_DIMENSION)
quarter_region = dg.MultiPartitionsDefinition({"quarter": quarters, REGION_DIMENSION: regions})

# A region key names a folder and a Dagster partition: letters (any script), digits, _ and -.
_REGION_KEY = re.compile(r"[^\W][\w-]{0,63}")


class Partition(NamedTuple):
    quarter: Quarter
    region: str


def check_region(region: str) -> str:
    """The region key, or ValueError saying what is wrong with it."""
    if not isinstance(region, str) or not _REGION_KEY.fullmatch(region):
        raise ValueError(
            f"地区代码 {region!r} 不可用：只能由字母、数字、汉字、_ 和 - 组成（不超过64个字符），例如 14、shanxi、all"
        )
    return region


def partition_key(quarter: str | Quarter, region: str = SINGLE_REGION) -> dg.MultiPartitionKey:
    """The Dagster partition key of one quarter of one region."""
    return dg.MultiPartitionKey({"quarter": str(Quarter.parse(str(quarter))), REGION_DIMENSION: check_region(region)})


def partition_of(context) -> Partition:
    """The quarter and region an asset or asset check runs for (quarter × region assets)."""
    key = context.partition_key
    keys = (key if isinstance(key, dg.MultiPartitionKey) else quarter_region.get_partition_key_from_str(key)).keys_by_dimension
    return Partition(Quarter.parse(keys["quarter"]), keys[REGION_DIMENSION])


def quarter_of(context) -> Quarter:
    """The quarter a quarter-only asset (the national step) runs for."""
    return Quarter.parse(context.partition_key)


def register_regions(instance: dg.DagsterInstance, names: list[str]) -> None:
    """Add regions to the instance's "region" partitions (idempotent)."""
    instance.add_dynamic_partitions(REGION_DIMENSION, [check_region(n) for n in names])
