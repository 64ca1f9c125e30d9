"""Reading one delivered file into raw text columns named by the source's canonical names.

What a department sends: CSV in UTF-8, UTF-8 with BOM or GB18030/GBK (detected by strict
decoding, never guessed), or Excel (.xlsx, first sheet). The header is the first row,
among the first rows of the file, whose cells are the source's known headers (so title
lines and blank rows above it are skipped). Extra columns are ignored; a missing required
column refuses the source.

CSV is streamed to DuckDB as UTF-8 with LF line endings (`sources/csvstream.py`: mixed
line endings, GBK and UTF-16 all arrive the same way, and no converted copy is written to
disk) and parsed with an explicit dialect and `store_rejects`, so a malformed line (too
few or too many fields, an unterminated quote, a line or field far too long) becomes a
quarantined row that names its line instead of failing the file or disappearing. A second
parser counts the file's records as they stream by; when its count and DuckDB's disagree
the file is refused, never loaded short. The lines above the header are kept in audit as
hashes. Excel cells keep their type until
they are turned into text here: a number in an ID column becomes `1.40502198001011e+17`
(what Excel keeps), never a plausible-looking 18-digit string.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from sources.csvstream import PipeStream, RecordCounter, normalised_chunks
from sources.registry import SourceSpec, normalise_header

CSV_SUFFIXES = {".csv", ".txt"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
HEADER_SCAN_ROWS = 30
CHUNK = 16 * 1024 * 1024


class InputRefused(Exception):
    """An input that the pipeline will not load; the message names file and column or row
    and never quotes personal data."""

    def __init__(self, source: str, message: str, file: str | None = None):
        self.source = source
        self.file = file
        super().__init__(message)


@dataclass
class Rejected:
    """A record the CSV parser could not split into the header's columns (or one too
    large to be a record): quarantined with its line, reason and (shortened) text."""

    row: int
    reason: str
    text: str
    code: str = "csv_malformed"


@dataclass
class SkippedLine:
    """A line above the data (title, blank line, the header): kept in audit.skipped_lines
    as the hash of its text, so the lines of a file add up without storing their text."""

    line: int
    text_sha256: str
    reason: str


# Rows cleaned and written per step while a CSV is loaded (bounds memory; see batches).
BATCH_ROWS = 500_000


@dataclass
class FileReading:
    path: Path
    display_name: str  # path relative to the inbox quarter folder, for messages
    file_format: str
    encoding: str | None
    checksum: str
    header_row: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> header as written
    ignored_headers: list[str] = field(default_factory=list)
    rows: pl.DataFrame | None = None  # canonical text columns + source_row (Excel)
    notes: list[str] = field(default_factory=list)  # what the reader noticed about the file
    rejected: list[Rejected] = field(default_factory=list)
    preamble: list[SkippedLine] = field(default_factory=list)
    records_counted: int | None = None  # records below the header, by the second counter (CSV)
    _duck_table: str | None = None  # CSV rows staged in DuckDB, read in batches
    _first_rowid: int = 0
    _row_lines: np.ndarray | None = None  # physical line of the k-th parsed row
    _row_shift: np.ndarray | None = None  # fallback: rejected lines, to shift k + first line

    def row_line(self, ordinals: np.ndarray) -> np.ndarray:
        """The physical line (1-based) on which the parsed rows numbered `ordinals` start."""
        if self._row_lines is not None:
            return self._row_lines[ordinals]
        positions = ordinals + self.header_row + 1
        if self._row_shift is not None and len(self._row_shift):
            positions = positions + np.searchsorted(self._row_shift, positions, side="right")
        return positions

    def batches(self, con: duckdb.DuckDBPyConnection, size: int | None = None) -> Iterator[pl.DataFrame]:
        """The file's parsed rows in order, as text, with `source_row` (line or Excel row).

        Each batch is its own query over a range of row ids, fully fetched: the caller
        writes to the same connection between batches, and in DuckDB a new query on a
        connection ends the stream of the one before (a streamed reader would stop after
        its first batch without a word). The batches are counted against the table.
        """
        if self.rows is not None:
            yield self.rows
            return
        assert self._duck_table is not None
        size = size or BATCH_ROWS
        names = list(self.columns)
        select = ", ".join(f'"c{i}" AS "{name}"' for i, name in enumerate(names))
        # Only mapped columns were kept; see read_csv_file.
        # Row ids run contiguously from the first row; not from 0 when the table was made
        # inside the ingest's transaction (DuckDB numbers uncommitted rows from 2^62).
        # Rows rejected after parsing (oversized fields) left gaps; numbering starts from
        # the first row id the parse gave.
        total, last = con.execute(f"SELECT count(*), max(rowid) FROM {self._duck_table}").fetchone()
        first = self._first_rowid
        seen = 0
        for start in range(first, last + 1, size) if total else ():
            # No ORDER BY: DuckDB returns a scan in insertion order (preserve_insertion_order,
            # on by default), and sorting each batch again cost as much as reading it. The
            # order is checked (one pass) and restored if a setting ever changed it.
            frame = con.execute(
                f"SELECT rowid - ? AS __ord, {select} FROM {self._duck_table} WHERE rowid >= ? AND rowid < ?",
                [first, start, start + size],
            ).pl()
            if not frame["__ord"].is_sorted():
                frame = frame.sort("__ord")
            seen += frame.height
            positions = self.row_line(frame["__ord"].to_numpy())
            yield frame.drop("__ord").with_columns(pl.Series("source_row", positions, dtype=pl.Int32))
        if seen != total:
            raise RuntimeError(f"{self.display_name}: read {seen} of {total} parsed rows; refusing to continue")

    def close(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        if con is not None and self._duck_table:
            con.execute(f"DROP TABLE IF EXISTS {self._duck_table}")


# ---- encoding ---------------------------------------------------------------------------


@dataclass
class Encoding:
    name: str  # utf-8, utf-8-sig, gb18030, utf-16
    checksum: str
    truncated_tail: int = 0  # bytes of an incomplete last character dropped at the end


def _decodes(path: Path, encoding: str) -> tuple[int | None, int]:
    """(offset of the first undecodable byte or None, length of an incomplete character
    at the very end of the file, which is the only fault when the first is None)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    position = 0
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(CHUNK):
                decoder.decode(chunk)
                position += len(chunk)
        except UnicodeDecodeError as exc:
            return position + exc.start, 0
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None, max(pending, 1)
    return None, 0


