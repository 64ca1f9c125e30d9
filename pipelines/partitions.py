"""The partitions of doudi's assets: quarter × region.

- quarter: quarterly time windows that grow with time, from the deployment's first quarter
  (`DOUDI_FIRST_QUARTER`, default 2020Q1) to the current quarter. Dagster names a time
  window by its start (a strftime format cannot write `2025Q3`), so the partition of
  2025Q3 is `2025-07-01`; the command line, the inbox folders, the warehouse and the
  lists all keep the label `2025Q3`, and only this module converts between the two. The
  current quarter is a partition too (`end_offset=1`), so an operator can try a delivery
  before the quarter ends.
- region: a dynamic partition named "region" (a province, a city: whatever a deployment
  runs as one unit with its own inbox, warehouse and output folder). Regions are added to
  the Dagster instance by `doudi run --region` (before it launches the run), by the inbox
  sensor and by the schedule; a deployment that runs one region uses `all`, which is what
  `doudi run` without `--region` does.

Every regional asset is partitioned by `quarter_region`, so one (quarter, region) is one
Dagster run that any run launcher can place on any machine. The national step (rules D01
and D03 across regions, `pipelines/national`) is partitioned by quarter only.

Assets never parse partition keys themselves: `partition_of(context)` gives the quarter
and the region (`quarter_of` the quarter of a quarter-only asset); `quarter_key` is the
key of a quarter-only partition.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import NamedTuple

import dagster as dg

from pipelines.quarters import Quarter

FIRST_QUARTER = Quarter.parse(os.environ.get("DOUDI_FIRST_QUARTER", "2020Q1"))
_KEY_FORMAT = "%Y-%m-%d"
quarters = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",  # a window starts on the first day of each quarter
    start=FIRST_QUARTER.start.strftime(_KEY_FORMAT),
    fmt=_KEY_FORMAT,
    timezone="Asia/Shanghai",
    end_offset=1,
)


def quarter_key(quarter: str | Quarter) -> str:
    """The partition key of a quarter (`2025Q3` → `2025-07-01`); ValueError, in the
    operator's words, for a quarter outside the deployment's partitions."""
    try:
        q = Quarter.parse(str(quarter))
    except ValueError:
        raise ValueError(f"季度 {str(quarter)!r} 写法不对：应写作年份、Q 和 1–4 的季度序号，例如 2025Q3") from None
    if q < FIRST_QUARTER:
        raise ValueError(f"季度 {q} 早于本系统部署的第一个季度 {FIRST_QUARTER}（环境变量 DOUDI_FIRST_QUARTER）")
    if q > Quarter.containing(dt.date.today()):
        raise ValueError(f"季度 {q} 尚未开始")
    return q.start.strftime(_KEY_FORMAT)


def is_quarter_folder(name: str) -> bool:
    """Whether an inbox folder name is a quarter this deployment runs (`2025Q3`)."""
    try:
        return str(Quarter.parse(name)) == name and bool(quarter_key(name))
    except ValueError:
        return False


def quarter_from_key(key: str) -> Quarter:
    """The quarter a partition key names (`2025-07-01` → 2025Q3)."""
    return Quarter.containing(dt.datetime.strptime(key, _KEY_FORMAT).date())


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
    return dg.MultiPartitionKey({"quarter": quarter_key(quarter), REGION_DIMENSION: check_region(region)})


def partition_of(context) -> Partition:
    """The quarter and region an asset or asset check runs for (quarter × region assets)."""
    key = context.partition_key
    keys = (key if isinstance(key, dg.MultiPartitionKey) else quarter_region.get_partition_key_from_str(key)).keys_by_dimension
    return Partition(quarter_from_key(keys["quarter"]), keys[REGION_DIMENSION])


def quarter_of(context) -> Quarter:
    """The quarter a quarter-only asset (the national step) runs for."""
    return quarter_from_key(context.partition_key)


def register_regions(instance: dg.DagsterInstance, names: list[str]) -> None:
    """Add regions to the instance's "region" partitions (idempotent)."""
    instance.add_dynamic_partitions(REGION_DIMENSION, [check_region(n) for n in names])
