"""Reading one delivered file into raw text columns named by the source's canonical names.

What a department sends: CSV in UTF-8, UTF-8 with BOM or GB18030/GBK (detected by strict
decoding, never guessed), or Excel (.xlsx, first sheet). The header is the first row,
among the first rows of the file, whose cells are the source's known headers (so title
lines and blank rows above it are skipped). Extra columns are ignored; a missing required
column refuses the source.

CSV is parsed by DuckDB with an explicit dialect and `store_rejects`, so a malformed line
(too few or too many fields, an unterminated quote) becomes a quarantined row that names
its line instead of failing the file or disappearing. Excel cells keep their type until
they are turned into text here: a number in an ID column becomes `1.40502198001011e+17`
(what Excel keeps), never a plausible-looking 18-digit string.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

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
    """A line the CSV parser could not split into the header's columns."""

    row: int
    reason: str
    text: str


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
    _duck_table: str | None = None  # CSV rows staged in DuckDB, read in batches
    _row_shift: np.ndarray | None = None
    _utf8_copy: Path | None = None

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
        total, first, last = con.execute(f"SELECT count(*), min(rowid), max(rowid) FROM {self._duck_table}").fetchone()
        first_data_line = self.header_row + 1
        seen = 0
        for start in range(first, last + 1, size) if total else ():
            frame = con.execute(
                f"SELECT rowid - ? AS __ord, {select} FROM {self._duck_table} WHERE rowid >= ? AND rowid < ? ORDER BY rowid",
                [first, start, start + size],
            ).pl()
            seen += frame.height
            positions = frame["__ord"].to_numpy() + first_data_line
            if self._row_shift is not None and len(self._row_shift):
                positions = positions + np.searchsorted(self._row_shift, positions, side="right")
            yield frame.drop("__ord").with_columns(pl.Series("source_row", positions, dtype=pl.Int32))
        if seen != total:
            raise RuntimeError(f"{self.display_name}: read {seen} of {total} parsed rows; refusing to continue")

    def close(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        if con is not None and self._duck_table:
            con.execute(f"DROP TABLE IF EXISTS {self._duck_table}")
        if self._utf8_copy is not None:
            self._utf8_copy.unlink(missing_ok=True)


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


def _utf8_copy(path: Path, encoding: Encoding, tmpdir: Path) -> Path:
    """A UTF-8 copy (what DuckDB reads) of a file in another encoding or with a broken
    last character, converted in chunks."""
    fd, name = tempfile.mkstemp(suffix=".csv", dir=tmpdir)
    codec = "utf-8" if encoding.name in ("utf-8", "utf-8-sig") else encoding.name
    decoder = codecs.getincrementaldecoder(codec)("strict")
    remaining = path.stat().st_size - encoding.truncated_tail
    with path.open("rb") as src, os.fdopen(fd, "wb") as dst:
        while remaining > 0 and (chunk := src.read(min(CHUNK, remaining))):
            remaining -= len(chunk)
            dst.write(decoder.decode(chunk, final=remaining <= 0).encode("utf-8"))
    return Path(name)


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


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_csv_file(
    path: Path, display: str, spec: SourceSpec, con: duckdb.DuckDBPyConnection, table: str, tmpdir: Path
) -> FileReading:
    try:
        encoding = detect_encoding(path)
    except ValueError as exc:
        raise InputRefused(spec.source, f"文件 {display} 无法识别编码（应为 UTF-8 或 GB18030/GBK）：{exc}", display) from None
    reading = FileReading(path=path, display_name=display, file_format="csv", encoding=encoding.name, checksum=encoding.checksum)
    if encoding.truncated_tail:
        reading.notes.append(f"文件末尾的{encoding.truncated_tail}个字节不是完整的字符（文件可能被截断），已舍去")
    csv_path = path
    if encoding.name in ("gb18030", "utf-16") or encoding.truncated_tail:
        csv_path = reading._utf8_copy = _utf8_copy(path, encoding, tmpdir)
    with csv_path.open("r", encoding="utf-8-sig", newline="") as handle:
        head_lines = []
        for _ in range(HEADER_SCAN_ROWS):
            line = handle.readline()
            if not line:
                break
            head_lines.append(line)
    if not any(line.strip() for line in head_lines):
        raise InputRefused(spec.source, f"文件 {display} 是空文件（没有表头）", display)
    # Header position, counted in physical lines (what DuckDB's `skip` counts).
    parsed = [next(csv.reader([line], delimiter=_sniff_delimiter(line)), []) for line in head_lines]
    header_index = find_header(parsed, spec)
    header_line = head_lines[header_index]
    delimiter = _sniff_delimiter(header_line)
    header = parsed[header_index]
    positions, written, ignored = map_columns(header, spec, display)
    reading.header_row, reading.columns, reading.ignored_headers = header_index + 1, written, ignored
    if ignored:
        reading.notes.append("忽略未识别的列：" + "、".join(ignored))
    # Every column of the file is declared (so a short or long line is a reject), but only
    # the mapped ones are kept.
    declared = {f"x{i}": "VARCHAR" for i in range(len(header))}
    keep = ", ".join(f'"x{positions[name]}" AS "c{j}"' for j, name in enumerate(written))
    columns_sql = "{" + ", ".join(f"'{k}': '{v}'" for k, v in declared.items()) + "}"
    delim_sql = delimiter.replace("'", "''")
    con.execute("SET VARIABLE doudi_csv_path = ?", [str(csv_path)])
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT {keep} FROM read_csv(getvariable('doudi_csv_path'),
                header = false, skip = {header_index + 1}, auto_detect = false,
                delim = '{delim_sql}', quote = '"', escape = '"', columns = {columns_sql},
                null_padding = false, strict_mode = true, store_rejects = true,
                rejects_table = '{table}_rejects', rejects_scan = '{table}_scans',
                encoding = 'utf-8', parallel = true)
            """
        )
    except duckdb.Error as exc:
        raise InputRefused(
            spec.source, f"文件 {display} 无法按 CSV 解析：{str(exc).splitlines()[0][:200]}", display
        ) from None
    rejects = con.execute(
        f"SELECT line, error_type, csv_line FROM {table}_rejects ORDER BY line"
    ).fetchall()
    con.execute(f"DROP TABLE IF EXISTS {table}_rejects; DROP TABLE IF EXISTS {table}_scans")
    reasons = {
        "MISSING COLUMNS": "列数少于表头",
        "TOO MANY COLUMNS": "列数多于表头",
        "UNQUOTED VALUE": "引号未闭合",
        "INVALID UNICODE": "含非法字符",
    }
    seen: set[int] = set()
    for line, error_type, text in rejects:
        if line in seen:
            continue
        seen.add(line)
        reading.rejected.append(Rejected(int(line), reasons.get(error_type, error_type), text or ""))
    reading._duck_table = table
    lines = np.array(sorted(seen), dtype=np.int64)
    # line of the k-th good row: see FileReading.batches (k + offset, skipping rejected lines)
    reading._row_shift = lines - np.arange(len(lines)) if len(lines) else None
    return reading


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
