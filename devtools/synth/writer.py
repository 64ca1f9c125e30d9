"""Writing deliveries as files: the inbox layout of CONTRACT.md §2.

Each file gets its own habits, drawn at random: encoding (UTF-8, UTF-8 with BOM,
GB18030) or Excel, header wording (from the source's aliases), date and money formats,
synonyms for coded values, a title row above the header, extra columns, an optional column
left out, and sometimes the damage of having been opened and saved in Excel.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from devtools.synth.extracts import Delivery
from devtools.synth.messiness import DATE_STYLES, MONEY_STYLES, excel_rounded, excel_text, render_dates, render_money
from sources.registry import SourceSpec, source

FILE_TITLES = {"death": None, "detention": "羁押服刑人员"}


@dataclass
class WriterOptions:
    xlsx_share: float = 0.15
    xlsx_max_rows: int = 40_000
    excel_damage_share: float = 0.12  # CSV files that went through Excel
    duplicate_row_rate: float = 0.0015


def _file_name(delivery: Delivery, group: str, spec: SourceSpec) -> str:
    if delivery.split_by == "__county":
        return f"{group}_{spec.title}"
    if delivery.source == "detention":
        return FILE_TITLES["detention"]
    return str(group)


def write_delivery(
    rng: np.random.Generator, delivery: Delivery, quarter_dir: Path, quarter_label: str, options: WriterOptions, prefix: str = ""
) -> pl.DataFrame:
    """Write one source's files (their names after `prefix`); return per-record metadata for the truth."""
    spec = source(delivery.source)
    folder = quarter_dir / delivery.source
    folder.mkdir(parents=True, exist_ok=True)
    records = delivery.records
    metas = []
    groups = records.partition_by(delivery.split_by, as_dict=True, maintain_order=True) if delivery.split_by else {("all",): records}
    for key, frame in sorted(groups.items(), key=lambda kv: str(kv[0])):
        group = key[0] if isinstance(key, tuple) else key
        metas.append(_write_file(rng, frame, spec, folder, prefix + _file_name(delivery, group, spec), quarter_label, options))
    return pl.concat(metas) if metas else pl.DataFrame()


@dataclass
class _Habits:
    """How one file writes its values (drawn once per file)."""

    date_style: str
    money_style: str
    synonyms: bool  # coded values in the department's own words
    excel_style: str | None  # what Excel did to the IDs: general, number, numeric_cells


def _write_file(
    rng, frame: pl.DataFrame, spec: SourceSpec, folder: Path, stem: str, quarter_label: str, options: WriterOptions
) -> pl.DataFrame:
    # (the draws from rng keep their order: the same seed writes the same files)
    as_xlsx = rng.random() < options.xlsx_share and frame.height <= options.xlsx_max_rows
    key_col = spec.key[0] if len(spec.key) == 1 else None  # a record's own key (standards have none)
    if key_col and spec.source in {"medical", "death"} and frame.height:
        frame = _with_duplicate_rows(rng, frame, options)
    hidden = [c for c in frame.columns if c.startswith("__")]
    meta_cols = {"__person_id", "__id_damage", "__name_variant", "__expect_quarantine", "__hazard", "__hazard_person", "__sibling_like"}
    meta = frame.select([pl.col(key_col).alias("record_key")] if key_col else []).with_columns(
        [frame[c] for c in hidden if c in meta_cols]
    )
    data = frame.drop(hidden)
    habits = _draw_habits(rng, data, spec, as_xlsx, options)
    texts, native, meta = _render_columns(rng, frame, data, spec, habits, as_xlsx, meta)
    meta = _excel_id_damage(texts, native, meta, habits.excel_style)
    table, headers, title = _layout(rng, spec, texts, as_xlsx, quarter_label)
    if as_xlsx:
        path = folder / f"{stem}.xlsx"
        _write_xlsx(path, table, {headers[c]: v for c, v in native.items() if c in headers}, title)
    else:
        path = _write_csv(rng, folder / f"{stem}.csv", table, title)
    return meta.with_columns(pl.lit(str(path.relative_to(folder.parent))).alias("file"), pl.lit(spec.source).alias("source"))


