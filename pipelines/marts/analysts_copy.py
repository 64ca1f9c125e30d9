"""The analysts' published copy: a read-only DuckDB file beside the warehouse that a run
never has to wait for (`<folder>/<stem>-published.duckdb`, `published_copy_path`).

An analyst with a connection open on the warehouse itself would stop the quarterly run
(DuckDB lets one process write a file, and no other process have it open meanwhile). So
after each quarter is published, and its lists and report are written, the run's last
step writes what analysts read to a new file in the run's work folder (`<warehouse>.work/`,
on the same file system) and swaps it into place with `os.replace`: an analyst with the
old copy open goes on reading the old version (the old file lives on until they close it),
the next connection opens the new one, and no reader ever stands in the run's way.
Encrypted with the warehouse's key when the warehouse is encrypted; mode 0600.

What goes in (the least personal data that answers the analysts' questions,
docs/analysts.md):

- `marts`: `warnings_masked`, `quarterly_comparison`, `verification_results`,
  `household_cases` without `head_name`, and the analysts' views. Not `marts.warnings`:
  it carries full names and ID numbers for the township lists, and `warnings_masked` is
  the same warnings without them.
- `audit`: every table but `audit.settings` (the secret behind the pseudonymous
  `person_key`: with it, anyone holding an ID number could find that person's rows).
  These are counts, codes, file names and outcomes: what explains a quarter.
- `linked.matches` without `record_key` and `member_id` (how each extract was linked:
  source, method, probability, how ID and name agreed), and `quarantine.<source>` without
  `raw_record` (why rows were set aside, never the rows).
- Not `staging` (every delivered record, with names and ID numbers), the rest of `linked`
  (member ids, names as written), `rules.findings` (evidence with ID numbers): they stay
  in the warehouse, for the few who must read them while no run is writing it.
"""


import datetime as dt
import os
import uuid
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.marts.assets import MART_KEYS
from pipelines.partitions import partition_of, quarter_region
from pipelines.resources import DoudiResource
from warehouse.connection import CATALOG, _sql_literal, published_copy_path, warehouse_key
from warehouse.workdir import work_dir

ANALYSTS_COPY_KEY = dg.AssetKey(["marts", "analysts_copy"])
EXPORT_KEYS = [dg.AssetKey(["exports", "township_lists"]), dg.AssetKey(["exports", "report"])]
ALIAS = "__analysts_copy"

# schema.table -> the columns left out of the copy (None: the table is not copied at all).
MART_TABLES = {
    "warnings_masked": (),
    "quarterly_comparison": (),
    "verification_results": (),
    "household_cases": ("head_name",),
    "warnings": None,  # names and ID numbers: the township lists' source, not the analysts'
}
WITHHELD_AUDIT = {"settings"}  # the person_key secret
LINKED_TABLES = {"matches": ("record_key", "member_id")}
QUARANTINE_WITHHELD_COLUMNS = ("raw_record",)
SCHEMAS_WITHHELD = ("staging", "rules")


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? ORDER BY table_name",
        [CATALOG, schema],
    ).fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ? "
        "ORDER BY column_index", [CATALOG, schema, table],
    ).fetchall()]


