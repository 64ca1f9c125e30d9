"""One workbook per township for the caseworkers: OUT/<Q>/lists/<区县代码>/<代码>_<乡镇>.xlsx.

Sheets 疑似不符合条件 (ineligibility) and 救助需求预警 (needs), plus 数据质量问题 when
the township has any; households in priority order, numbered 序号 1..n on each sheet (the
province-wide rank stays in 全省优先序号); Chinese headers; the empty 核查结果 column offers
属实 / 不属实 / 已处理. 是否逾期 says 已逾期 when the warning's 办理期限 is on or before the
last day of the list's quarter (`overdue`: the report's 已到期, due_date <= Q.end).
序号, 姓名 and 身份证号 come first and stay in view with the header row (frozen panes);
filters; the wrapped 预警依据, 处理建议 and 政策依据 get row heights estimated from their
text (`row_lines`), because LibreOffice and WPS do not re-fit the rows of a generated file.
Printed: landscape A4, all columns one page wide, the header row on every page, township,
quarter and page number in the footer. An empty sheet says 本季度无此类预警 in a text box
over its first data row, not in a cell, so that a returned workbook reads as no rows.
A workbook holds only its own township's rows. The folder is written aside and swapped in
whole. File names (`workbook_paths`) are planned before anything is written and cannot fail
or collide: a township code (the roster's, when the warnings carry a `township_code`, else a
hex digest of county code and township, the same every quarter) and the township's name
made safe and shortened to NAME_BYTES of UTF-8. Returned to the inbox's verifications/
folder, a workbook is read back by its 预警编号, 季度, 核查结果 and 核查说明 columns (by
header, in any order), whatever else caseworkers did to it or its name; the column order is
the project's own.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import hashlib
import math
import multiprocessing
import operator
import os
import re
import shutil
import unicodedata
import uuid
from pathlib import Path
from typing import NamedTuple

import duckdb
import polars as pl

from pipelines.exports.evidence import render
from pipelines.quarters import Quarter

SHEETS = [
    ("ineligibility", "疑似不符合条件"),
    ("need", "救助需求预警"),
    ("data_quality", "数据质量问题"),
]
SEVERITY_WORDS = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
STATUS_WORDS = {"new": "新增", "persisting": "持续", "resolved_by_verification": "已核实不属实"}
VERIFICATION_CHOICES = ["属实", "不属实", "已处理"]
OVERDUE = "已逾期"
EMPTY_SHEET_NOTE = "本季度无此类预警"
LIST_TITLE = "低收入人口动态监测预警核查清单"
# (field, header, width in Excel's units: the digit width of Calibri 11, 7 px). Who and which
# household first (kept in view), then what to check and by when, the caseworker's answer,
# and the keys that stay the same on every row of the workbook last. All of them fit one
# landscape A4 page wide, printed at about 60 %.
COLUMNS = [
    ("seq", "序号", 5),
    ("name", "姓名", 7),
    ("id_number", "身份证号", 18.5),
    ("household_id", "户编号", 14.5),
    ("village", "村（社区）", 10.5),
    ("rule", "预警类型", 12),
    ("severity_word", "预警等级", 5.5),
    ("overdue", "是否逾期", 6.5),
    ("due_date", "办理期限", 10.5),
    ("evidence_text", "预警依据", 36),
    ("action", "处理建议", 22),
    ("policy_ref", "政策依据", 14),
    ("verification_result", "核查结果", 7),
    ("verification_note", "核查说明", 14),
    ("status_word", "预警状态", 5.5),
    ("first_seen_quarter", "首次发现", 7),
    ("priority", "全省优先序号", 7.5),
    ("warning_id", "预警编号", 17.5),
    ("quarter", "季度", 7),
    ("county_code", "区县代码", 7),
    ("township", "乡镇（街道）", 7),
]
WRAPPED = {"village", "rule", "evidence_text", "action", "policy_ref", "verification_note", "township"}
NUMBERS = {"seq", "priority"}
FROZEN_COLUMNS = 3  # 序号, 姓名, 身份证号
SEVERITY_COLOURS = {"red": "#F8CBAD", "orange": "#FCE4D6", "yellow": "#FFF2CC"}

# Row heights. Excel stores a height per row, and LibreOffice and WPS show a generated file's
# rows at that height (they do not re-fit wrapped text), so it is estimated here: the lines
# each wrapped cell needs, times the line height. A CJK character at 11 pt is 14.7 px, 2.1 of
# Excel's 7 px width units; an ASCII character at most one. A line holds as many whole CJK
# characters as the column's width (less the cell's padding) allows. A line is 16 pt in
# LibreOffice with Noto Sans CJK (15 in Excel), plus padding; Excel's limit is 409 pt.
CJK_UNITS = 2.1
CELL_PADDING_UNITS = 0.2
WRAP_SLACK = 1.02
# Printable ASCII stays, everything else (the bytes of CJK characters, spaces) becomes a
# space: what is left between spaces are the words kept whole on a line (amounts, codes, IDs).
ASCII_WORDS = bytes(b if 0x21 <= b <= 0x7E else 0x20 for b in range(256))
LINE_PT = 16.0
ROW_PADDING_PT = 4.0
MIN_ROW_PT = 20.0
MAX_ROW_PT = 409.0


# File names. The lists folder is written as OUT/<Q>/.lists-<hex> (mode 0700, files 0600) and
# renamed to OUT/<Q>/lists when every workbook is written; the lists it replaces are first
# renamed to OUT/<Q>/.lists-old-<hex> and then removed. A folder of the quarter whose name
# starts with LIST_STAGING_PREFIX is therefore never a current list: what a crashed run left
# behind, safe to remove while no run holds the warehouse lock.
LIST_STAGING_PREFIX = ".lists-"
LIST_STAGING_GLOB = LIST_STAGING_PREFIX + "*"
# The readable part of a file name, in UTF-8 bytes (32 CJK characters); with the code and
# ".xlsx" a name stays far below the 255 bytes file systems allow per component.
NAME_BYTES = 96
CODE_HEX = 6  # hex digits of a derived code; more where two places of one folder would share it
MAX_CODE_HEX = 64  # all of sha256
ROSTER_CODE = re.compile(r"[0-9A-Za-z-]{1,32}")  # a roster's township code used as it is
# Replaced by _: what Windows forbids in a name (and / everywhere), whitespace, and control,
# format (zero-width, bidi), private-use, unassigned and line/paragraph separator characters.
FORBIDDEN_CHARS = set('\\/:*?"<>|')
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"}
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
UNKNOWN_TOWNSHIP = "未知乡镇"
UNKNOWN_COUNTY = "未知区县"


def safe_file_name(text: str | None, max_bytes: int = NAME_BYTES, fallback: str = UNKNOWN_TOWNSHIP) -> str:
    """`text` as one path component: no path separators or characters Windows forbids
    (runs of them become one _), no leading or trailing dot, space or _, at most
    `max_bytes` of UTF-8 (cut between characters), not a name Windows reserves (CON, NUL,
    COM1 …); `fallback` when nothing is left."""
    text = unicodedata.normalize("NFC", text or "")
    kept = "".join("_" if c in FORBIDDEN_CHARS or c.isspace() or unicodedata.category(c) in FORBIDDEN_CATEGORIES else c for c in text)
    name = re.sub(r"_+", "_", kept).strip("._ ")
    if len(name.encode()) > max_bytes:
        name = name.encode()[:max_bytes].decode("utf-8", "ignore").rstrip("._ ")
    if not name:
        return fallback
    if name.split(".")[0].upper() in WINDOWS_RESERVED:
        name = f"_{name}"
    return name


def place_digest(county: str | None, township: str | None) -> str:
    """A township's stable code: sha256 of county code and township (hex), the same every quarter."""
    text = f"{county if county is not None else chr(0)}\x1f{township if township is not None else chr(0)}"
    return hashlib.sha256(text.encode()).hexdigest()


