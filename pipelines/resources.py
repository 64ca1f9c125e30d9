"""Where a run reads and writes: the inbox, the warehouse, the output folder.

One resource, configured per run (the CLI passes run config; the UI, the schedule and the
sensor take the environment: DOUDI_INBOX, DOUDI_WAREHOUSE, DOUDI_OUT).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dagster as dg

from warehouse.connection import connect

DEFAULT_INBOX = "inbox"
DEFAULT_WAREHOUSE = "var/doudi.duckdb"
DEFAULT_OUT = "var/out"


class DoudiResource(dg.ConfigurableResource):
    inbox: str = DEFAULT_INBOX
    warehouse: str = DEFAULT_WAREHOUSE
    out: str = DEFAULT_OUT
    memory_limit: str | None = None  # e.g. "12GB": DuckDB spills to disk beyond it
    threads: int | None = None
    link_backend: str = "duckdb"  # where Splink scores: duckdb (in-process) or spark (pipelines/link/spark.py)

    def quarter_dir(self, quarter: str) -> Path:
        return Path(self.inbox) / quarter

    def out_dir(self) -> Path:
        return Path(self.out)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False):
        with connect(self.warehouse, read_only=read_only, memory_limit=self.memory_limit, threads=self.threads) as con:
            yield con


def resource_from_environment() -> DoudiResource:
    return DoudiResource(
        inbox=os.environ.get("DOUDI_INBOX", DEFAULT_INBOX),
        warehouse=os.environ.get("DOUDI_WAREHOUSE", DEFAULT_WAREHOUSE),
        out=os.environ.get("DOUDI_OUT", DEFAULT_OUT),
        memory_limit=os.environ.get("DOUDI_MEMORY_LIMIT") or None,
        link_backend=os.environ.get("DOUDI_LINK_BACKEND", "duckdb"),
    )
