"""Helpers for tests: a synthetic inbox, and warehouses built by hand (rule cases, history models)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb

from sources.registry import source

def synthetic_inbox(tmp_path_factory, name: str, quarters: str, households: int, seed: int, **config) -> Path:
    """A generated inbox (with truth/ beside the quarters) in a fresh temporary folder:
    `<tmp>/<name>N/inbox`; the folder around it is free for warehouses and outputs."""
    from pipelines.quarters import quarter_range
    from pipelines.synth.generate import generate

    inbox = tmp_path_factory.mktemp(name) / "inbox"
    generate(inbox, quarter_range(quarters), households=households, seed=seed, **config)
    return inbox


DEFAULTS = {"quarter": None, "source_file": "test.csv", "source_row": 1, "run_id": "test"}


def insert_staging(con: duckdb.DuckDBPyConnection, source_name: str, rows: list[dict]) -> None:
    """Insert rows into staging.<source>; columns not given are NULL (flags 'ok' where a
    value is given, so the rows look like cleanly read ones)."""
    spec = source(source_name)
    columns = [name for name, _ in spec.staged_columns()]
    for i, row in enumerate(rows, start=1):
        values = []
        for name in columns:
            if name in row:
                value = row[name]
            elif name == "source_row":
                value = i
            elif name in DEFAULTS:
                value = DEFAULTS[name]
            elif name.endswith("_flag"):
                base = name[: -len("_flag")]
                value = "ok" if row.get(base) is not None else "missing"
            elif name.endswith("_valid"):
                value = row.get(name[: -len("_valid")]) is not None
            else:
                value = None
            if isinstance(value, float):
                value = Decimal(str(value))
            values.append(value)
        placeholders = ", ".join("?" for _ in columns)
        con.execute(f"INSERT INTO {spec.staging_table} VALUES ({placeholders})", values)


def date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)
