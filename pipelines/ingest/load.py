"""Load one source's delivery for one quarter: files -> cleaned rows -> staging, every
row read either loaded or quarantined with its reason, one audit row per file.

The quarter's rows in `staging.<source>` and `quarantine.<source>` are replaced in one
transaction at the end, so a refused or failed delivery leaves the warehouse as it was
(apart from the audit rows that record the refusal).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import importlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.quarters import Quarter
from sources import cleaning
from sources.readers import FileReading, InputRefused, is_data_file, read_file
from sources.registry import ColumnSpec, SourceSpec
from sources.rowrules import RowRule
from warehouse.workdir import temp_dir
from warehouse.writes import insert_arrow, insert_rows, insert_select, transaction

INVALID_FLAGS = [
    cleaning.UNPARSEABLE,
    cleaning.OUT_OF_RANGE,
    cleaning.NEGATIVE,
    cleaning.UNKNOWN_VALUE,
    cleaning.INVALID_FORMAT,
]

POLARS_TYPES = {
    "VARCHAR": pl.Utf8,
    "DATE": pl.Date,
    "DECIMAL(18,2)": pl.Decimal(18, 2),
    "INTEGER": pl.Int32,
    "BOOLEAN": pl.Boolean,
}


@dataclass
class FileOutcome:
    file: str
    file_format: str | None
    encoding: str | None
    header_row: int | None
    checksum: str | None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    outcome: str = "loaded"
    message: str = ""
    records_counted: int | None = None  # the second reader's count of records below the header (CSV)
    preamble: list = field(default_factory=list)  # SkippedLine: title rows, blank rows, the header


@dataclass
class SourceOutcome:
    source: str
    quarter: Quarter
    files: list[FileOutcome] = field(default_factory=list)
    folder_present: bool = True

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


def _department_module(spec: SourceSpec):
    try:
        return importlib.import_module(f"sources.{spec.source}")
    except ModuleNotFoundError:
        return None


def _header(col: ColumnSpec) -> str:
    return col.headers[0]


# ---- cleaning a batch ---------------------------------------------------------------


def clean_batch(spec: SourceSpec, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows to load, rows to quarantine) of one batch of raw text rows.

    Cleaning is one lazy polars plan over all columns, collected once (columns of
    repeating values join in their values, cleaned beforehand). Quarantined rows
    keep their raw text as JSON (`__raw_record`), with `__reason_code` / `__reason`.
    """
    missing = [pl.lit(None, dtype=pl.Utf8).alias(c.name) for c in spec.columns if c.name not in raw.columns]
    raw = raw.with_columns(missing) if missing else raw  # an optional header absent from this file
    frame = raw.lazy()
    for col in spec.columns:
        if col.type in CLEANED_PER_DISTINCT_VALUE:
            frame = _clean_distinct_values(raw, frame, col)
        else:
            frame = _clean_column(frame, col)
    module = _department_module(spec)
    if module is not None and hasattr(module, "derive"):
        frame = module.derive(frame)
    reasons: list[tuple[pl.Expr, str, str]] = []
    for col in spec.columns:
        flag = pl.col(f"{col.name}_flag")
        if col.not_null:
            reasons.append((pl.col(col.name).is_null() & (flag == cleaning.MISSING), f"missing:{col.name}", f"{_header(col)}为空"))
        if col.type == "money" and not col.allow_negative:
            # An amount that cannot be negative (a benefit, an income, a fee) and is: a
            # reversal or a keying error, never a value to load as empty without a word.
            reasons.append((flag == cleaning.NEGATIVE, NEGATIVE_AMOUNT, f"{_header(col)}为负数（此项金额不能为负，可能是退费、冲销或录入错误），未入库"))
        if col.not_null or col.on_invalid == "quarantine":
            reasons.append((flag.is_in(INVALID_FLAGS), f"invalid:{col.name}", f"{_header(col)}无法识别"))
    rules: list[RowRule] = list(getattr(module, "ROW_RULES", []) if module else [])
    reasons += [(rule.fails, f"rule:{rule.code}", rule.reason) for rule in rules]
    code = pl.lit(None, dtype=pl.Utf8)
    text = pl.lit(None, dtype=pl.Utf8)
    for fails, reason_code, reason in reversed(reasons):  # the first failing reason wins
        code = pl.when(fails.fill_null(False)).then(pl.lit(reason_code)).otherwise(code)
        text = pl.when(fails.fill_null(False)).then(pl.lit(reason)).otherwise(text)
    cleaned = frame.with_columns(code.alias("__reason_code"), text.alias("__reason")).collect()
    bad_rows = cleaned["__reason_code"].is_not_null()
    if not bad_rows.any():
        return cleaned, cleaned.clear()
    raw_json = raw.filter(bad_rows).select(
        pl.struct([pl.col(c.name) for c in spec.columns]).struct.json_encode().alias("__raw_record")
    )
    bad = pl.concat([cleaned.filter(bad_rows), raw_json], how="horizontal")
    return cleaned.filter(~bad_rows), bad


