"""Checks of one source's delivery for one quarter.

Blocking (the quarter stops, nothing is published):
  - every row read was loaded or quarantined, and staging holds what the log says (DuckDB)
  - at most half of the rows were quarantined, else the file is not what it claims (DuckDB)
  - the source's blocking Great Expectations: not empty, the key unique and never null
    (exact duplicates were quarantined already; what is left are two different records
    claiming one key)
  - the delivery is not much smaller than last quarter's: per county for the rosters, in
    total for department extracts, and no file holds a header without rows, unless the
    operator accepted that drop (`--accept-drop SOURCE:COUNTY`, audit.accepted_drops); the
    shares are dated parameters in checks/parameters/delivery.yaml
Warning (recorded with counts):
  - the source's warning expectations (IDs usable, dates in range, amounts plausible)
  - how many values of each column needed repair or could not be read
A missing required column never reaches these checks: the reader refuses the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import duckdb

from checks.gx_suites import describe_failures, validate_source
from pipelines.policy.params import Parameters
from pipelines.quarters import Quarter
from sources.divisions import county_name
from sources.registry import SourceSpec, source
from warehouse.writes import insert_row

MAX_QUARANTINED_SHARE = 0.5
UNREADABLE_FLAGS = {"unparseable", "out_of_range", "invalid_format", "unknown_value", "bad_checksum", "bad_birth_date", "excel_rounded", "negative"}


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict = field(default_factory=dict)


def suite_parameters(quarter: Quarter) -> dict:
    return {
        "q_start": quarter.start.isoformat(),
        "q_end": quarter.end.isoformat(),
        "previous_q_start": quarter.previous.start.isoformat(),
    }


def _accounting(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: Quarter, run_id: str) -> tuple[list[str], dict]:
    read, loaded, quarantined, files = (
        int(v)
        for v in con.execute(
            """SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0),
                      count(*) FILTER (WHERE outcome NOT IN ('ignored'))
               FROM audit.ingest_log WHERE run_id = ? AND quarter = ? AND source = ?""",
            [run_id, str(quarter), spec.source],
        ).fetchone()
    )
    staged = _total(con, spec, quarter)
    problems = []
    if read != loaded + quarantined:
        problems.append(f"读取{read}行，入库{loaded}行加隔离{quarantined}行不相等")
    if staged != loaded:
        problems.append(f"日志记录入库{loaded}行，但 staging 中有{staged}行")
    if read and quarantined / read > MAX_QUARANTINED_SHARE:
        problems.append(f"{quarantined}/{read} 行被隔离，超过一半，文件可能不是所声称的数据")
    return problems, {"rows_read": read, "rows_loaded": loaded, "rows_quarantined": quarantined, "files": files}


def _duplicate_rows(con, spec: SourceSpec, quarter: Quarter, limit: int = 5) -> str:
    """Where the conflicting duplicates are (file and row, never the key's value)."""
    key = ", ".join(f'"{k}"' for k in spec.key)
    rows = con.execute(
        f"""SELECT string_agg(source_file || ' 第' || source_row || '行', '、' ORDER BY source_file, source_row)
            FROM {spec.staging_table} WHERE quarter = ?
            GROUP BY {key} HAVING count(*) > 1 ORDER BY min(source_file), min(source_row) LIMIT {limit}""",
        [str(quarter)],
    ).fetchall()
    return "；".join(r[0] for r in rows)


# ---- the delivery against last quarter's -----------------------------------------------

PARAMETER_DIR = Path(__file__).with_name("parameters")


@functools.cache
def delivery_parameters() -> Parameters:
    return Parameters.load(PARAMETER_DIR)


@dataclass(frozen=True)
class Drop:
    """A part of a delivery much smaller than last quarter's (or a file without rows)."""

    scope: str  # a county code, a file's stem, or "*" (the whole source)
    description: str  # in Chinese, with both counts
    rows_now: int
    rows_before: int | None


def _county_counts(con, spec: SourceSpec, quarter: Quarter) -> dict[str | None, int]:
    """Rows per county of the source's quarter: its own county column, or the county of
    the household its rows reference (members)."""
    if any(c.name == "county_code" for c in spec.columns):
        sql = f"SELECT county_code, count(*) FROM {spec.staging_table} WHERE quarter = ? GROUP BY ALL"
    else:
        via = next(r for r in spec.references if any(c.name == "county_code" for c in source(r.source).columns))
        target = source(via.source)
        sql = (
            f"SELECT t.county_code, count(*) FROM {spec.staging_table} AS s LEFT JOIN {target.staging_table} AS t "
            f'ON t."{target.key[0]}" = s."{via.column}" AND t.quarter = s.quarter WHERE s.quarter = ? GROUP BY ALL'
        )
    return {code: int(n) for code, n in con.execute(sql, [str(quarter)]).fetchall()}


def _total(con, spec: SourceSpec, quarter: Quarter) -> int:
    return int(con.execute(f"SELECT count(*) FROM {spec.staging_table} WHERE quarter = ?", [str(quarter)]).fetchone()[0])


def _file_scope(file: str) -> str:
    """How --accept-drop names an empty file: the county code its name starts with
    (`140502_低收入人口家庭.csv`), else its name without suffix."""
    stem = PurePosixPath(file).stem
    county = re.match(r"(\d{6})(?!\d)", stem)
    return county.group(1) if county else stem


def delivery_drops(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: Quarter, run_id: str) -> tuple[list[Drop], dict]:
    """What of this quarter's delivery is much smaller than the last quarter's, and the
    comparison as metadata. Nothing to compare in the first quarter a source is delivered."""
    if spec.drop_check == "none":
        return [], {}
    previous = quarter.previous
    drops = [
        Drop(_file_scope(file), f"文件 {file} 只有表头、没有数据行", 0, None)
        for (file,) in con.execute(
            "SELECT file FROM audit.ingest_log WHERE run_id = ? AND quarter = ? AND source = ? AND outcome = 'empty' ORDER BY file",
            [run_id, str(quarter), spec.source],
        ).fetchall()
    ]
    if _total(con, spec, previous) == 0:
        return drops, {"compared_with": None}
    parameters = delivery_parameters().at(quarter.end)
    if spec.drop_check == "county":
        limit = parameters["roster_max_drop_share"]
        now, before = _county_counts(con, spec, quarter), _county_counts(con, spec, previous)
        for county, rows_before in sorted(before.items(), key=lambda kv: str(kv[0])):
            rows_now = now.get(county, 0)
            if rows_before and (rows_before - rows_now) / rows_before > limit:
                name = county_name(county) if county else "未知区县"
                drops.append(Drop(
                    county or "未知区县",
                    f"区县 {county or '（未知）'}（{name}）本季度 {rows_now} 行，上季度 {rows_before} 行，"
                    f"减少 {(rows_before - rows_now) / rows_before:.0%}，超过允许的 {limit:.0%}",
                    rows_now, rows_before,
                ))
    else:
        limit = parameters["extract_max_drop_share"]
        rows_now, rows_before = _total(con, spec, quarter), _total(con, spec, previous)
        if rows_before and (rows_before - rows_now) / rows_before > limit:
            drops.append(Drop(
                "*", f"本季度共 {rows_now} 行，上季度 {rows_before} 行，减少 {(rows_before - rows_now) / rows_before:.0%}，"
                f"超过允许的 {limit:.0%}", rows_now, rows_before,
            ))
    return drops, {"compared_with": str(previous), "max_drop_share": limit}


def drop_accepted(drop: Drop, source_name: str, accepted: set[str]) -> bool:
    """`SOURCE:*` accepts every drop of the source; `SOURCE:X` the county X, or the empty
    file named by X (its county code, or its name without suffix)."""
    return f"{source_name}:*" in accepted or f"{source_name}:{drop.scope}" in accepted


def _drop_problems(con, spec: SourceSpec, quarter: Quarter, run_id: str, accepted: set[str]) -> tuple[list[str], dict]:
    drops, metadata = delivery_drops(con, spec, quarter, run_id)
    problems, taken = [], []
    now = dt.datetime.now()
    for drop in drops:
        if drop_accepted(drop, spec.source, accepted):
            taken.append(drop.description)
            insert_row(con, "audit.accepted_drops", run_id=run_id, quarter=str(quarter), source=spec.source, scope=drop.scope,
                       description=drop.description, rows_now=drop.rows_now, rows_before=drop.rows_before, accepted_at=now)
        else:
            problems.append(
                f"{drop.description}（比上季度少得多，可能交付不完整；请重新交付，"
                f"或确认无误后用 --accept-drop {spec.source}:{drop.scope} 接受）"
            )
    if taken:
        metadata["accepted_drops"] = taken
    return problems, metadata


def delivery_accepted(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: Quarter, run_id: str, accepted_drops: set[str] = frozenset()
) -> CheckOutcome:
    problems, metadata = _accounting(con, spec, quarter, run_id)
    drop_problems, metadata["last_quarter"] = _drop_problems(con, spec, quarter, run_id, set(accepted_drops))
    problems += drop_problems
    expectations = validate_source(con, spec.source, spec.staging_table, str(quarter), suite_parameters(quarter), blocking=True)
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


def value_quality(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: Quarter, run_id: str) -> CheckOutcome:
    """The warning expectations, and the count of each cleaning flag per column."""
    expectations = validate_source(con, spec.source, spec.staging_table, str(quarter), suite_parameters(quarter), blocking=False)
    flagged = [c for c in spec.columns if c.has_flag]
    counts: dict[str, dict[str, int]] = {}
    total = _total(con, spec, quarter)
    if flagged and total:
        # Ordered (columns as the spec lists them, then flags) so that the metadata is the
        # same text on every run of the same data.
        selects = " UNION ALL ".join(
            f"SELECT {i} AS position, '{c.name}' AS col, \"{c.name}_flag\" AS flag, count(*) AS n "
            f"FROM {spec.staging_table} WHERE quarter = $q GROUP BY ALL"
            for i, c in enumerate(flagged)
        )
        for _, col, flag, n in con.execute(f"{selects} ORDER BY position, flag NULLS FIRST", {"q": str(quarter)}).fetchall():
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


def record(con: duckdb.DuckDBPyConnection, outcome: CheckOutcome, quarter: Quarter, asset: str, run_id: str) -> None:
    insert_row(
        con, "audit.check_results", run_id=run_id, quarter=str(quarter), asset=asset, check_name=outcome.name,
        passed=outcome.passed, blocking=outcome.blocking, description=outcome.description,
        metadata=json.dumps(outcome.metadata, ensure_ascii=False, default=str), checked_at=dt.datetime.now(),
    )