def copy_plan(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str]]]:
    """(schema, table, columns) of everything the copy holds, from the warehouse as it is.

    A marts table this module does not know is refused (ValueError): a new mart must be
    classified in MART_TABLES before it can reach the analysts."""
    plan = []
    for table in _tables(con, "marts"):
        if table not in MART_TABLES:
            raise ValueError(f"marts.{table} is not classified for the analysts' copy (pipelines/marts/analysts_copy.py MART_TABLES)")
        if MART_TABLES[table] is not None:
            plan.append(("marts", table, [c for c in _columns(con, "marts", table) if c not in MART_TABLES[table]]))
    for table in _tables(con, "audit"):
        if table not in WITHHELD_AUDIT:
            plan.append(("audit", table, _columns(con, "audit", table)))
    for table, withheld in LINKED_TABLES.items():
        plan.append(("linked", table, [c for c in _columns(con, "linked", table) if c not in withheld]))
    for table in _tables(con, "quarantine"):
        plan.append(("quarantine", table, [c for c in _columns(con, "quarantine", table) if c not in QUARANTINE_WITHHELD_COLUMNS]))
    return plan


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def write_analysts_copy(con: duckdb.DuckDBPyConnection, warehouse: Path, run_id: str | None = None) -> tuple[Path, dict[str, int]]:
    """Write the copy from the warehouse `con` holds open for writing, and swap it into
    place. Returns its path and the rows per table copied. `run_id`: the run writing it,
    recorded as published in the copy's `audit.runs` (the run ends right after)."""
    warehouse = Path(warehouse)
    target = published_copy_path(warehouse.resolve())
    staging = work_dir(warehouse) / f"published-{uuid.uuid4().hex[:8]}.duckdb"
    key = warehouse_key()  # the warehouse's connection already loaded the extension encryption needs
    options = f" (ENCRYPTION_KEY {_sql_literal(key)})" if key else ""
    counts: dict[str, int] = {}
    con.execute(f"ATTACH {_sql_literal(str(staging))} AS {ALIAS}{options}")
    try:
        for schema, table, columns in copy_plan(con):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{schema}")
            select = ", ".join(_quoted(c) for c in columns)
            con.execute(f"CREATE TABLE {ALIAS}.{schema}.{_quoted(table)} AS SELECT {select} FROM {CATALOG}.{schema}.{_quoted(table)}")
            counts[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM {ALIAS}.{schema}.{_quoted(table)}").fetchone()[0]
        if run_id and "audit.runs" in counts:
            con.execute(f"UPDATE {ALIAS}.audit.runs SET outcome = 'published', finished_at = ? WHERE run_id = ?",
                        [dt.datetime.now(), run_id])
        views = con.execute(
            "SELECT sql FROM duckdb_views() WHERE database_name = ? AND schema_name = 'marts' AND NOT internal ORDER BY view_name",
            [CATALOG],
        ).fetchall()
        con.execute(f"USE {ALIAS}")  # the views' `marts.…` then name the copy's own tables
        try:
            for (sql,) in views:
                con.execute(sql)
        finally:
            con.execute(f"USE {CATALOG}")
        con.execute(f"DETACH {ALIAS}")  # checkpoints: the file is whole, without a WAL
    except BaseException:
        try:
            con.execute(f"USE {CATALOG}")
            con.execute(f"DETACH DATABASE IF EXISTS {ALIAS}")
        finally:
            for leftover in (staging, staging.with_name(staging.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise
    staging.with_name(staging.name + ".wal").unlink(missing_ok=True)
    os.chmod(staging, 0o600)
    os.replace(staging, target)
    return target, counts


@dg.asset(
    key=ANALYSTS_COPY_KEY,
    deps=[*MART_KEYS.values(), *EXPORT_KEYS],
    partitions_def=quarter_region,
    group_name="marts",
    kinds={"duckdb"},
    description="分析人员用的发布副本（<数据仓库>-published.duckdb）：每次发布成功、清单和报告写完后整体替换；"
    "只含脱敏预警、对比、核查结果、审计表和比对方式，不含姓名和身份证号；分析人员只读打开它，不会妨碍季度运行",
)
def analysts_copy(context: dg.AssetExecutionContext, doudi: DoudiResource) -> dg.MaterializeResult:
    quarter, region = partition_of(context)
    with doudi.connect(region) as con:
        path, counts = write_analysts_copy(con, doudi.warehouse_path(region), context.run_id)
    return dg.MaterializeResult(metadata={
        "path": str(path), "tables": len(counts), "warnings_masked": counts.get("marts.warnings_masked", 0),
        "encrypted": warehouse_key() is not None,
    })