# Column types whose values repeat within a delivery (dates, codes, the ID and name of a
# person with many settlements): each distinct value is cleaned once and joined back.
# Amounts are mostly distinct and are cleaned row by row.
CLEANED_PER_DISTINCT_VALUE = {"id_number", "name", "date", "enum", "boolean", "county_code", "integer"}


def _clean_distinct_values(raw: pl.DataFrame, frame: pl.LazyFrame, col: ColumnSpec) -> pl.LazyFrame:
    """`frame` with `col` cleaned like `_clean_column`, computed once per distinct raw value.

    The distinct values come from the eager `raw` batch, not from `frame`: a plan that
    took them from `frame` would repeat every earlier column's cleaning for each column."""
    raw_value = f"__{col.name}__raw"
    values = raw.lazy().select(pl.col(col.name)).unique().with_columns(pl.col(col.name).alias(raw_value))
    cleaned = _clean_column(values, col).collect()
    return (
        frame.rename({col.name: raw_value})
        .join(cleaned.lazy(), on=raw_value, how="left", nulls_equal=True, maintain_order="left")
        .drop(raw_value)
    )


def _clean_column(frame: pl.LazyFrame, col: ColumnSpec) -> pl.LazyFrame:
    name = col.name
    if col.type == "key":
        frame = cleaning.clean_key_column(frame, name)
        return frame.with_columns(
            pl.when(pl.col(name).is_null()).then(pl.lit(cleaning.MISSING)).otherwise(pl.lit(cleaning.OK)).alias(f"{name}_flag")
        )
    if col.type == "text":
        frame = cleaning.clean_text_column(frame, name)
        return frame.with_columns(
            pl.when(pl.col(name).is_null()).then(pl.lit(cleaning.MISSING)).otherwise(pl.lit(cleaning.OK)).alias(f"{name}_flag")
        )
    if col.type == "id_number":
        return cleaning.clean_id_column(frame, name)
    if col.type == "name":
        return cleaning.clean_name_column(frame, name)
    if col.type == "date":
        return cleaning.clean_date_column(frame, name)
    if col.type == "money":
        return cleaning.clean_money_column(frame, name, allow_negative=col.allow_negative)
    if col.type == "integer":
        return cleaning.clean_integer_column(frame, name, minimum=col.minimum)
    if col.type == "enum":
        return cleaning.clean_enum_column(frame, name, col.values)
    if col.type == "boolean":
        return cleaning.clean_boolean_column(frame, name)
    if col.type == "county_code":
        return cleaning.clean_county_code_column(frame, name)
    raise ValueError(f"unknown column type {col.type}")


def _staged_frame(spec: SourceSpec, frame: pl.DataFrame, quarter: Quarter, file: str, run_id: str) -> pl.DataFrame:
    frame = frame.with_columns(
        pl.lit(str(quarter)).alias("quarter"), pl.lit(file).alias("source_file"), pl.lit(run_id).alias("run_id")
    )
    return frame.select([pl.col(name).cast(POLARS_TYPES[typ]).alias(name) for name, typ in spec.staged_columns()])