def _with_duplicate_rows(rng, frame: pl.DataFrame, options: WriterOptions) -> pl.DataFrame:
    """Exact duplicate rows (a record keyed twice): the copy must be quarantined."""
    dup = rng.random(frame.height) < options.duplicate_row_rate
    copies = frame.filter(pl.Series(dup))
    if not copies.height:
        return frame
    # (a copy of a row quarantined for its own reason goes with that reason)
    reason = pl.lit("duplicate_record")
    if "__expect_quarantine" in copies.columns:
        reason = pl.coalesce("__expect_quarantine", reason)
    copies = copies.with_columns(reason.alias("__expect_quarantine"))
    return pl.concat([frame, copies.select(frame.columns)], how="vertical_relaxed")


def _draw_habits(rng, data: pl.DataFrame, spec: SourceSpec, as_xlsx: bool, options: WriterOptions) -> _Habits:
    date_style = DATE_STYLES[rng.integers(0, len(DATE_STYLES))]
    money_style = MONEY_STYLES[rng.integers(0, len(MONEY_STYLES))]
    synonyms = rng.random() < 0.15
    excel_style = None
    if "id_number" in data.columns and spec.source not in {"members", "households"}:
        if not as_xlsx and rng.random() < options.excel_damage_share:
            excel_style = "general" if rng.random() < 0.5 else "number"
        elif as_xlsx and rng.random() < 0.2:
            excel_style = "numeric_cells"
    return _Habits(date_style, money_style, synonyms, excel_style)


def _render_columns(
    rng, frame: pl.DataFrame, data: pl.DataFrame, spec: SourceSpec, habits: _Habits, as_xlsx: bool, meta: pl.DataFrame
) -> tuple[dict[str, pl.Series], dict[str, list], pl.DataFrame]:
    """Each column the file carries as text (and, for an Excel file, the cells it writes
    typed); `meta` says which rows lost their ID with a column left out."""
    bad_date = frame["__bad_date_column"] if "__bad_date_column" in frame.columns else None
    texts: dict[str, pl.Series] = {}
    native: dict[str, list] = {}  # typed cells for Excel files
    for col in spec.columns:
        if col.name not in data.columns:
            continue
        if not col.required and col.name not in {"validity_end"} and rng.random() < 0.1:
            if col.name == "id_number":  # the file carries no ID column at all
                meta = meta.with_columns(pl.lit("missing").alias("__id_damage"))
            continue  # an optional column this department does not send
        text = _render_column(rng, col, data[col.name], habits, as_xlsx, bad_date, native)
        blank = f"__blank_{col.name}"  # a value the department left empty in this row
        if blank in frame.columns:
            text = pl.select(pl.when(frame[blank]).then(pl.lit(None)).otherwise(text)).to_series()
            native.pop(col.name, None)
        texts[col.name] = text.fill_null("")
    return texts, native, meta


def _render_column(rng, col, values: pl.Series, habits: _Habits, as_xlsx: bool, bad_date: pl.Series | None, native: dict) -> pl.Series:
    if col.type == "date":
        text = render_dates(values, habits.date_style)
        if bad_date is not None:
            text = pl.select(pl.when(bad_date == col.name).then(pl.lit("不详")).otherwise(text)).to_series()
        if as_xlsx and habits.date_style == "iso" and rng.random() < 0.5:
            unreadable = bad_date.to_list() if bad_date is not None else [None] * len(values)
            native[col.name] = ["不详" if b == col.name else v for v, b in zip(values.to_list(), unreadable)]
        return text
    if col.type == "money":
        text = render_money(values, habits.money_style)
        if as_xlsx and rng.random() < 0.5:
            native[col.name] = values.to_list()
        return text
    if col.type == "enum" and habits.synonyms:
        mapping = {canonical: (words[0] if words else canonical) for canonical, words in col.values.items()}
        return values.cast(pl.Utf8).replace(mapping)
    return values.cast(pl.Utf8)