class Place(NamedTuple):
    county: str | None
    township: str | None
    code: str | None = None  # the roster's township code, when there is one


def _code(place: Place, digits: int) -> str:
    """The place's code in a file name: the roster's code if usable, else (or, on a clash,
    after it) the first `digits` hex digits of `place_digest`."""
    roster = place.code.strip() if place.code else ""
    roster = roster if ROSTER_CODE.fullmatch(roster) else ""
    digest = place_digest(place.county, place.township)[:digits] if digits or not roster else ""
    return "-".join(p for p in (roster, digest) if p)


def _unique(keys: list, name_of, start) -> dict:
    """A name per key, `name_of(key, digits)`, with more code digits for the keys whose names
    clash (compared case-insensitively, as Windows and macOS do) until none does."""
    digits = {k: start(k) for k in keys}
    while True:
        names = {k: name_of(k, digits[k]) for k in keys}
        by_name = collections.defaultdict(list)
        for k, name in names.items():
            by_name[name.casefold()].append(k)
        clashes = [k for group in by_name.values() if len(group) > 1 for k in group]
        if not clashes:
            return names
        if all(digits[k] >= MAX_CODE_HEX for k in clashes):
            raise AssertionError(f"{len(clashes)} 个乡镇的清单文件名无法区分")
        for k in clashes:
            digits[k] = CODE_HEX if digits[k] < CODE_HEX else min(digits[k] + 2, MAX_CODE_HEX)


