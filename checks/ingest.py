"""Checks of one source's delivery for one quarter, computed in DuckDB.

Blocking (the quarter stops, nothing is published):
  - every row read was loaded or quarantined, and staging holds what the log says
  - a required source delivered at least one row
  - the key is unique among the loaded rows (exact duplicates were already quarantined;
    what is left are two different records claiming one key)
  - at most half of the rows were quarantined (else the file is not what it claims)
Warning (recorded with counts):
  - how many values needed repair or could not be read, per column
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb

from sources.registry import SourceSpec

MAX_QUARANTINED_SHARE = 0.5


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict = field(default_factory=dict)


def delivery_accepted(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: str, run_id: str) -> CheckOutcome:
    log = con.execute(
        """SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0),
                  count(*) FILTER (WHERE outcome NOT IN ('ignored'))
           FROM audit.ingest_log WHERE run_id = ? AND quarter = ? AND source = ?""",
        [run_id, quarter, spec.source],
    ).fetchone()
    read, loaded, quarantined, files = (int(v) for v in log)
    staged = con.execute(f"SELECT count(*) FROM {spec.staging_table} WHERE quarter = ?", [quarter]).fetchone()[0]
    key = ", ".join(f'"{k}"' for k in spec.key)
    duplicate_keys = con.execute(
        f"SELECT count(*) FROM (SELECT {key} FROM {spec.staging_table} WHERE quarter = ? GROUP BY ALL HAVING count(*) > 1)",
        [quarter],
    ).fetchone()[0]
    problems = []
    if read != loaded + quarantined:
        problems.append(f"读取{read}行，入库{loaded}行加隔离{quarantined}行不相等")
    if staged != loaded:
        problems.append(f"日志记录入库{loaded}行，但 staging 中有{staged}行")
    if spec.required_folder and files and loaded == 0:
        problems.append("没有任何可入库的数据行（空数据源）")
    if duplicate_keys:
        problems.append(f"{duplicate_keys}个主键（{'、'.join(spec.column(k).headers[0] for k in spec.key)}）对应多条不同记录")
    if read and quarantined / read > MAX_QUARANTINED_SHARE:
        problems.append(f"{quarantined}/{read} 行被隔离，超过一半，文件可能不是所声称的数据")
    passed = not problems
    description = "数据可用" if passed else "；".join(problems)
    return CheckOutcome(
        "delivery_accepted",
        passed,
        True,
        description,
        {"rows_read": read, "rows_loaded": loaded, "rows_quarantined": quarantined, "files": files,
         "duplicate_keys": int(duplicate_keys), "staged_rows": int(staged)},
    )


def value_quality(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: str, run_id: str) -> CheckOutcome:
    """Counts of each cleaning flag per column; fails (as a warning) when more than 5% of
    a column's values could not be read."""
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
    unreadable = {"unparseable", "out_of_range", "invalid_format", "unknown_value", "bad_checksum", "bad_birth_date", "excel_rounded", "negative"}
    worst = {col: sum(n for f, n in flags.items() if f in unreadable) / total for col, flags in counts.items()} if total else {}
    bad = {col: round(share, 4) for col, share in worst.items() if share > 0.05}
    description = "各列取值可读" if not bad else "可读性较差的列：" + "、".join(f"{c}（{s:.1%}）" for c, s in bad.items())
    return CheckOutcome("value_quality", not bad, False, description, {"rows": int(total), "flags": counts})


def record(con: duckdb.DuckDBPyConnection, outcome: CheckOutcome, quarter: str, asset: str, run_id: str) -> None:
    con.execute(
        "INSERT INTO audit.check_results VALUES (?,?,?,?,?,?,?,?,?)",
        [run_id, quarter, asset, outcome.name, outcome.passed, outcome.blocking, outcome.description,
         json.dumps(outcome.metadata, ensure_ascii=False), dt.datetime.now()],
    )