def detect_encoding(path: Path) -> Encoding:
    """How a text file is encoded: UTF-8 (with or without BOM), UTF-16 (with BOM, as
    Excel's "Unicode text" export), or GB18030/GBK; decoded strictly over the whole file.

    UTF-8 goes first because GB18030 decodes most UTF-8 text into nonsense without
    complaint, while GBK text is almost never valid UTF-8. A file cut off in the middle of
    a character keeps its encoding (the broken last line is quarantined). Anything else
    (a binary file, another encoding) raises ValueError.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        has_nul = False
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            has_nul = has_nul or b"\x00" in chunk
    checksum = digest.hexdigest()
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        bad, tail = _decodes(path, "utf-16")
        if bad is None:
            return Encoding("utf-16", checksum, tail)
        raise ValueError(f"starts like UTF-16 but has an invalid byte at offset {bad}")
    if has_nul:
        raise ValueError("contains NUL bytes: a binary file, not text")
    bad_utf8, tail = _decodes(path, "utf-8")
    if bad_utf8 is None:
        name = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        return Encoding(name, checksum, tail)
    bad_gb, tail = _decodes(path, "gb18030")
    if bad_gb is None:
        return Encoding("gb18030", checksum, tail)
    raise ValueError(f"neither UTF-8 (invalid byte at offset {bad_utf8}) nor GB18030/GBK (invalid byte at offset {bad_gb})")


# ---- header -----------------------------------------------------------------------------


def _header_score(cells: list[str], spec: SourceSpec) -> int:
    lookup = spec.header_lookup
    return len({lookup[h] for h in (normalise_header(c) for c in cells) if h in lookup})


def find_header(rows: list[list[str]], spec: SourceSpec) -> int:
    """Index of the header among the first rows: the row naming most known columns;
    without any, the first non-empty row (whose columns will then be reported missing)."""
    best, best_score = None, 0
    for index, cells in enumerate(rows[:HEADER_SCAN_ROWS]):
        score = _header_score(cells, spec)
        if score > best_score:
            best, best_score = index, score
    if best is not None and best_score >= 1:
        return best
    for index, cells in enumerate(rows):
        if any(str(c).strip() for c in cells):
            return index
    return 0


def map_columns(header: list[str], spec: SourceSpec, display: str) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """canonical -> position, canonical -> header text, and the ignored headers. Refuses
    when a required column is missing."""
    positions: dict[str, int] = {}
    written: dict[str, str] = {}
    ignored: list[str] = []
    lookup = spec.header_lookup
    for index, text in enumerate(header):
        canonical = lookup.get(normalise_header(text))
        if canonical is None or canonical in positions:
            if str(text).strip():
                ignored.append(str(text).strip())
            continue
        positions[canonical] = index
        written[canonical] = str(text).strip()
    missing = [c for c in spec.required_columns if c.name not in positions]
    if missing:
        parts = [f"「{c.headers[0]}」（可接受的列名：{'、'.join(c.headers)}）" for c in missing]
        raise InputRefused(spec.source, f"文件 {display} 缺少必需列 {'；'.join(parts)}", display)
    return positions, written, ignored


# ---- CSV ----------------------------------------------------------------------------------

# A line longer than this cannot be a title or a header; it is not parsed as one (Python's
# csv module would stop at its field limit). DuckDB rejects a data line longer than its
# max_line_size (2 MB by default) as a row of its own, with a reason.
HEADER_LINE_BYTES = 64 * 1024
HEAD_BYTES = 32 * 1024 * 1024  # at most this much of the file is read to find the header
# No field of any source is this long (names, IDs, diagnoses, addresses); a longer one is
# a file that is not what it says, or a cell pasted full of something else.
MAX_FIELD_BYTES = 32 * 1024


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _head_lines(path: Path, encoding: Encoding) -> list[bytes]:
    """The first HEADER_SCAN_ROWS physical lines of the normalised stream (LF only)."""
    parts: list[bytes] = []
    size = newlines = 0
    for chunk in normalised_chunks(path, encoding.name, encoding.truncated_tail):
        parts.append(chunk)
        size += len(chunk)
        newlines += chunk.count(b"\n")
        if newlines >= HEADER_SCAN_ROWS or size >= HEAD_BYTES:
            break
    lines = b"".join(parts).split(b"\n")
    if newlines < HEADER_SCAN_ROWS and lines and lines[-1] == b"":
        lines.pop()  # the file's last line feed
    return lines[:HEADER_SCAN_ROWS]


def _parse_head_line(line: bytes) -> tuple[list[str], str]:
    if len(line) > HEADER_LINE_BYTES:
        return [], ","
    text = line.decode("utf-8", errors="replace")
    delimiter = _sniff_delimiter(text)
    return next(csv.reader([text], delimiter=delimiter), []), delimiter


def _preamble(lines: list[bytes], header_index: int) -> list[SkippedLine]:
    """The lines above the data, each with the hash of its text and why it was skipped."""
    skipped = []
    for index, line in enumerate(lines[: header_index + 1]):
        reason = "表头" if index == header_index else ("空行" if not line.strip() else "表头之前的标题行")
        skipped.append(SkippedLine(index + 1, hashlib.sha256(line).hexdigest(), reason))
    return skipped


REJECT_REASONS = {
    "MISSING COLUMNS": ("csv_malformed", "CSV 格式错误：列数少于表头"),
    "TOO MANY COLUMNS": ("csv_malformed", "CSV 格式错误：列数多于表头"),
    "UNQUOTED VALUE": ("csv_malformed", "CSV 格式错误：引号未闭合"),
    "INVALID UNICODE": ("csv_malformed", "CSV 格式错误：含非法字符"),
    "LINE SIZE OVER MAXIMUM": ("line_too_long", "CSV 格式错误：该行超过 2 MB，不是一条正常记录"),
}
REJECT_TEXT_CHARS = 4000  # a rejected line is kept in quarantine up to this length


def _kept_text(text: str) -> str:
    if len(text) <= REJECT_TEXT_CHARS:
        return text
    return text[:REJECT_TEXT_CHARS] + f"…（已截断，原长 {len(text.encode())} 字节）"


def read_csv_file(
    path: Path, display: str, spec: SourceSpec, con: duckdb.DuckDBPyConnection, table: str, tmpdir: Path
) -> FileReading:
    """Parse a delivered CSV into the temp table `table` (its mapped columns, as text).

    The file is streamed to DuckDB normalised (`sources/csvstream.py`) while a second
    parser counts its records; every record below the header is then a parsed row or a
    rejected line, and a file where the two counts differ is refused."""
    try:
        encoding = detect_encoding(path)
    except ValueError as exc:
        raise InputRefused(spec.source, f"文件 {display} 无法识别编码（应为 UTF-8 或 GB18030/GBK）：{exc}", display) from None
    reading = FileReading(path=path, display_name=display, file_format="csv", encoding=encoding.name, checksum=encoding.checksum)
    if encoding.truncated_tail:
        reading.notes.append(f"文件末尾的{encoding.truncated_tail}个字节不是完整的字符（文件可能被截断），已舍去")
    head_lines = _head_lines(path, encoding)
    if not any(line.strip() for line in head_lines):
        raise InputRefused(spec.source, f"文件 {display} 是空文件（没有表头）", display)
    parsed = [_parse_head_line(line) for line in head_lines]
    header_index = find_header([cells for cells, _ in parsed], spec)
    header, delimiter = parsed[header_index]
    positions, written, ignored = map_columns(header, spec, display)
    reading.header_row, reading.columns, reading.ignored_headers = header_index + 1, written, ignored
    reading.preamble = _preamble(head_lines, header_index)
    if ignored:
        reading.notes.append("忽略未识别的列：" + "、".join(ignored))
    # Every column of the file is declared (so a short or long line is a reject), but only
    # the mapped ones are kept.
    declared = {f"x{i}": "VARCHAR" for i in range(len(header))}
    keep = ", ".join(f'"x{positions[name]}" AS "c{j}"' for j, name in enumerate(written))
    columns_sql = "{" + ", ".join(f"'{k}': '{v}'" for k, v in declared.items()) + "}"
    delim_sql = delimiter.replace("'", "''")
    counter = RecordCounter(delimiter, skip_lines=header_index + 1)
    stream = PipeStream(tmpdir, table, normalised_chunks(path, encoding.name, encoding.truncated_tail), counter)
    with stream:
        con.execute("SET VARIABLE doudi_csv_path = ?", [str(stream.path)])
        try:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {table} AS
                SELECT {keep} FROM read_csv(getvariable('doudi_csv_path'),
                    header = false, skip = {header_index + 1}, auto_detect = false,
                    delim = '{delim_sql}', quote = '"', escape = '"', columns = {columns_sql},
                    new_line = '\\n', null_padding = false, strict_mode = true, store_rejects = true,
                    rejects_table = '{table}_rejects', rejects_scan = '{table}_scans',
                    encoding = 'utf-8', parallel = true)
                """
            )
            failure = None
        except duckdb.Error as exc:
            failure = str(exc).splitlines()[0][:200]
    if stream.error is not None and not isinstance(stream.error, BrokenPipeError):
        raise stream.error
    if failure is not None:
        raise InputRefused(spec.source, f"文件 {display} 无法按 CSV 解析：{failure}", display)
    rejects = con.execute(
        f"SELECT line, error_type, csv_line FROM {table}_rejects ORDER BY line"
    ).fetchall()
    con.execute(f"DROP TABLE IF EXISTS {table}_rejects; DROP TABLE IF EXISTS {table}_scans")
    seen: set[int] = set()
    for line, error_type, text in rejects:
        if line in seen:
            continue
        seen.add(line)
        code, reason = REJECT_REASONS.get(error_type, ("csv_malformed", f"CSV 格式错误：{error_type}"))
        reading.rejected.append(Rejected(int(line), reason, _kept_text(text or ""), code))
    parsed_rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    reading.records_counted = counter.records
    if parsed_rows + len(seen) != counter.records:
        raise InputRefused(
            spec.source,
            f"文件 {display} 的行数核对不一致：逐行独立计数，表头以下有 {counter.records} 条记录，"
            f"CSV 解析读出 {parsed_rows} 行、格式错误 {len(seen)} 行；为免漏读，本次交付整批拒收"
            f"（请检查该文件的引号和换行是否完整{f'，首个格式错误在第 {min(seen)} 行' if seen else ''}）",
            display,
        )
    reading._duck_table = table
    reading._first_rowid = con.execute(f"SELECT coalesce(min(rowid), 0) FROM {table}").fetchone()[0]
    record_lines = counter.record_lines
    rejected_lines = np.array(sorted(seen), dtype=np.int64)
    good_lines = record_lines[~np.isin(record_lines, rejected_lines)]
    if len(good_lines) == parsed_rows:
        reading._row_lines = good_lines  # the physical line each parsed row starts on
    else:  # DuckDB numbered a rejected line elsewhere than its record's first line
        reading._row_shift = rejected_lines - np.arange(len(rejected_lines)) if len(rejected_lines) else None
    _reject_oversized_fields(con, reading, list(written))
    return reading