def county_folder_names(counties: list[str | None]) -> dict[str | None, str]:
    """The folder of each county: its code when it is one (digits), else a code and its text."""
    def name_of(county, digits):
        if county is None:
            return UNKNOWN_COUNTY
        if re.fullmatch(r"\d{1,32}", county):
            return county
        return f"{place_digest(county, None)[:digits]}_{safe_file_name(county, fallback=UNKNOWN_COUNTY)}"

    return _unique(list(dict.fromkeys(counties)), name_of, lambda county: CODE_HEX)


def workbook_paths(places: list[Place]) -> dict[Place, str]:
    """Each township's workbook, relative to the lists folder: `<county folder>/<code>_<name>.xlsx`.

    Distinct for distinct places by construction (two townships whose names read alike
    after sanitising, or after shortening, still differ in their code; codes that clash are
    lengthened), every component well under 255 bytes, nothing Windows cannot store."""
    places = list(dict.fromkeys(places))
    folders = county_folder_names([p.county for p in places])
    by_folder = collections.defaultdict(list)
    for place in places:
        by_folder[folders[place.county]].append(place)
    paths = {}
    for folder, group in by_folder.items():
        names = _unique(group, lambda p, digits: f"{_code(p, digits)}_{safe_file_name(p.township)}.xlsx",
                        lambda p: 0 if p.code and ROSTER_CODE.fullmatch(p.code.strip()) else CODE_HEX)
        paths.update({p: f"{folder}/{name}" for p, name in names.items()})
    assert len(set(paths.values())) == len(places), "two townships share a workbook"
    return paths


def text_width(text: str) -> float:
    """Display width in Excel width units: 1 per ASCII character, CJK_UNITS per other one.
    Counted from the UTF-8 length (1 byte for ASCII, 3 for CJK), not character by character."""
    chars = len(text)
    return chars + (CJK_UNITS - 1) / 2 * (len(text.encode()) - chars)


