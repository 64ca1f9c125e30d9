"""Checks of one source's delivery for one quarter.

Blocking (the quarter stops, nothing is published):
  - every row read was loaded or quarantined, and staging holds what the log says (DuckDB)
  - at most half of the rows were quarantined, else the file is not what it claims (DuckDB)
  - the source's blocking Great Expectations: not empty, the key unique and never null
    (exact duplicates were quarantined already; what is left are two different records
    claiming one key)
Warning (recorded with counts):
  - the source's warning expectations (IDs usable, dates in range, amounts plausible)
  - how many values of each column needed repair or could not be read
A missing required column never reaches these checks: the reader refuses the file.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb

from checks.gx_suites import describe_failures, validate_source
from pipelines.quarters import Quarter
from sources.registry import SourceSpec

MAX_QUARANTINED_SHARE = 0.5
UNREADABLE_FLAGS = {"unparseable", "out_of_range", "invalid_format", "unknown_value", "bad_checksum", "bad_birth_date", "excel_rounded", "negative"}


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict = field(default_factory=dict)


def suite_parameters(quarter: str) -> dict:
    q = Quarter.parse(quarter)
    return {
        "q_start": q.start.isoformat(),
        "q_end": q.end.isoformat(),
        "previous_q_start": q.previous.start.isoformat(),
    }


def _accounting(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: str, run_id: str) -> tuple[list[str], dict]:
    read, loaded, quarantined, files = (
        int(v)
        for v in con.execute(
            """SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0),
                      count(*) FILTER (WHERE outcome NOT IN ('ignored'))
               FROM audit.ingest_log WHERE run_id = ? AND quarter = ? AND source = ?""",
            [run_id, quarter, spec.source],
        ).fetchone()
    )
    staged = con.execute(f"SELECT count(*) FROM {spec.staging_table} WHERE quarter = ?", [quarter]).fetchone()[0]
    problems = []
    if read != loaded + quarantined:
        problems.append(f"读取{read}行，入库{loaded}行加隔离{quarantined}行不相等")
    if staged != loaded:
        problems.append(f"日志记录入库{loaded}行，但 staging 中有{staged}行")
    if read and quarantined / read > MAX_QUARANTINED_SHARE:
        problems.append(f"{quarantined}/{read} 行被隔离，超过一半，文件可能不是所声称的数据")
    return problems, {"rows_read": read, "rows_loaded": loaded, "rows_quarantined": quarantined, "files": files}


def _duplicate_rows(con, spec: SourceSpec, quarter: str, limit: int = 5) -> str:
    """Where the conflicting duplicates are (file and row, never the key's value)."""
    key = ", ".join(f'"{k}"' for k in spec.key)
    rows = con.execute(
        f"""SELECT string_agg(source_file || ' 第' || source_row || '行', '、' ORDER BY source_file, source_row)
            FROM {spec.staging_table} WHERE quarter = ?
            GROUP BY {key} HAVING count(*) > 1 ORDER BY min(source_file), min(source_row) LIMIT {limit}""",
        [quarter],
    ).fetchall()
    return "；".join(r[0] for r in rows)


def delivery_accepted(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: str, run_id: str) -> CheckOutcome:
    problems, metadata = _accounting(con, spec, quarter, run_id)
    expectations = validate_source(con, spec.source, spec.staging_table, quarter, suite_parameters(quarter), blocking=True)
    if not spec.required_folder and metadata["files"] == 0:
        # An optional source that was not delivered: nothing to refuse.
        expectations = [o for o in expectations if o.declared.type != "expect_table_row_count_to_be_between"]
    failed = describe_failures(expectations)
    if any(not o.success and "unique" in o.declared.type for o in expectations):
        where = _duplicate_rows(con, spec, quarter)
        if where:
            failed.append(f"重复的{'、'.join(spec.column(k).headers[0] for k in spec.key)}出现在：{where}")
    problems += failed
    metadata["expectations"] = [o.as_metadata() for o in expectations]
    passed = not problems
    return CheckOutcome("delivery_accepted", passed, True, "数据可用" if passed else "；".join(problems), metadata)


def value_quality(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: str, run_id: str) -> CheckOutcome:
    """The warning expectations, and the count of each cleaning flag per column."""
    expectations = validate_source(con, spec.source, spec.staging_table, quarter, suite_parameters(quarter), blocking=False)
    flagged = [c for c in spec.columns if c.has_flag]
    counts: dict[str, dict[str, int]] = {}
    total = con.execute(f"SELECT count(*) FROM {spec.staging_table} WHERE quarter = ?", [quarter]).fetchone()[0]
    if flagged and total:
        selects = " UNION ALL ".join(
            f"SELECT '{c.name}' AS col, \"{c.name}_flag\" AS flag, count(*) AS n FROM {spec.staging_table} WHERE quarter = $q GROUP BY ALL"
            for c in flagged
        )
        for col, flag, n in con.execute(selects, {"q": quarter}).fetchall():
            counts.setdefault(col, {})[flag or "ok"] = int(n)
    failed = describe_failures(expectations)
    description = "各项期望均满足" if not failed else "；".join(failed)
    return CheckOutcome(
        "value_quality",
        not failed,
        False,
        description,
        {"rows": int(total), "expectations": [o.as_metadata() for o in expectations], "flags": counts},
    )


def record(con: duckdb.DuckDBPyConnection, outcome: CheckOutcome, quarter: str, asset: str, run_id: str) -> None:
    con.execute(
        "INSERT INTO audit.check_results VALUES (?,?,?,?,?,?,?,?,?)",
        [run_id, quarter, asset, outcome.name, outcome.passed, outcome.blocking, outcome.description,
         json.dumps(outcome.metadata, ensure_ascii=False, default=str), dt.datetime.now()],
    )
