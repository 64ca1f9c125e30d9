"""Department specifications, one file per source: `sources/departments/<source>.yaml`.

Each department extract is described as data: which inbox folder it comes from, its key,
and for every canonical column the Chinese headers departments use for it (aliases), its
type, and whether a missing header refuses the source (`required`) or an empty or
unreadable value sends the row to quarantine (`not_null`). The cleaning that a type
implies lives in `sources.cleaning`; what is particular to one department (deriving an ID
from a certificate number, say) lives in that department's module.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SPEC_DIR = Path(__file__).with_name("departments")

COLUMN_TYPES = {"key", "text", "county_code", "name", "id_number", "date", "money", "integer", "enum", "boolean"}
DELIVERIES = {"roster", "accumulating", "full_stock"}
DROP_CHECKS = {"county", "total", "none"}  # see SourceSpec.drop_check
# The order in which sources are listed everywhere (inbox, audit, reports).
SOURCE_ORDER = ["households", "members", "medical", "disability", "education", "death", "detention", "standards", "verifications"]


class SpecError(ValueError):
    """A source specification file is malformed (a bug in the project, not in the input)."""


def normalise_header(text: str) -> str:
    """Header text as compared with aliases: NFKC (full-width brackets and letters become
    half-width), no whitespace, no required-field markers (*, ※), no BOM."""
    text = unicodedata.normalize("NFKC", str(text or "")).replace("\ufeff", "")
    text = re.sub(r"[\s*※]+", "", text)
    return text


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    required: bool
    not_null: bool
    headers: tuple[str, ...]
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    allow_negative: bool = False
    on_invalid: str = "null"  # "null" (keep the row, value null, flagged) or "quarantine"
    minimum: int | None = None
    # A date that cannot lie in the future of the delivery (a death, a settlement, a birth):
    # one after the latest possible extract date sends the row to quarantine
    # (`date_after_extract`, pipelines.ingest.load.latest_extract_date). Not for dates that
    # are legitimately ahead (有效期至, an expected release, a standard's 生效日期).
    not_after_extract: bool = False

    @property
    def has_flag(self) -> bool:
        return self.type not in {"key", "text"}

    def staged_columns(self) -> list[tuple[str, str]]:
        """(column, DuckDB type) pairs this column becomes in staging."""
        if self.type == "id_number":
            return [
                (self.name, "VARCHAR"),
                (f"{self.name}_valid", "BOOLEAN"),
                (f"{self.name}_partial", "VARCHAR"),
                (f"{self.name}_raw", "VARCHAR"),
                (f"{self.name}_flag", "VARCHAR"),
            ]
        duck = {
            "key": "VARCHAR",
            "text": "VARCHAR",
            "county_code": "VARCHAR",
            "name": "VARCHAR",
            "date": "DATE",
            "money": "DECIMAL(18,2)",
            "integer": "INTEGER",
            "enum": "VARCHAR",
            "boolean": "BOOLEAN",
        }[self.type]
        cols = [(self.name, duck)]
        if self.has_flag:
            cols.append((f"{self.name}_flag", "VARCHAR"))
        return cols


@dataclass(frozen=True)
class Reference:
    """A column whose value must be the key of a row another source loaded for the same
    quarter (a member's 户编号 in the households file). A row whose value is not is
    quarantined with `reason_code` and `reason` (pipelines.ingest.load.quarantine_impossible_rows),
    and the other source is loaded first (a Dagster dependency, pipelines.ingest.assets)."""

    column: str
    source: str
    reason_code: str
    reason: str  # in Chinese, for the quarantine table


@dataclass(frozen=True)
class SourceSpec:
    source: str
    title: str
    delivery: str
    required_folder: bool
    key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    all_sheets: bool = False  # read every sheet of a workbook (returned caseworker lists)
    # For a person-bearing extract: the column that dates a record and the one that says
    # most about it, as a warning's evidence shows a record to the caseworker (death_date,
    # info_source: 死亡信息：公安户籍注销 GA2025…，2025-03-02).
    record_date: str | None = None
    record_detail: str | None = None
    references: tuple[Reference, ...] = ()  # columns that name another source's rows
    # How this quarter's delivery is compared with the last quarter's before it is used
    # (checks/ingest.py): per county (rosters), in total (department extracts), or not
    # at all (sources whose size says nothing, e.g. returned lists).
    drop_check: str = "total"

    # ---- headers -------------------------------------------------------------------
    @functools.cached_property
    def header_lookup(self) -> dict[str, str]:
        """normalised header text -> canonical column name."""
        lookup: dict[str, str] = {}
        for col in self.columns:
            for header in col.headers:
                lookup.setdefault(normalise_header(header), col.name)
        return lookup

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def required_columns(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.required]

    # ---- tables --------------------------------------------------------------------
    @property
    def staging_table(self) -> str:
        return f"staging.{self.source}"

    @property
    def quarantine_table(self) -> str:
        return f"quarantine.{self.source}"

    def staged_columns(self) -> list[tuple[str, str]]:
        cols: list[tuple[str, str]] = [("quarter", "VARCHAR")]
        for col in self.columns:
            cols.extend(col.staged_columns())
        cols += [("source_file", "VARCHAR"), ("source_row", "INTEGER"), ("run_id", "VARCHAR")]
        return cols

    def staging_ddl(self) -> str:
        body = ",\n  ".join(f'"{name}" {typ}' for name, typ in self.staged_columns())
        return f"CREATE TABLE IF NOT EXISTS {self.staging_table} (\n  {body}\n);"

    def quarantine_ddl(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.quarantine_table} (\n"
            "  quarter VARCHAR, source_file VARCHAR, source_row INTEGER, reason_code VARCHAR,\n"
            "  reason VARCHAR, raw_record JSON, run_id VARCHAR\n);"
        )


def _load(path: Path) -> SourceSpec:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    where = path.name
    try:
        delivery = data["delivery"]
        if delivery not in DELIVERIES:
            raise SpecError(f"{where}: delivery must be one of {sorted(DELIVERIES)}")
        columns = []
        for raw in data["columns"]:
            if raw["type"] not in COLUMN_TYPES:
                raise SpecError(f"{where}: column {raw['name']}: unknown type {raw['type']!r}")
            if raw["type"] == "enum" and not raw.get("values"):
                raise SpecError(f"{where}: enum column {raw['name']} lists no values")
            on_invalid = raw.get("on_invalid", "quarantine" if raw.get("not_null") else "null")
            if on_invalid not in {"null", "quarantine"}:
                raise SpecError(f"{where}: column {raw['name']}: on_invalid must be null or quarantine")
            if raw.get("not_after_extract") and raw["type"] != "date":
                raise SpecError(f"{where}: column {raw['name']}: not_after_extract is for date columns")
            if raw.get("allow_negative") and raw["type"] != "money":
                raise SpecError(f"{where}: column {raw['name']}: allow_negative is for money columns")
            columns.append(
                ColumnSpec(
                    name=raw["name"],
                    type=raw["type"],
                    required=bool(raw.get("required", False)),
                    not_null=bool(raw.get("not_null", False)),
                    headers=tuple(str(h) for h in raw["headers"]),
                    values={str(k): tuple(str(v) for v in vs) for k, vs in (raw.get("values") or {}).items()},
                    allow_negative=bool(raw.get("allow_negative", False)),
                    on_invalid=on_invalid,
                    minimum=raw.get("min"),
                    not_after_extract=bool(raw.get("not_after_extract", False)),
                )
            )
        key = data["key"]
        key = tuple(key) if isinstance(key, list) else (key,)
        names = {c.name for c in columns}
        missing_key = [k for k in key if k not in names]
        if missing_key:
            raise SpecError(f"{where}: key column(s) {missing_key} not declared")
        for field_name in ("record_date", "record_detail"):
            if data.get(field_name) and data[field_name] not in names:
                raise SpecError(f"{where}: {field_name} {data[field_name]!r} is not a declared column")
        references = []
        for column, ref in (data.get("references") or {}).items():
            if column not in names:
                raise SpecError(f"{where}: references: {column!r} is not a declared column")
            if not isinstance(ref, dict) or not {"source", "reason_code", "reason"} <= ref.keys():
                raise SpecError(f"{where}: references: {column} needs source, reason_code and reason")
            references.append(Reference(str(column), str(ref["source"]), str(ref["reason_code"]), str(ref["reason"])))
        drop_check = data.get("drop_check", "county" if delivery == "roster" else "total")
        if drop_check not in DROP_CHECKS:
            raise SpecError(f"{where}: drop_check must be one of {sorted(DROP_CHECKS)}")
        return SourceSpec(
            drop_check=drop_check,
            source=data["source"],
            title=data["title"],
            delivery=delivery,
            required_folder=bool(data.get("required_folder", True)),
            key=key,
            columns=tuple(columns),
            all_sheets=bool(data.get("all_sheets", False)),
            record_date=data.get("record_date"),
            record_detail=data.get("record_detail"),
            references=tuple(references),
        )
    except KeyError as exc:
        raise SpecError(f"{where}: missing field {exc}") from None


@functools.cache
def all_sources() -> tuple[SourceSpec, ...]:
    specs = {p.stem: _load(p) for p in SPEC_DIR.glob("*.yaml")}
    ordered = [specs.pop(name) for name in SOURCE_ORDER if name in specs]
    ordered = tuple(ordered + [specs[k] for k in sorted(specs)])
    # A referenced source is listed (and so loaded, by whoever loads in this order) first.
    position = {spec.source: i for i, spec in enumerate(ordered)}
    for spec in ordered:
        for ref in spec.references:
            if ref.source not in position or len(ordered[position[ref.source]].key) != 1:
                raise SpecError(f"{spec.source}.yaml: references: {ref.column} -> {ref.source!r} is not a source with a one-column key")
            if position[ref.source] > position[spec.source]:
                raise SpecError(f"{spec.source}.yaml: references {ref.source!r}, which is listed after it (SOURCE_ORDER)")
    return ordered


def source(name: str) -> SourceSpec:
    for spec in all_sources():
        if spec.source == name:
            return spec
    raise KeyError(f"unknown source {name!r}")


def source_title(name: str) -> str:
    """A source's Chinese title (its spec's), or the folder name for one doudi does not know."""
    return {spec.source: spec.title for spec in all_sources()}.get(name, name)