def _excel_id_damage(texts: dict[str, pl.Series], native: dict[str, list], meta: pl.DataFrame, excel_style: str | None) -> pl.DataFrame:
    """The IDs as Excel left them (as text in a CSV saved from Excel, or as number cells)."""
    if excel_style in {"general", "number"} and "id_number" in texts:
        damaged_text, damaged = excel_text(texts["id_number"], excel_style)
        texts["id_number"] = damaged_text
        label = "excel6" if excel_style == "general" else "excel15"
        meta = meta.with_columns(_excel_damage(pl.Series(damaged), label))
    if excel_style == "numeric_cells" and "id_number" in texts:
        ids = texts["id_number"].to_numpy().astype("<U40")
        numeric = np.strings.isdigit(ids) & (np.strings.str_len(ids) == 18)
        rounded = np.zeros(len(ids))
        if numeric.any():
            rounded[numeric] = excel_rounded(ids[numeric], 15).astype(np.float64) * 1000.0
        native["id_number"] = [float(r) if k else t for r, k, t in zip(rounded, numeric, ids.tolist())]
        meta = meta.with_columns(_excel_damage(pl.Series(numeric), "excel15"))
    return meta


def _layout(rng, spec: SourceSpec, texts: dict[str, pl.Series], as_xlsx: bool, quarter_label: str) -> tuple[pl.DataFrame, dict, str | None]:
    """The table as the file lays it out: header wording, column order, a 序号 or 备注
    column, a title row."""
    headers = {}
    for col in spec.columns:
        if col.name in texts:
            keep_first = rng.random() < 0.75 or len(col.headers) == 1
            headers[col.name] = col.headers[0] if keep_first else col.headers[int(rng.integers(1, len(col.headers)))]
    order = list(texts)
    if rng.random() < 0.2:
        order = list(rng.permutation(order))
    table = pl.DataFrame({headers[c]: texts[c] for c in order})
    if rng.random() < 0.3:
        table = table.with_columns(pl.int_range(1, table.height + 1).cast(pl.Utf8).alias("序号")).select(["序号", *table.columns])
    if rng.random() < 0.2:
        table = table.with_columns(pl.lit("").alias("备注"))
    title = f"{quarter_label} {spec.title}" if rng.random() < (0.4 if as_xlsx else 0.12) else None
    return table, headers, title


def _write_csv(rng, path: Path, table: pl.DataFrame, title: str | None) -> Path:
    encoding = ["utf-8", "utf-8-sig", "gb18030"][int(rng.choice(3, p=[0.4, 0.3, 0.3]))]
    buffer = io.BytesIO()
    table.write_csv(buffer)
    text = buffer.getvalue().decode("utf-8")
    if title:
        text = f"{title}\n" + text
    path.write_bytes(text.encode(encoding))
    return path


def _excel_damage(damaged: pl.Series, label: str) -> pl.Expr:
    """The damage a row ends with once Excel has rounded its ID: a typo underneath the
    rounding is kept in the label (two faults: the truth calls that unrecoverable)."""
    typo = pl.col("__id_damage").is_in(["typo_sub", "typo_swap"])
    return (
        pl.when(damaged & typo).then(pl.lit(f"{label}+typo"))
        .when(damaged).then(pl.lit(label))
        .otherwise(pl.col("__id_damage"))
        .alias("__id_damage")
    )


def _write_xlsx(path: Path, table: pl.DataFrame, native: dict[str, list], title: str | None) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    workbook.set_properties({"created": dt.datetime(2025, 1, 1)})  # same seed, same bytes
    sheet = workbook.add_worksheet("Sheet1")
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    row = 0
    if title:
        sheet.write_string(row, 0, title)
        row += 2  # a title, then an empty row, then the header
    for col, name in enumerate(table.columns):
        sheet.write_string(row, col, name)
    columns = [native.get(name) or table[name].to_list() for name in table.columns]
    typed = [name in native for name in table.columns]
    for i in range(table.height):  # Excel files are written cell by cell; they stay small
        row += 1
        for col, values in enumerate(columns):
            value = values[i]
            if value is None or value == "":
                continue
            if typed[col] and isinstance(value, dt.date):
                sheet.write_datetime(row, col, dt.datetime(value.year, value.month, value.day), date_format)
            elif typed[col] and isinstance(value, (int, float)):
                sheet.write_number(row, col, value)
            else:
                sheet.write_string(row, col, str(value))
    workbook.close()