def _quarantine_frame(frame: pl.DataFrame, quarter: Quarter, file: str, run_id: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(str(quarter)).alias("quarter"),
        pl.lit(file).alias("source_file"),
        pl.col("source_row").cast(pl.Int32),
        pl.col("__reason_code").alias("reason_code"),
        pl.col("__reason").alias("reason"),
        pl.col("__raw_record").alias("raw_record"),
        pl.lit(run_id).alias("run_id"),
    )


# ---- the delivery -----------------------------------------------------------------------


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """A cleaned batch into its table, by column name, in row groups DuckDB appends in parallel."""
    if frame.height:
        insert_arrow(con, table, frame.to_arrow())


def _record_refusal(con, outcome: SourceOutcome, run_id: str, message: str, file: str | None) -> None:
    outcome.files.append(
        FileOutcome(file=file or f"{outcome.source}/", file_format=None, encoding=None, header_row=None, checksum=None, outcome="refused", message=message)
    )
    write_audit(con, outcome, run_id)


def write_audit(con: duckdb.DuckDBPyConnection, outcome: SourceOutcome, run_id: str) -> None:
    """One `audit.ingest_log` row per file, and one `audit.skipped_lines` row per line above
    a file's records. `quarantine_reasons` counts the file's rows in `quarantine.<source>` of
    this run by reason code (JSON); it is empty for a file not read (ignored, refused: a
    refusal keeps none of the run's rows)."""
    now = dt.datetime.now()
    reasons = _quarantine_reason_counts(con, outcome.source, outcome.quarter, run_id)
    where = {"run_id": run_id, "quarter": str(outcome.quarter), "source": outcome.source}
    insert_rows(con, "audit.ingest_log", [_log_row(where, f, reasons, now) for f in outcome.files])
    insert_rows(con, "audit.skipped_lines", [
        {**where, "file": f.file, "line": s.line, "text_sha256": s.text_sha256, "reason": s.reason, "logged_at": now}
        for f in outcome.files for s in (f.preamble or [])
    ])


def _log_row(where: dict, f: FileOutcome, reasons: dict[str, dict[str, int]], now: dt.datetime) -> dict:
    counts = None if f.outcome in {"ignored", "refused"} else reasons.get(f.file, {})
    return {
        **where, "file": f.file, "file_format": f.file_format, "encoding": f.encoding, "header_row": f.header_row,
        "rows_read": f.rows_read, "rows_loaded": f.rows_loaded, "rows_quarantined": f.rows_quarantined,
        "checksum": f.checksum, "outcome": f.outcome, "message": f.message, "logged_at": now,
        "quarantine_reasons": None if counts is None else json.dumps(counts, ensure_ascii=False, sort_keys=True),
        "records_counted": f.records_counted, "preamble_lines": len(f.preamble) if f.preamble else None,
    }


