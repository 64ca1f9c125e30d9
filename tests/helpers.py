"""Helpers for tests: a synthetic inbox, and warehouses built by hand (rule cases, history models)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from sources.registry import source

# Tests that run Spark in local mode: skipped, saying why, where pyspark or Java is missing.
REQUIRES_SPARK = [
    pytest.mark.spark,
    pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pyspark is not installed"),
    pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed (.ci/run installs Debian's JRE)"),
]


def synthetic_inbox(tmp_path_factory, name: str, quarters: str, households: int, seed: int, **config) -> Path:
    """A generated inbox (with truth/ beside the quarters) in a fresh temporary folder:
    `<tmp>/<name>N/inbox`; the folder around it is free for warehouses and outputs."""
    from devtools.synth.generate import generate
    from pipelines.quarters import quarter_range

    inbox = tmp_path_factory.mktemp(name) / "inbox"
    generate(inbox, quarter_range(quarters), households=households, seed=seed, **config)
    return inbox


def synthetic_country(tmp_path_factory, name: str, quarters: str, households: int, seed: int, **config) -> Path:
    """A generated country of several provinces (devtools.synth.geography.COUNTRY_COUNTIES)
    in a fresh temporary folder: one inbox per province in `<tmp>/<name>N/regions/<province>/`,
    the truth in `regions/truth/`, and all provinces' files merged into one inbox in `inbox/`
    (the same deliveries, for a run of the whole country in one warehouse)."""
    from devtools.synth.generate import RegionSplit, generate, merge_region_inboxes
    from devtools.synth.geography import COUNTRY_COUNTIES
    from pipelines.quarters import quarter_range

    root = tmp_path_factory.mktemp(name)
    generate(root / "regions", quarter_range(quarters), households=households, seed=seed, regions=RegionSplit(),
             counties=COUNTRY_COUNTIES, **config)
    merge_region_inboxes(root / "regions", root / "inbox")
    return root


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


class HtmlTables(HTMLParser):
    """An HTML page read back for assertions (the report, the whatif page): every table as
    rows of cell texts, the text of every <li> of a <ul class="checks">, and of every SVG <text>."""

    def __init__(self):
        super().__init__()
        self.tables, self.items, self.svg_text = [], [], []
        self._cell = self._li = self._text = None
        self._list = ""

    def handle_starttag(self, tag, attrs):
        if tag == "ul":
            self._list = dict(attrs).get("class") or ""
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li" and self._list == "checks":
            self._li = []
        elif tag == "text":
            self._text = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "li" and self._li is not None:
            self.items.append("".join(self._li))
            self._li = None
        elif tag == "text":
            self.svg_text.append("".join(self._text))
            self._text = None

    def handle_data(self, data):
        for part in (self._cell, self._li, self._text):
            if part is not None:
                part.append(data)

    def table(self, first_header: str, containing: str | None = None) -> list[list[str]]:
        """The first table whose header row starts with `first_header` (and has `containing`)."""
        return next(t for t in self.tables if t and t[0][0] == first_header and (containing is None or containing in t[0]))