def _reject_oversized_fields(con: duckdb.DuckDBPyConnection, reading: FileReading, names: list[str]) -> None:
    """Rows with a field longer than MAX_FIELD_BYTES leave the parsed table as rejected
    lines with their reason (their row numbers are kept: `batches` numbers by row id)."""
    table = reading._duck_table
    longest = "greatest(" + ", ".join(f'coalesce(strlen("c{j}"), 0)' for j in range(len(names))) + ")" if len(names) > 1 else 'coalesce(strlen("c0"), 0)'
    first = reading._first_rowid
    oversized = con.execute(
        f"SELECT rowid, {longest} FROM {table} WHERE {longest} > {MAX_FIELD_BYTES} ORDER BY rowid"
    ).fetchall()
    if not oversized:
        return
    for rowid, size in oversized:
        line = int(reading.row_line(np.array([rowid - first]))[0])
        reading.rejected.append(
            Rejected(line, f"字段过长：有一个字段长 {size} 字节（超过 {MAX_FIELD_BYTES} 字节），不是一条正常记录",
                     f"（字段长 {size} 字节，未保存原文）", "field_too_long")
        )
    con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT unnest(?))", [[r for r, _ in oversized]])
    reading.rejected.sort(key=lambda r: r.row)


# ---- Excel --------------------------------------------------------------------------------


