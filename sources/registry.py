"""Department specifications, one file per source: `sources/departments/<source>.yaml`.

Each department extract is described as data: which inbox folder it comes from, its key,
and for every canonical column the Chinese headers departments use for it (aliases), its
type, and whether a missing header refuses the source (`required`) or an empty or
unreadable value sends the row to quarantine (`not_null`). The cleaning that a type
implies lives in `sources.cleaning`; what is particular to one department (deriving an ID
from a certificate number, say) lives in that department's module.

A spec also says where the source stands among the others (`order`), and, for a record
about one person, which columns identify that person and which staged rows a quarter
links (`person`): the linker's identities, the linked sources' list and the key checks are
built from the specs, so a department is added by adding its file. A deployment adds its
own departments without touching the code: the files in the folder named by
`DOUDI_DEPARTMENTS_DIR` are read beside the built-in ones (docs/inbox.md).
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SPEC_DIR = Path(__file__).with_name("departments")
# A folder of a deployment's own department specs, read beside SPEC_DIR's.
EXTRA_DIR_ENV = "DOUDI_DEPARTMENTS_DIR"

COLUMN_TYPES = {"key", "text", "county_code", "name", "id_number", "date", "money", "integer", "enum", "boolean"}
DELIVERIES = {"roster", "accumulating", "full_stock"}
DROP_CHECKS = {"county", "total", "none"}  # see SourceSpec.drop_check
# Which staged rows of a person-bearing source a quarter links (Person.window):
#   history           every copy delivered up to the quarter whose record_date lies in the
#                     quarter's history window (settlements: the rules look back that far)
#   delivered_so_far  every copy delivered up to the quarter (deaths: a death stays true)
#   quarter           this quarter's delivery only (full stocks: the latest copy is the truth)
WINDOWS = ("history", "delivered_so_far", "quarter")


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
class Person:
    """A record about one person, which the linker links to a roster member: the columns
    that say who the person is, and which staged rows a quarter links (WINDOWS)."""

    name: str  # a column of type name
    id_number: str  # a column of type id_number
    window: str


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
    # Where the source is listed among the others (inbox, audit, reports, the linker's
    # union): ascending, each number used once.
    order: int = 0
    # The record is about one person, linked to a roster member (None: roster, reference data).
    person: Person | None = None
    # Whether a key value occurs once per quarter's delivery, which a blocking check holds
    # the delivery to (checks/gx_suites.key_checks). Not for returned lists, which may
    # come back twice in a quarter.
    key_unique: bool = True

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


def _column(where: str, raw: dict) -> ColumnSpec:
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
    return ColumnSpec(
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


def _references(where: str, data: dict, names: set[str]) -> tuple[Reference, ...]:
    references = []
    for column, ref in (data.get("references") or {}).items():
        if column not in names:
            raise SpecError(f"{where}: references: {column!r} is not a declared column")
        if not isinstance(ref, dict) or not {"source", "reason_code", "reason"} <= ref.keys():
            raise SpecError(f"{where}: references: {column} needs source, reason_code and reason")
        references.append(Reference(str(column), str(ref["source"]), str(ref["reason_code"]), str(ref["reason"])))
    return tuple(references)


def _window(where: str, raw: dict, delivery: str, record_date: str | None) -> str:
    """The person's window: declared, or `quarter` for a full stock (each delivery replaces
    the last, so only this quarter's rows are true); an accumulating source must say."""
    window = raw.get("window", "quarter" if delivery == "full_stock" else None)
    if window is None:
        raise SpecError(f"{where}: person: an accumulating delivery must say which copies are linked (window: one of {list(WINDOWS)})")
    if window not in WINDOWS:
        raise SpecError(f"{where}: person: window must be one of {list(WINDOWS)}")
    if window != "quarter" and delivery != "accumulating":
        raise SpecError(f"{where}: person: window {window} is for accumulating deliveries (a full stock replaces the last)")
    if window == "history" and not record_date:
        raise SpecError(f"{where}: person: window history dates records by record_date, which the spec does not declare")
    return window


def _person(where: str, data: dict, columns: tuple[ColumnSpec, ...], key: tuple[str, ...]) -> Person | None:
    raw = data.get("person")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not {"name", "id_number"} <= raw.keys():
        raise SpecError(f"{where}: person needs name and id_number (the columns that identify the person)")
    if data["delivery"] == "roster":
        raise SpecError(f"{where}: person: a roster is what records are linked to, not a linked source")
    if len(key) != 1:
        raise SpecError(f"{where}: person: a linked record needs a one-column key (the record_key of its links)")
    types = {c.name: c.type for c in columns}
    for field_name in ("name", "id_number"):
        if types.get(raw[field_name]) != field_name:
            raise SpecError(f"{where}: person: {field_name} {raw[field_name]!r} is not a declared column of type {field_name}")
    return Person(str(raw["name"]), str(raw["id_number"]), _window(where, raw, data["delivery"], data.get("record_date")))