def row_lines(text: str | None, width: float) -> int:
    """Lines a wrapped cell of `width` units needs for `text`; explicit newlines count.

    A word of ASCII characters (an amount, a record key, an ID number) that does not fit at
    the end of a line moves whole to the next one, leaving the end of the line empty. A line
    ends inside a given word of length L with a chance of about L / (the text's width) and
    then loses up to L units, so each line is taken to hold sum(L²) / width units less (a
    word longer than a line is broken anywhere and counts as one line's width)."""
    if not text:
        return 1
    if "\n" in text:
        return sum(row_lines(part, width) for part in text.split("\n"))
    per_line = _one_line_chars(width) * CJK_UNITS
    encoded = text.encode()
    chars = len(text)
    total = chars + (CJK_UNITS - 1) / 2 * (len(encoded) - chars)  # text_width, inlined
    if total <= per_line:
        return 1
    lengths = list(map(len, encoded.translate(ASCII_WORDS).split()))
    if lengths and max(lengths) > per_line:
        lengths = [min(length, per_line) for length in lengths]
    lost = sum(map(operator.mul, lengths, lengths)) / total
    return math.ceil(total * WRAP_SLACK / max(per_line - lost, per_line / 2))


def _one_line_chars(width: float) -> int:
    """Characters that fit one line of a column of `width` even if all are CJK."""
    return max(math.floor((width - CELL_PADDING_UNITS) / CJK_UNITS), 1)


def row_height(lines: int) -> float:
    """Points for a row whose tallest cell has `lines` lines."""
    return min(max(lines * LINE_PT + ROW_PADDING_PT, MIN_ROW_PT), MAX_ROW_PT)


def overdue(due_date: pl.Expr, quarter: Quarter) -> pl.Expr:
    """已逾期 where the warning is overdue, else null. Overdue means its due date is on or
    before the last day of the list's quarter: the list is written after the quarter has
    closed, so that day has passed. The report counts the same warnings as 已到期
    (pipelines/exports/report.py: due_date <= Q.end); a warning without a due date is not."""
    return pl.when(due_date <= quarter.end).then(pl.lit(OVERDUE)).otherwise(pl.lit(None, dtype=pl.Utf8))


def sheet_rows(rows: pl.DataFrame, kind: str, quarter: Quarter) -> pl.DataFrame:
    """One sheet's rows, in the order given (the priority order of `list_rows`), numbered
    序号 1..n (`seq`), with the 已逾期 mark (`overdue`)."""
    part = rows.filter(pl.col("rule_kind") == kind)
    due = pl.col("due_date") if "due_date" in part.columns else pl.lit(None, dtype=pl.Date)
    return part.with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("seq"),
        overdue(due, quarter).alias("overdue"),
    )