def _cell_text(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")  # Excel keeps 15 significant digits; so do we
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _sheet_reading(cells: list[list], display: str, spec: SourceSpec, checksum: str, file_format: str, path: Path) -> FileReading:
    texts = [[_cell_text(v) or "" for v in row] for row in cells[:HEADER_SCAN_ROWS]]
    if not any(any(t.strip() for t in row) for row in texts):
        raise InputRefused(spec.source, f"文件 {display} 是空的", display)
    header_index = find_header(texts, spec)
    header = texts[header_index]
    positions, written, ignored = map_columns(header, spec, display)
    data: dict[str, list] = {name: [] for name in written}
    row_numbers: list[int] = []
    for index in range(header_index + 1, len(cells)):
        row = [_cell_text(v) for v in cells[index]]
        if not any(v and v.strip() for v in row):
            continue  # an empty row is not a record
        for name, pos in positions.items():
            data[name].append(row[pos] if pos < len(row) else None)
        row_numbers.append(index + 1)
    frame = pl.DataFrame({name: pl.Series(name, data[name], dtype=pl.Utf8) for name in written})
    frame = frame.with_columns(pl.Series("source_row", row_numbers, dtype=pl.Int32))
    return FileReading(
        notes=["忽略未识别的列：" + "、".join(ignored)] if ignored else [],
        path=path,
        display_name=display,
        file_format=file_format,
        encoding=None,
        checksum=checksum,
        header_row=header_index + 1,
        columns=written,
        ignored_headers=ignored,
        rows=frame,
        preamble=_preamble(["\t".join(row).encode("utf-8") for row in texts], header_index),
    )


def read_excel_file(path: Path, display: str, spec: SourceSpec) -> list[FileReading]:
    """The first sheet (department extracts), or every sheet that carries the source's
    required columns (returned caseworker lists: `all_sheets`)."""
    from python_calamine import CalamineWorkbook

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    file_format = "xls" if path.suffix.lower() == ".xls" else "xlsx"
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = workbook.sheet_names
        if not names:
            raise InputRefused(spec.source, f"文件 {display} 没有工作表", display)
        sheets = [(name, workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)) for name in (names if spec.all_sheets else names[:1])]
    except InputRefused:
        raise
    except Exception as exc:  # calamine raises its own error types for broken files
        raise InputRefused(spec.source, f"文件 {display} 无法作为 Excel 打开：{type(exc).__name__}", display) from None
    if not spec.all_sheets:
        if not any(any(_cell_text(v) for v in row) for row in sheets[0][1][:HEADER_SCAN_ROWS]):
            raise InputRefused(spec.source, f"文件 {display} 的第一个工作表是空的", display)
        return [_sheet_reading(sheets[0][1], display, spec, digest.hexdigest(), file_format, path)]
    readings, refusals = [], []
    for name, cells in sheets:
        try:
            readings.append(_sheet_reading(cells, f"{display}#{name}", spec, digest.hexdigest(), file_format, path))
        except InputRefused as refused:
            refusals.append(str(refused))  # a sheet of instructions, say
    if not readings:
        raise InputRefused(spec.source, f"文件 {display} 没有一个工作表含有所需的列：{'；'.join(refusals)}", display)
    return readings


def read_file(
    path: Path, display: str, spec: SourceSpec, con: duckdb.DuckDBPyConnection, table: str, tmpdir: Path
) -> list[FileReading]:
    """One reading per table in the file: one for a CSV or a department's workbook, one per
    qualifying sheet for returned lists."""
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return read_excel_file(path, display, spec)
    if suffix in CSV_SUFFIXES:
        return [read_csv_file(path, display, spec, con, table, tmpdir)]
    raise InputRefused(spec.source, f"文件 {display} 的格式不受支持（应为 .csv 或 .xlsx）", display)


def is_data_file(path: Path) -> bool:
    """Files a source folder may hold; lock files and hidden files are not deliveries."""
    name = path.name
    return path.is_file() and not name.startswith(("~$", ".")) and path.suffix.lower() in CSV_SUFFIXES | EXCEL_SUFFIXES