def _load(path: Path) -> SourceSpec:
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: not a department specification (a YAML mapping)")
    try:
        return _spec(where, path.stem, data)
    except KeyError as exc:
        raise SpecError(f"{where}: missing field {exc}") from None


def _spec(where: str, stem: str, data: dict) -> SourceSpec:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", str(data["source"])):
        raise SpecError(f"{where}: source {data['source']!r} must be lower-case letters, digits and _ (it names tables)")
    if data["source"] != stem:
        raise SpecError(f"{where}: source {data['source']!r} must be the file's name ({stem})")
    if not isinstance(data["order"], int) or isinstance(data["order"], bool):
        raise SpecError(f"{where}: order must be a whole number")
    delivery = data["delivery"]
    if delivery not in DELIVERIES:
        raise SpecError(f"{where}: delivery must be one of {sorted(DELIVERIES)}")
    columns = tuple(_column(where, raw) for raw in data["columns"])
    key = data["key"]
    key = tuple(key) if isinstance(key, list) else (key,)
    names = {c.name for c in columns}
    missing_key = [k for k in key if k not in names]
    if missing_key:
        raise SpecError(f"{where}: key column(s) {missing_key} not declared")
    for field_name in ("record_date", "record_detail"):
        if data.get(field_name) and data[field_name] not in names:
            raise SpecError(f"{where}: {field_name} {data[field_name]!r} is not a declared column")
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
        columns=columns,
        all_sheets=bool(data.get("all_sheets", False)),
        record_date=data.get("record_date"),
        record_detail=data.get("record_detail"),
        references=_references(where, data, names),
        order=data["order"],
        person=_person(where, data, columns, key),
        key_unique=bool(data.get("key_unique", True)),
    )


def spec_files() -> list[Path]:
    """The built-in spec files and, when DOUDI_DEPARTMENTS_DIR names a folder, its files
    beside them; a file of the same name in both is an error naming both."""
    files = {p.name: p for p in sorted(SPEC_DIR.glob("*.yaml"))}
    extra = os.environ.get(EXTRA_DIR_ENV)
    if extra:
        folder = Path(extra)
        if not folder.is_dir():
            raise SpecError(f"{EXTRA_DIR_ENV}={extra}: not a folder")
        for path in sorted(folder.glob("*.yaml")):
            if path.name in files:
                raise SpecError(f"{path}: a department of this name is already declared in {files[path.name]}")
            files[path.name] = path
    return list(files.values())


def _check_order(ordered: tuple[SourceSpec, ...]) -> None:
    for before, after in zip(ordered, ordered[1:]):
        if before.order == after.order:
            raise SpecError(f"{before.source}.yaml and {after.source}.yaml: both have order {before.order}")
    # A referenced source is listed (and so loaded, by whoever loads in this order) first.
    position = {spec.source: i for i, spec in enumerate(ordered)}
    for spec in ordered:
        for ref in spec.references:
            if ref.source not in position or len(ordered[position[ref.source]].key) != 1:
                raise SpecError(f"{spec.source}.yaml: references: {ref.column} -> {ref.source!r} is not a source with a one-column key")
            if position[ref.source] > position[spec.source]:
                raise SpecError(f"{spec.source}.yaml: references {ref.source!r}, which is listed after it (order)")


@functools.cache
def all_sources() -> tuple[SourceSpec, ...]:
    """Every department's spec, in `order`."""
    ordered = tuple(sorted((_load(p) for p in spec_files()), key=lambda spec: spec.order))
    _check_order(ordered)
    return ordered


def linked_sources() -> tuple[SourceSpec, ...]:
    """The person-bearing extracts (the specs with `person`), in source order: what the
    linker links to roster members and the rules read through links."""
    return tuple(spec for spec in all_sources() if spec.person is not None)


def source(name: str) -> SourceSpec:
    for spec in all_sources():
        if spec.source == name:
            return spec
    raise KeyError(f"unknown source {name!r}")


def source_title(name: str) -> str:
    """A source's Chinese title (its spec's), or the folder name for one doudi does not know."""
    return {spec.source: spec.title for spec in all_sources()}.get(name, name)