def list_rows(con: duckdb.DuckDBPyConnection, quarter: Quarter) -> pl.DataFrame:
    # A roster that carries township codes (marts.warnings.township_code) names the files by them.
    has_code = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'marts' AND table_name = 'warnings' AND column_name = 'township_code'"
    ).fetchone()[0]
    code = "w.township_code::VARCHAR" if has_code else "NULL::VARCHAR"
    rows = con.execute(
        f"""
        SELECT c.priority, w.quarter, w.county_code, w.township, {code} AS township_code, w.village, w.household_id, w.name, w.id_number,
               w.rule_code, w.rule_title, w.rule_kind, w.severity, w.status, w.first_seen_quarter,
               w.evidence::VARCHAR AS evidence, w.action, w.due_date, w.policy_ref, w.warning_id,
               CASE w.severity WHEN 'red' THEN 1 WHEN 'orange' THEN 2 ELSE 3 END AS severity_rank
        FROM marts.warnings AS w
        LEFT JOIN marts.household_cases AS c ON c.quarter = w.quarter AND c.household_id = w.household_id
        WHERE w.quarter = ? AND w.status IN ('new', 'persisting')
        ORDER BY c.priority NULLS LAST, severity_rank, w.due_date, w.rule_code, w.member_id
        """,
        [str(quarter)],
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


def _header_footer_text(text: str) -> str:
    return text.replace("&", "&&")  # & starts a control code in Excel's headers and footers


def _place(rows: pl.DataFrame) -> str:
    """The township of a township's workbook, for the printed footer ('' for other lists)."""
    if "township" not in rows.columns:
        return ""
    townships = rows["township"].drop_nulls().unique()
    return str(townships[0]) if len(townships) == 1 else ""


def _column_pixels(width: float) -> int:
    return int(width * 7 + 0.5) + 5  # Excel's (and xlsxwriter's) width units to pixels


def write_workbook(path: Path, rows: pl.DataFrame, quarter: Quarter) -> dict[str, int]:
    import xlsxwriter

    # constant_memory: rows go to disk as they are written (inline strings, no shared
    # string table); a province's township list can hold tens of thousands of rows. Each
    # row's height is therefore set just before its cells are written.
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    top = {"valign": "top"}  # no cell borders: the grid is printed instead (hide_gridlines(0))
    header = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "vcenter", "align": "center"})
    plain = workbook.add_format(top)
    wrap = workbook.add_format({**top, "text_wrap": True})
    date = workbook.add_format({**top, "num_format": "yyyy-mm-dd"})
    late = workbook.add_format({**top, "bold": True, "font_color": "#C00000"})
    fills = {k: workbook.add_format({**top, "bg_color": v}) for k, v in SEVERITY_COLOURS.items()}
    fields = [c[0] for c in COLUMNS]
    # (position, width, characters that fit one line whatever they are): most cells are short
    wrapped = [(i, width, _one_line_chars(width)) for i, (field, _, width) in enumerate(COLUMNS) if field in WRAPPED]
    header_lines = max(row_lines(label, width) for _, label, width in COLUMNS)
    place = _place(rows)
    footer_left = " ".join(p for p in (place, str(quarter)) if p)
    counts = {}
    for kind, title in SHEETS:
        if kind == "data_quality" and rows.filter(pl.col("rule_kind") == kind).height == 0:
            continue
        part = sheet_rows(rows, kind, quarter)
        sheet = workbook.add_worksheet(title)
        _page_setup(sheet, title, quarter, footer_left)
        for col, (_field, _, width) in enumerate(COLUMNS):
            sheet.set_column(col, col, width)
        sheet.set_row(0, row_height(header_lines) + 2)
        for col, (_, label, _) in enumerate(COLUMNS):
            sheet.write_string(0, col, label, header)
        cells = part.select([pl.col(f) if f in part.columns else pl.lit(None).alias(f) for f in [*fields, "severity"]])
        for r, values in enumerate(cells.iter_rows(), start=1):
            lines = 1
            for i, width, fits in wrapped:
                if values[i] and len(values[i]) > fits:
                    lines = max(lines, row_lines(values[i], width))
            sheet.set_row(r, row_height(lines))
            for col, field in enumerate(fields):
                value = values[col]
                if field == "severity_word":
                    sheet.write_string(r, col, value or "", fills.get(values[-1], plain))
                elif value is None:
                    continue  # an empty cell
                elif isinstance(value, dt.date):
                    sheet.write_datetime(r, col, dt.datetime(value.year, value.month, value.day), date)
                elif field in NUMBERS and isinstance(value, (int, float)):
                    sheet.write_number(r, col, value, plain)
                elif field == "overdue":
                    sheet.write_string(r, col, value, late)
                else:
                    sheet.write_string(r, col, str(value), wrap if field in WRAPPED else plain)
        if part.height == 0:
            _empty_sheet_note(sheet)
        last = max(part.height, 1)
        result_col = fields.index("verification_result")
        sheet.data_validation(
            1, result_col, max(last, 1000), result_col,
            {"validate": "list", "source": VERIFICATION_CHOICES, "input_title": "核查结果", "input_message": "请选择：属实 / 不属实 / 已处理"},
        )
        sheet.freeze_panes(1, FROZEN_COLUMNS)
        sheet.autofilter(0, 0, last, len(COLUMNS) - 1)
        counts[title] = part.height
    workbook.set_properties({"title": f"{quarter} {LIST_TITLE}", "comments": "由 doudi 生成"})
    workbook.close()
    return counts