def _quarantine_reason_counts(con, source_name: str, quarter: Quarter, run_id: str) -> dict[str, dict[str, int]]:
    """file -> {reason_code: rows} of this run's rows in `quarantine.<source>`."""
    rows = con.execute(
        f"SELECT source_file, reason_code, count(*) FROM quarantine.{source_name} WHERE quarter = ? AND run_id = ? GROUP BY ALL",
        [str(quarter), run_id],
    ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for file, code, n in rows:
        counts.setdefault(file, {})[code] = int(n)
    return counts


def load_source(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    quarter_dir: Path,
    quarter: Quarter,
    run_id: str | None = None,
) -> SourceOutcome:
    """Read, clean and stage one source's delivery. Raises InputRefused (after writing
    the refusal to `audit.ingest_log`) when the delivery cannot be loaded at all.

    The quarter's staging and quarantine rows are replaced inside one transaction, rows
    going straight into the warehouse tables; a refusal or any failure rolls it back.
    """
    run_id = run_id or uuid.uuid4().hex
    outcome = SourceOutcome(source=spec.source, quarter=quarter)
    folder = quarter_dir / spec.source
    if not folder.is_dir():
        if spec.required_folder:
            message = f"{quarter} 收件箱缺少数据源文件夹 {spec.source}/（{spec.title}）"
            _record_refusal(con, outcome, run_id, message, None)
            raise InputRefused(spec.source, message)
        outcome.folder_present = False
        with transaction(con):
            _clear_quarter(con, spec, quarter)
        return outcome
    entries = sorted(p for p in folder.rglob("*") if p.is_file())
    data_files = [p for p in entries if is_data_file(p)]
    for other in entries:
        if other not in data_files:
            outcome.files.append(
                FileOutcome(file=str(other.relative_to(quarter_dir)), file_format=None, encoding=None, header_row=None,
                            checksum=None, outcome="ignored", message="不是数据文件（只读取 .csv / .xlsx），已忽略")
            )
    if not data_files:
        message = f"数据源文件夹 {spec.source}/（{spec.title}）中没有 .csv 或 .xlsx 文件"
        if spec.required_folder:
            _record_refusal(con, outcome, run_id, message, f"{spec.source}/")
            raise InputRefused(spec.source, message)
        with transaction(con):
            _clear_quarter(con, spec, quarter)
            write_audit(con, outcome, run_id)
        return outcome

    # Rows go into staging file by file, batch by batch, committed as they go and tagged
    # with this run (one transaction for a whole province's extract would hold it all in
    # memory: DuckDB keeps uncommitted rows outside its memory limit). Only at the end, in
    # one small transaction, the quarter's earlier rows make way and the audit is written;
    # a refusal or failure removes this run's rows and leaves the earlier delivery as it was.
    _discard_unfinished(con, spec, quarter)
    with transaction(con):
        _discard_run(con, spec, quarter, run_id)  # the same run loading it again
    with temp_dir(con, prefix="doudi-ingest-") as tmp:  # in the run's work folder (warehouse/workdir.py)
        try:
            _stage_files(con, spec, quarter_dir, data_files, quarter, run_id, outcome, Path(tmp))
            with transaction(con):
                quarantine_impossible_rows(con, spec, quarter, run_id)
            with transaction(con):
                _quarantine_exact_duplicates(con, spec, quarter, run_id)
            _count_rows(con, spec, quarter, outcome, run_id)
            with transaction(con):  # the earlier delivery makes way for this one
                for table in (spec.staging_table, spec.quarantine_table):
                    con.execute(f"DELETE FROM {table} WHERE quarter = ? AND run_id IS DISTINCT FROM ?", [str(quarter), run_id])
                write_audit(con, outcome, run_id)
        except BaseException as failure:
            with transaction(con):
                _discard_run(con, spec, quarter, run_id)
            if isinstance(failure, InputRefused):
                outcome.files = [f for f in outcome.files if f.outcome == "ignored"]  # nothing of this delivery stays
                _record_refusal(con, outcome, run_id, str(failure), failure.file)
            raise
    return outcome


def _stage_files(con, spec: SourceSpec, quarter_dir: Path, data_files: list[Path], quarter: Quarter, run_id: str,
                 outcome: SourceOutcome, tmp: Path) -> None:
    """Every data file read and cleaned into this run's staging and quarantine rows, its
    FileOutcome added to `outcome`. InputRefused names the file it refuses."""
    for index, path in enumerate(data_files):
        display = str(path.relative_to(quarter_dir))
        try:
            # The reader's scratch table is named here, per file, so no two files share one.
            readings = read_file(path, display, spec, con, f"__raw_{spec.source}_{index}", tmp)
        except InputRefused as refused:
            refused.file = refused.file or display
            raise
        try:
            for reading in readings:
                outcome.files.append(_load_reading(con, spec, reading, quarter, run_id))
        finally:
            for reading in readings:
                reading.close(con)


def _discard_run(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: Quarter, run_id: str) -> None:
    for table in (spec.staging_table, spec.quarantine_table):
        con.execute(f"DELETE FROM {table} WHERE quarter = ? AND run_id = ?", [str(quarter), run_id])


def _discard_unfinished(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: Quarter) -> None:
    """Rows a run left behind when its process died before it finished (no audit row)."""
    finished = "SELECT run_id FROM audit.ingest_log WHERE source = ? AND quarter = ? AND outcome <> 'refused'"
    for table in (spec.staging_table, spec.quarantine_table):
        con.execute(f"DELETE FROM {table} WHERE quarter = ? AND run_id NOT IN ({finished})", [str(quarter), spec.source, str(quarter)])


def _clear_quarter(con: duckdb.DuckDBPyConnection, spec: SourceSpec, quarter: Quarter) -> None:
    con.execute(f"DELETE FROM {spec.staging_table} WHERE quarter = ?", [str(quarter)])
    con.execute(f"DELETE FROM {spec.quarantine_table} WHERE quarter = ?", [str(quarter)])


def _load_reading(con, spec: SourceSpec, reading: FileReading, quarter: Quarter, run_id: str) -> FileOutcome:
    """Clean a parsed file batch by batch, straight into staging and quarantine."""
    display = reading.display_name
    result = FileOutcome(
        file=display, file_format=reading.file_format, encoding=reading.encoding,
        header_row=reading.header_row, checksum=reading.checksum, message="；".join(reading.notes),
        records_counted=reading.records_counted, preamble=reading.preamble,
    )
    def cleaned(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        good, bad = clean_batch(spec, raw)
        return _staged_frame(spec, good, quarter, display, run_id), _quarantine_frame(bad, quarter, display, run_id) if bad.height else None

    def insert(frames: tuple[pl.DataFrame, pl.DataFrame | None]) -> None:
        _insert(con, spec.staging_table, frames[0])
        if frames[1] is not None:
            _insert(con, spec.quarantine_table, frames[1])

    # Polars cleans the next batch in a worker thread while DuckDB, on this thread, writes
    # the one before (both release the GIL): on two cores, reading-and-writing and
    # cleaning overlap instead of taking turns. The connection is used from this thread only.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="doudi-clean") as cleaner:
        pending = None
        for raw in reading.batches(con):
            following = cleaner.submit(cleaned, raw)
            if pending is not None:
                insert(pending.result())
            pending = following
            result.rows_read += raw.height
        if pending is not None:
            insert(pending.result())
    if reading.rejected:
        rejected = pl.DataFrame(
            {
                "source_row": [r.row for r in reading.rejected],
                "__reason_code": [r.code for r in reading.rejected],
                "__reason": [r.reason for r in reading.rejected],
                "__raw_record": [json.dumps({"line": r.text}, ensure_ascii=False) for r in reading.rejected],
            },
            schema={"source_row": pl.Int32, "__reason_code": pl.Utf8, "__reason": pl.Utf8, "__raw_record": pl.Utf8},
        )
        _insert(con, spec.quarantine_table, _quarantine_frame(rejected, quarter, display, run_id))
        result.rows_read += len(reading.rejected)
    return result


def _count_rows(con, spec: SourceSpec, quarter: Quarter, outcome: SourceOutcome, run_id: str) -> None:
    loaded = dict(
        con.execute(f"SELECT source_file, count(*) FROM {spec.staging_table} WHERE quarter = ? AND run_id = ? GROUP BY ALL",
                    [str(quarter), run_id]).fetchall()
    )
    quarantined = dict(
        con.execute(
            f"SELECT source_file, count(*) FROM {spec.quarantine_table} WHERE quarter = ? AND run_id = ? GROUP BY ALL",
            [str(quarter), run_id],
        ).fetchall()
    )
    for f in outcome.files:
        if f.outcome == "ignored":
            continue
        f.rows_loaded = loaded.get(f.file, 0)
        f.rows_quarantined = quarantined.get(f.file, 0)
        if f.rows_loaded + f.rows_quarantined != f.rows_read:  # an invariant, not an input problem
            raise RuntimeError(f"{f.file}: rows read {f.rows_read} != loaded {f.rows_loaded} + quarantined {f.rows_quarantined}")
        if f.rows_read == 0:
            f.outcome, f.message = "empty", "文件没有数据行"
        elif f.rows_quarantined:
            f.outcome = "loaded_with_quarantine"


def _record_columns(spec: SourceSpec) -> list[str]:
    """The staged columns that hold the record's own values (not where it came from, nor flags)."""
    return [n for n, _ in spec.staged_columns() if n not in {"quarter", "source_file", "source_row", "run_id"} and not n.endswith("_flag")]


def _quarantine_exact_duplicates(con, spec: SourceSpec, quarter: Quarter, run_id: str) -> None:
    """A record delivered twice, identical in every field, is loaded once; the copies are
    quarantined with a reason that points to the kept row. Rows are compared by key and
    a hash of all their values."""
    data_cols = _record_columns(spec)
    key = ", ".join(f'"{k}"' for k in spec.key)
    staged_key = ", ".join(f's."{k}"' for k in spec.key)
    staged_values = ", ".join(f's."{c}"' for c in data_cols)
    same_key = " AND ".join(f's."{k}" IS NOT DISTINCT FROM k."{k}"' for k in spec.key)
    # Only rows whose key occurs more than once can be copies: found by an aggregate over the
    # key alone, so the window (and the hash of every value) runs on those few rows, not on
    # all of a province's 30 M settlements. The copies' rowids, made and dropped here: read
    # three times below, so kept as a table.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __dups AS
        WITH repeated_keys AS (
            SELECT {key} FROM {spec.staging_table} WHERE quarter = $quarter AND run_id = $run_id
            GROUP BY ALL HAVING count(*) > 1
        )
        SELECT * FROM (
            SELECT s.rowid AS r, s.source_file, s.source_row,
                   row_number() OVER w AS copy_no,
                   first_value(s.source_file) OVER w AS kept_file,
                   first_value(s.source_row) OVER w AS kept_row
            FROM {spec.staging_table} AS s
            JOIN repeated_keys AS k ON {same_key}
            WHERE s.quarter = $quarter AND s.run_id = $run_id
            WINDOW w AS (PARTITION BY {staged_key}, hash({staged_values}) ORDER BY s.source_file, s.source_row)
        ) WHERE copy_no > 1
        """,
        {"quarter": str(quarter), "run_id": run_id},
    )
    if con.execute("SELECT count(*) FROM __dups").fetchone()[0]:
        struct = ", ".join(f"'{c}': s.\"{c}\"" for c in data_cols)
        insert_select(
            con, spec.quarantine_table,
            f"""
            SELECT s.quarter, s.source_file, s.source_row, 'duplicate_record' AS reason_code,
                   '与 ' || d.kept_file || ' 第' || d.kept_row || '行完全相同的重复记录' AS reason,
                   to_json({{{struct}}}) AS raw_record, s.run_id
            FROM {spec.staging_table} AS s JOIN __dups AS d ON s.rowid = d.r
            """,
        )
        con.execute(f"DELETE FROM {spec.staging_table} WHERE rowid IN (SELECT r FROM __dups)")
    con.execute("DROP TABLE IF EXISTS __dups")


# ---- values that cannot be true ---------------------------------------------------------

NEGATIVE_AMOUNT = "negative_amount"  # a money column that does not allow negatives (clean_batch)
DATE_AFTER_EXTRACT = "date_after_extract"  # a date after the latest possible extract date

# A quarter's delivery is extracted after the quarter ends, on a day that no file records
# (a file's modification time is the copy's, not the query's): usually some weeks into the
# next quarter. So a record dated after Q.end but before the extract is true (a death on
# 5 April in a Q1 extract run on 20 April), and is loaded; the rules read a quarter up to
# Q.end, and the record counts in the quarter it belongs to. The latest day the extract can
# have been made is taken to be the end of the following quarter (EXTRACT_GRACE_QUARTERS
# after Q), and never later than today: nothing is extracted from the future. A date after
# that day cannot be true, whichever day the extract was in fact made: it is a keying error
# (a death "next year"), and loaded it would be read as true once the quarters reach it (an
# accumulating death record dated a year late would put the death a year late). The row is
# quarantined, naming the column. Only columns declared `not_after_extract` are checked:
# dates that lie ahead by nature (有效期至, an expected release, a standard's 生效日期) are not.
EXTRACT_GRACE_QUARTERS = 1


def latest_extract_date(quarter: Quarter, today: dt.date | None = None) -> dt.date:
    """The latest day the quarter's delivery can have been extracted: the end of the quarter
    EXTRACT_GRACE_QUARTERS after it, or today if that is earlier."""
    return min((quarter + EXTRACT_GRACE_QUARTERS).end, today or dt.date.today())


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quarantine_impossible_rows(con, spec: SourceSpec, quarter: Quarter, run_id: str, today: dt.date | None = None) -> None:
    """Move this run's staged rows that cannot be true to the quarantine: a date after the
    latest possible extract date in a `not_after_extract` column (`date_after_extract`), or
    a value that names no row the referenced source loaded for the quarter (`references`:
    a member whose household is not in the quarter's households file). The first failing
    reason wins: dates in the specification's column order, then the references.

    It runs once every file is staged (as `_quarantine_exact_duplicates` does): the extract
    date needs the quarter, a reference the other source's whole delivery. The quarantined
    row keeps its values as cleaned (the raw text is gone by then), like a duplicate's.
    Raises InputRefused when a referenced source loaded nothing for the quarter: every row
    would be quarantined, and that would say nothing about this delivery."""
    from sources.registry import source as source_spec

    checks: list[tuple[str, str, str]] = []  # (condition on the staged row s, reason code, reason)
    latest = latest_extract_date(quarter, today)
    for col in spec.columns:
        if col.not_after_extract:
            checks.append((
                f's."{col.name}" > DATE {_sql_text(latest.isoformat())}',
                DATE_AFTER_EXTRACT,
                f"{_header(col)}晚于本季度数据最晚可能的提取日期（{latest.isoformat()}），不可能为真，未入库",
            ))
    for ref in spec.references:
        other = source_spec(ref.source)
        finished = f"SELECT run_id FROM audit.ingest_log WHERE source = {_sql_text(other.source)} AND quarter = $quarter AND outcome <> 'refused'"
        key = other.key[0]
        loaded = con.execute(
            f"SELECT count(*) FROM {other.staging_table} WHERE quarter = $quarter AND run_id IN ({finished})", {"quarter": str(quarter)}
        ).fetchone()[0]
        if not loaded:
            raise InputRefused(
                spec.source,
                f"本季度的{other.title}（{other.source}/）没有已入库的记录，无法核对{spec.title}的{_header(spec.column(ref.column))}；"
                f"请先接收{other.title}",
            )
        checks.append((
            f's."{ref.column}" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {other.staging_table} AS o '
            f'WHERE o.quarter = $quarter AND o."{key}" = s."{ref.column}" AND o.run_id IN ({finished}))',
            ref.reason_code,
            ref.reason,
        ))
    if not checks:
        return
    code = "CASE " + " ".join(f"WHEN {cond} THEN {_sql_text(c)}" for cond, c, _ in checks) + " END"
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {_sql_text(r)}" for cond, _, r in checks) + " END"
    params = {"quarter": str(quarter), "run_id": run_id}
    # The rows to move, made and dropped here: read three times below, so kept as a table.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __impossible AS
        SELECT r, reason_code, reason FROM (
            SELECT s.rowid AS r, {code} AS reason_code, {reason} AS reason
            FROM {spec.staging_table} AS s
            WHERE s.quarter = $quarter AND s.run_id = $run_id
        ) WHERE reason_code IS NOT NULL
        """,
        params,
    )
    if con.execute("SELECT count(*) FROM __impossible").fetchone()[0]:
        data_cols = _record_columns(spec)
        struct = ", ".join(f"'{c}': s.\"{c}\"" for c in data_cols)
        insert_select(
            con, spec.quarantine_table,
            f"""
            SELECT s.quarter, s.source_file, s.source_row, i.reason_code, i.reason, to_json({{{struct}}}) AS raw_record, s.run_id
            FROM {spec.staging_table} AS s JOIN __impossible AS i ON s.rowid = i.r
            """,
        )
        con.execute(f"DELETE FROM {spec.staging_table} WHERE rowid IN (SELECT r FROM __impossible)")
    con.execute("DROP TABLE IF EXISTS __impossible")
