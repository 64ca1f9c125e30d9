"""Where a run reads and writes: each region's inbox, warehouse and output folder, and the
national step's warehouse and output folder.

One resource, configured per run: `doudi run` and `doudi national` pass run config; the UI,
the schedule and the sensors take the environment:

  DOUDI_INBOX       the inbox (default `inbox`)
  DOUDI_WAREHOUSE   the warehouse file (default `var/doudi.duckdb`)
  DOUDI_OUT         the output folder (default `var/out`)
  DOUDI_NATIONAL_WAREHOUSE, DOUDI_NATIONAL_OUT   the national step's (default under `var/national/`)

Each path may hold `{region}`, replaced by the region of the run. A deployment of several
regions sets `DOUDI_INBOX=/data/inbox/{region}`: every sub-folder of `/data/inbox` is then a
region (its quarters in `/data/inbox/<region>/<Q>/`), and the warehouse and output folder
must be per region too (`{region}` in both; when they are not set they default to
`var/regions/{region}/doudi.duckdb` and `var/regions/{region}/out`). A path without
`{region}` is used as it is: that is the single region `all` of `doudi run` without
`--region`, whose inbox, warehouse and output folder are exactly the paths given.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dagster as dg

from pipelines.partitions import SINGLE_REGION, check_region
from warehouse.connection import connect

DEFAULT_INBOX = "inbox"
DEFAULT_WAREHOUSE = "var/doudi.duckdb"
DEFAULT_OUT = "var/out"
REGIONAL_WAREHOUSE = "var/regions/{region}/doudi.duckdb"
REGIONAL_OUT = "var/regions/{region}/out"
DEFAULT_NATIONAL_WAREHOUSE = "var/national/warehouse.duckdb"
DEFAULT_NATIONAL_OUT = "var/national/out"
REGION_FIELD = "{region}"


class DoudiResource(dg.ConfigurableResource):
    inbox: str = DEFAULT_INBOX  # each path may hold {region}
    warehouse: str = DEFAULT_WAREHOUSE
    out: str = DEFAULT_OUT
    national_warehouse: str = DEFAULT_NATIONAL_WAREHOUSE
    national_out: str = DEFAULT_NATIONAL_OUT
    memory_limit: str | None = None  # e.g. "12GB": DuckDB spills to disk beyond it
    threads: int | None = None
    link_backend: str = "duckdb"  # where Splink scores: duckdb (in-process) or spark (pipelines/link/spark.py)
    # Drops against last quarter's delivery the operator accepted for this run, as
    # SOURCE:COUNTY (or SOURCE:<file stem>, SOURCE:*): checks/ingest.py
    accept_drops: list[str] = []

    # ---- paths of one region -------------------------------------------------------------
    @property
    def split_by_region(self) -> bool:
        """Whether the inbox holds one folder per region (`{region}` in DOUDI_INBOX)."""
        return REGION_FIELD in self.inbox

    def _per_region(self, template: str, region: str, setting: str) -> Path:
        check_region(region)
        if self.split_by_region and REGION_FIELD not in template:
            raise ValueError(
                f"收件箱按地区划分（{self.inbox}），但 {setting}（{template}）不含 {{region}}：各地区不能共用同一个{setting}"
            )
        return Path(template.replace(REGION_FIELD, region))

    def inbox_dir(self, region: str) -> Path:
        return Path(self.inbox.replace(REGION_FIELD, check_region(region)))

    def quarter_dir(self, region: str, quarter) -> Path:
        return self.inbox_dir(region) / str(quarter)

    def warehouse_path(self, region: str) -> Path:
        return self._per_region(self.warehouse, region, "DOUDI_WAREHOUSE")

    def out_dir(self, region: str) -> Path:
        return self._per_region(self.out, region, "DOUDI_OUT")

    @contextlib.contextmanager
    def connect(self, region: str, read_only: bool = False):
        with connect(self.warehouse_path(region), read_only=read_only, memory_limit=self.memory_limit, threads=self.threads) as con:
            yield con

    # ---- the regions an inbox holds -----------------------------------------------------------
    def regions_in_inbox(self) -> tuple[list[str], list[str]]:
        """(regions, problems): the sub-folders of the inbox root that are regions, and what
        was skipped and why. Without `{region}` in the inbox, the one region `all`."""
        if not self.split_by_region:
            return [SINGLE_REGION], []
        parts = Path(self.inbox).parts
        at = [i for i, part in enumerate(parts) if REGION_FIELD in part]
        if len(at) != 1 or parts[at[0]] != REGION_FIELD:
            return [], [f"DOUDI_INBOX（{self.inbox}）中 {{region}} 必须单独成为一级目录，且只出现一次"]
        root, rest = Path(*parts[: at[0]]) if at[0] else Path("."), parts[at[0] + 1:]
        if not root.is_dir():
            return [], [f"收件箱根目录 {root} 不存在"]
        found, problems = [], []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                check_region(folder.name)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if folder.joinpath(*rest).is_dir():
                found.append(folder.name)
        return found, problems


def resource_from_environment() -> DoudiResource:
    inbox = os.environ.get("DOUDI_INBOX", DEFAULT_INBOX)
    split = REGION_FIELD in inbox
    return DoudiResource(
        inbox=inbox,
        warehouse=os.environ.get("DOUDI_WAREHOUSE") or (REGIONAL_WAREHOUSE if split else DEFAULT_WAREHOUSE),
        out=os.environ.get("DOUDI_OUT") or (REGIONAL_OUT if split else DEFAULT_OUT),
        national_warehouse=os.environ.get("DOUDI_NATIONAL_WAREHOUSE", DEFAULT_NATIONAL_WAREHOUSE),
        national_out=os.environ.get("DOUDI_NATIONAL_OUT", DEFAULT_NATIONAL_OUT),
        memory_limit=os.environ.get("DOUDI_MEMORY_LIMIT") or None,
        link_backend=os.environ.get("DOUDI_LINK_BACKEND", "duckdb"),
    )
