"""One workbook per township for the caseworkers: OUT/<Q>/lists/<区县代码>/<乡镇>.xlsx.

Sheets 疑似不符合条件 (ineligibility) and 救助需求预警 (needs), plus 数据质量问题 when
the township has any; households in priority order; Chinese headers; frozen header row,
filters, fitted widths; the empty 核查结果 column offers 属实 / 不属实 / 已处理. A workbook
holds only its own township's rows. The folder is written aside and swapped in whole.
Returned to the inbox's verifications/ folder, a workbook is read back by its 预警编号,
季度, 核查结果 and 核查说明 columns, whatever else caseworkers did to it.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import multiprocessing
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import NamedTuple

import duckdb
import polars as pl

from pipelines.exports.evidence import render

SHEETS = [
    ("ineligibility", "疑似不符合条件"),
    ("need", "救助需求预警"),
    ("data_quality", "数据质量问题"),
]
SEVERITY_WORDS = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
STATUS_WORDS = {"new": "新增", "persisting": "持续", "resolved_by_verification": "已核实不属实"}
VERIFICATION_CHOICES = ["属实", "不属实", "已处理"]
COLUMNS = [
    ("priority", "优先序号", 8),
    ("quarter", "季度", 8),
    ("county_code", "区县代码", 9),
    ("township", "乡镇（街道）", 12),
    ("village", "村（社区）", 12),
    ("household_id", "户编号", 16),
    ("name", "姓名", 10),
    ("id_number", "身份证号", 20),
    ("rule", "预警类型", 22),
    ("severity_word", "预警等级", 8),
    ("status_word", "预警状态", 8),
    ("first_seen_quarter", "首次发现", 9),
    ("evidence_text", "预警依据", 60),
    ("action", "处理建议", 44),
    ("due_date", "办理期限", 11),
    ("policy_ref", "政策依据", 28),
    ("warning_id", "预警编号", 19),
    ("verification_result", "核查结果", 10),
    ("verification_note", "核查说明", 30),
]
SEVERITY_COLOURS = {"red": "#F8CBAD", "orange": "#FCE4D6", "yellow": "#FFF2CC"}


def safe_file_name(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "_", text or "未知乡镇").strip("_") or "未知乡镇"


def list_rows(con: duckdb.DuckDBPyConnection, quarter: str) -> pl.DataFrame:
    rows = con.execute(
        """
        SELECT c.priority, w.quarter, w.county_code, w.township, w.village, w.household_id, w.name, w.id_number,
               w.rule_code, w.rule_title, w.rule_kind, w.severity, w.status, w.first_seen_quarter,
               w.evidence::VARCHAR AS evidence, w.action, w.due_date, w.policy_ref, w.warning_id,
               CASE w.severity WHEN 'red' THEN 1 WHEN 'orange' THEN 2 ELSE 3 END AS severity_rank
        FROM marts.warnings AS w
        LEFT JOIN marts.household_cases AS c ON c.quarter = w.quarter AND c.household_id = w.household_id
        WHERE w.quarter = ? AND w.status IN ('new', 'persisting')
        ORDER BY c.priority NULLS LAST, severity_rank, w.due_date, w.rule_code, w.member_id
        """,
        [quarter],
    ).pl()
    if rows.height == 0:
        return rows
    return rows.with_columns(
        pl.struct("rule_code", "evidence").map_elements(lambda r: render(r["rule_code"], r["evidence"]), return_dtype=pl.Utf8).alias("evidence_text"),
        pl.concat_str([pl.col("rule_code"), pl.lit(" "), pl.col("rule_title")]).alias("rule"),
        pl.col("severity").replace_strict(SEVERITY_WORDS, default=None).alias("severity_word"),
        pl.col("status").replace_strict(STATUS_WORDS, default=None).alias("status_word"),
        pl.lit(None, dtype=pl.Utf8).alias("verification_result"),
        pl.lit(None, dtype=pl.Utf8).alias("verification_note"),
    )


def write_workbook(path: Path, rows: pl.DataFrame, quarter: str) -> dict[str, int]:
    import xlsxwriter

    # constant_memory: rows go to disk as they are written (inline strings, no shared
    # string table); a province's township list can hold tens of thousands of rows.
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    header = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "vcenter"})
    wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
    date = workbook.add_format({"num_format": "yyyy-mm-dd", "valign": "top"})
    fills = {k: workbook.add_format({"bg_color": v, "valign": "top"}) for k, v in SEVERITY_COLOURS.items()}
    counts = {}
    for kind, title in SHEETS:
        part = rows.filter(pl.col("rule_kind") == kind)
        if kind == "data_quality" and part.height == 0:
            continue
        sheet = workbook.add_worksheet(title)
        for col, (_, label, width) in enumerate(COLUMNS):
            sheet.write_string(0, col, label, header)
            sheet.set_column(col, col, width, wrap if width >= 28 else None)
        for r, record in enumerate(part.iter_rows(named=True), start=1):
            for col, (field, _, _) in enumerate(COLUMNS):
                value = record.get(field)
                if field == "severity_word":
                    sheet.write_string(r, col, value or "", fills.get(record["severity"]))
                elif isinstance(value, dt.date):
                    sheet.write_datetime(r, col, dt.datetime(value.year, value.month, value.day), date)
                elif value is None:
                    continue  # an empty cell
                elif isinstance(value, (int, float)) and field == "priority":
                    sheet.write_number(r, col, value)
                else:
                    sheet.write_string(r, col, str(value), wrap if field in {"evidence_text", "action", "policy_ref"} else None)
        last = max(part.height, 1)
        result_col = [c[0] for c in COLUMNS].index("verification_result")
        sheet.data_validation(
            1, result_col, max(last, 1000), result_col,
            {"validate": "list", "source": VERIFICATION_CHOICES, "input_title": "核查结果", "input_message": "请选择：属实 / 不属实 / 已处理"},
        )
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, last, len(COLUMNS) - 1)
        sheet.set_row(0, 30)
        counts[title] = part.height
    workbook.set_properties({"title": f"{quarter} 低收入人口动态监测预警核查清单", "comments": "由 doudi 生成"})
    workbook.close()
    return counts


def export_lists(con: duckdb.DuckDBPyConnection, quarter: str, out_dir: Path) -> list[dict]:
    """Write every township's workbook; return one record per file (for the export log)."""
    rows = list_rows(con, quarter)
    target = out_dir / quarter / "lists"
    staging = out_dir / quarter / f".lists-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        if rows.height:
            books = []
            for (county, township), part in rows.group_by(["county_code", "township"], maintain_order=True):
                folder = staging / safe_file_name(county or "未知区县")
                folder.mkdir(parents=True, exist_ok=True)
                books.append(Workbook(county, township, folder / f"{safe_file_name(township)}.xlsx", part))
            for book, counts in zip(books, _write_all(books, quarter)):
                written.append({"county_code": book.county, "township": book.township, "file": str(book.path.relative_to(staging)),
                                "rows": book.rows.height, "households": book.rows["household_id"].n_unique(), "sheets": counts})
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return written


PARALLEL_ROWS = 50_000  # below this, starting worker processes costs more than it saves


class Workbook(NamedTuple):
    county: str | None
    township: str
    path: Path
    rows: pl.DataFrame


def _write_all(books: list[Workbook], quarter: str) -> list[dict[str, int]]:
    """Write the workbooks (sheet counts in the order given), in worker processes when the
    lists are large: xlsxwriter is pure Python, one core per process (a province's lists are
    about a million rows). Workers are spawned, not forked: the parent holds DuckDB's and
    Dagster's threads."""
    workers = min(os.cpu_count() or 1, len(books))
    if workers < 2 or sum(book.rows.height for book in books) < PARALLEL_ROWS:
        return [write_workbook(book.path, book.rows, quarter) for book in books]
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # the largest workbooks first, so that no worker is left with a big one at the end
        largest_first = sorted(range(len(books)), key=lambda i: -books[i].rows.height)
        futures = {i: pool.submit(write_workbook, books[i].path, books[i].rows, quarter) for i in largest_first}
        return [futures[i].result() for i in range(len(books))]