def _page_setup(sheet, title: str, quarter: Quarter, footer_left: str) -> None:
    """Landscape A4, every column on one page wide (as many pages long as it takes), the
    header row repeated on each page, narrow margins, title above and township, quarter
    and page x of y below."""
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.hide_gridlines(0)  # print the grid too (the cells have no borders)
    sheet.set_margins(left=0.25, right=0.25, top=0.6, bottom=0.55)
    sheet.set_header(f'&C&"-,Bold"{_header_footer_text(f"{quarter} {LIST_TITLE}：{title}")}', {"margin": 0.25})
    sheet.set_footer(f"&L{_header_footer_text(footer_left)}&R第 &P 页，共 &N 页", {"margin": 0.25})


def _empty_sheet_note(sheet) -> None:
    """本季度无此类预警 over the first data row, in a text box rather than a cell: the
    verifications reader takes every non-empty row of a returned sheet for a result, and a
    row without 预警编号 would be quarantined (and could tip a delivery over the ingest
    check's share of quarantined rows)."""
    sheet.set_row(1, 30)
    width = sum(_column_pixels(w) for _, _, w in COLUMNS[:5])
    sheet.insert_textbox(1, 0, EMPTY_SHEET_NOTE, {
        "width": width, "height": 38, "x_offset": 2, "y_offset": 1, "object_position": 1,
        "font": {"size": 11, "bold": True, "color": "#595959"}, "align": {"vertical": "middle"},
        "line": {"none": True}, "fill": {"none": True},
    })


def export_lists(con: duckdb.DuckDBPyConnection, quarter: Quarter, out_dir: Path) -> list[dict]:
    """Write every township's workbook; return one record per file (for the export log).

    The file names are planned first (`workbook_paths`: nothing about a name can fail);
    the workbooks go to a private folder beside the lists (LIST_STAGING_PREFIX, mode 0700,
    files 0600), which replaces the quarter's lists only once every workbook is written.
    Should writing fail, the lists already there stay as they were."""
    rows = list_rows(con, quarter)
    quarter_dir = out_dir / str(quarter)
    target = quarter_dir / "lists"
    quarter_dir.mkdir(parents=True, exist_ok=True)
    staging = quarter_dir / f"{LIST_STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    staging.mkdir(mode=0o700)
    os.chmod(staging, 0o700)  # whatever the umask
    written = []
    try:
        if rows.height:
            groups = list(rows.group_by(["county_code", "township"], maintain_order=True))
            places = [Place(county, township, _first(part["township_code"]) if "township_code" in part.columns else None)
                      for (county, township), part in groups]
            paths = workbook_paths(places)
            books = []
            for place, (_, part) in zip(places, groups):
                path = staging / paths[place]
                path.parent.mkdir(mode=0o700, exist_ok=True)
                books.append(Workbook(place.county, place.township, path, part))
            for book, counts in zip(books, _write_all(books, quarter)):
                os.chmod(book.path, 0o600)
                written.append({"county_code": book.county, "township": book.township, "file": book.path.relative_to(staging).as_posix(),
                                "rows": book.rows.height, "households": book.rows["household_id"].n_unique(), "sheets": counts})
        _swap_in(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return written


def _first(values: pl.Series) -> str | None:
    present = values.drop_nulls()
    return str(present[0]) if len(present) else None


def _swap_in(staging: Path, target: Path) -> None:
    """Put the written folder in the place of the lists: the old lists are renamed aside first
    (a rename cannot replace a folder that is not empty) and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f"{LIST_STAGING_PREFIX}old-{uuid.uuid4().hex[:8]}")
        target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


PARALLEL_ROWS = 50_000  # below this, starting worker processes costs more than it saves


class Workbook(NamedTuple):
    county: str | None
    township: str
    path: Path
    rows: pl.DataFrame


def _write_all(books: list[Workbook], quarter: Quarter) -> list[dict[str, int]]:
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
