"""Feeding a rule case (YAML, written for a policy officer to read) through the code.

A case names a quarter, the roster (`households`, `members`) and the departments' records in
plain terms, each source under its inbox folder's name (`death:`, `medical:` … any source of
sources/departments); what a case leaves out is filled in from `case_defaults.yaml`. A
record says whom it is about with `member: M1`: it then carries M1's name and ID number, as
a department's record of that person would.

Two ways through, both ending in every rule family run by the real engine:
- fast (the default), a case that tests the rule: its rows are cleaned as the ingest cleans
  them (`clean_batch`) and written straight into the staging tables; a record about a
  member is linked to that member as the linker links an ID and name that agree outright,
  and roster rows the case says are one person (`roster_duplicates: [[M1, M3]]`) are paired
  as the linker's roster deduplication pairs equal IDs. No files are read, nothing is linked
  by the linker.
- end to end (`end_to_end: true`), a case whose outcome rests on reading or linking (an ID
  damaged by Excel, a name written otherwise, a repaired ID, an identity conflict): its rows
  are written as the CSV files a department sends (Chinese headers), loaded by the real
  ingest and linked by the real linker.
A fast case whose outcome could rest on the linker is refused (`NeedsEndToEnd`): a record
under another name or ID than its member's, an outsider's record carrying a member's ID or
name, two roster rows of one person it does not declare, a row the ingest would quarantine.
"""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import functools
import io
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from pipelines.ingest.load import POLARS_TYPES, clean_batch, load_source
from pipelines.link.linker import link_quarter
from pipelines.policy.window import history_window
from pipelines.quarters import Quarter
from pipelines.rules.catalog import KINDS
from pipelines.rules.engine import run_family
from sources.registry import SourceSpec, all_sources, linked_sources, source
from warehouse.connection import connect
from warehouse.writes import insert_arrow

CASE_DEFAULTS = yaml.safe_load(Path(__file__).with_name("case_defaults.yaml").read_text(encoding="utf-8"))
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ROSTER_REGION = "140502"  # the county of the ID numbers the runner gives roster members
OUTSIDER_NAME = "外部人员"  # the name on a record about no roster member
RUN_ID = "case"
# How the linker records an ID and a name that agree outright (linked.matches).
EXACT_LINK = {"match_probability": 1.0, "match_method": "exact_id", "id_agreement": "same", "name_agreement": "same"}


class NeedsEndToEnd(ValueError):
    """A case run the fast way whose outcome could rest on the linker or the ingest."""


def valid_id(region: str, born: str, sequence: int, male: bool) -> str:
    seq = sequence * 2 % 1000 + (1 if male else 0)
    first17 = f"{region}{born.replace('-', '')}{seq:03d}"
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# ---- the case's rows, source by source ------------------------------------------------------


@dataclass
class Delivery:
    """One source's rows as delivered in one quarter; `members[i]` is whom row i is about."""

    quarter: str
    spec: SourceSpec
    rows: list[dict] = field(default_factory=list)
    members: list[str | None] = field(default_factory=list)


@dataclass
class CaseRows:
    quarter: Quarter
    members: dict[str, dict]  # member_id -> the member's row as written
    deliveries: dict[tuple[str, str], Delivery]

    def add(self, quarter: str, spec: SourceSpec, row: dict, member: str | None = None) -> None:
        delivery = self.deliveries.setdefault((quarter, spec.source), Delivery(quarter, spec))
        delivery.rows.append(row)
        delivery.members.append(member)


def _defaults(spec: SourceSpec) -> dict:
    return CASE_DEFAULTS.get(spec.source, {})


def _people_roster() -> SourceSpec:
    """The roster of persons (the roster spec with an ID number): whom records are about."""
    return next(s for s in all_sources() if s.delivery == "roster" and any(c.type == "id_number" for c in s.columns))


def _roster(case: dict, rows: CaseRows) -> None:
    people = _people_roster()
    for spec in (s for s in all_sources() if s.delivery == "roster" and s is not people):
        for given in case.get(spec.source, []):
            rows.add(str(rows.quarter), spec, _defaults(spec).get("defaults", {}) | given)
    for i, given in enumerate(case.get(people.source, []), start=1):
        row = _defaults(people).get("defaults", {}) | {"name": f"成员{i}"} | given
        if "id_number" not in given:
            row["id_number"] = valid_id(row.get("region", ROSTER_REGION), _text(row["birth_date"]), i, row["sex"] == "男")
        rows.members[row[people.key[0]]] = row
        rows.add(str(rows.quarter), people, row)


def _record_key(spec: SourceSpec, row: dict, number: int) -> str:
    """The key a department would give the record, when the case gives none."""
    defaults = _defaults(spec)
    if "key" not in defaults:
        return f"{spec.source[:2].upper()}{number:05d}"
    outsider = defaults.get("outsider", {})
    values = {k: defaults.get("codes", {}).get(k, {}).get(v, v) for k, v in row.items()}
    values[spec.person.id_number] = row.get(spec.person.id_number) or valid_id(
        outsider.get("region", ROSTER_REGION), _text(outsider.get("born", "1970-01-01")), 900 + number, True
    )
    return defaults["key"].format(**values)


def _identity_as_written(spec: SourceSpec, given: dict, person: dict) -> None:
    """Refused on the fast way: a record about a member under another name or ID number."""
    for column, roster_column in ((spec.person.name, "name"), (spec.person.id_number, "id_number")):
        if column in given and _text(given[column]) != _text(person[roster_column]):
            raise NeedsEndToEnd(f"{spec.source}: a record of {given['member']} with another {column} than the roster's: "
                                "only the linker can say whether it is the member's (mark the case end_to_end)")


def _records(case: dict, rows: CaseRows, fast: bool) -> None:
    for spec in linked_sources():
        for i, given in enumerate(case.get(spec.source, []), start=1):
            row = dict(_defaults(spec).get("defaults", {})) | given
            member = row.pop("member", None)
            person = rows.members.get(member) if member else None
            if person is not None:
                if fast:
                    _identity_as_written(spec, given, person)
                row.setdefault(spec.person.name, person["name"])
                row.setdefault(spec.person.id_number, person["id_number"])
            row.setdefault(spec.person.name, OUTSIDER_NAME)
            if spec.key[0] not in row:
                row[spec.key[0]] = _record_key(spec, row, i)
            rows.add(_text(row.pop("delivered", rows.quarter)), spec, row, member if person is not None else None)
        rows.deliveries.setdefault((str(rows.quarter), spec.source), Delivery(str(rows.quarter), spec))


def _reference_data(case: dict, rows: CaseRows) -> None:
    """Sources about no person and not the roster (the local standards)."""
    linked = {s.source for s in linked_sources()}
    for spec in (s for s in all_sources() if s.delivery != "roster" and s.source not in linked):
        for given in case.get(spec.source, []):
            row = dict(given)
            rows.add(_text(row.pop("delivered", rows.quarter)), spec, row)


def case_rows(case: dict, fast: bool = False) -> CaseRows:
    rows = CaseRows(Quarter.parse(case["quarter"]), {}, {})
    _roster(case, rows)
    _records(case, rows, fast)
    _reference_data(case, rows)
    return rows


# ---- end to end: files, the ingest, the linker ----------------------------------------------------


def _write(folder: Path, delivery: Delivery) -> None:
    spec, rows = delivery.spec, delivery.rows
    columns = [c for c in spec.columns if any(c.name in row for row in rows) or c.required]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.headers[0] for c in columns])
    for row in rows:
        writer.writerow([_text(row.get(c.name)) for c in columns])
    path = folder / spec.source / f"{spec.source}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def build_inbox(case: dict, inbox: Path) -> dict[str, dict]:
    """Write the case's files; return the members as written (for records about them)."""
    rows = case_rows(case)
    for (quarter, _), delivery in rows.deliveries.items():
        _write(inbox / quarter, delivery)
    return rows.members


def _run_end_to_end(case: dict, con, workdir: Path) -> None:
    inbox = workdir / "inbox"
    build_inbox(case, inbox)
    for quarter_dir in sorted(p for p in inbox.iterdir() if p.is_dir()):
        for folder in sorted(p for p in quarter_dir.iterdir() if p.is_dir()):
            load_source(con, source(folder.name), quarter_dir, Quarter.parse(quarter_dir.name), RUN_ID)
    link_quarter(con, Quarter.parse(case["quarter"]))


# ---- fast: staging rows and links as the ingest and the linker would write them -----------------


def _file(spec: SourceSpec) -> str:
    return f"{spec.source}/{spec.source}.csv"


def _ingest_log(delivery: Delivery) -> dict:
    """The audit row the ingest writes for the delivery (N01 counts the months of settlements
    the warehouse holds from it)."""
    n = len(delivery.rows)
    return {"run_id": RUN_ID, "quarter": delivery.quarter, "source": delivery.spec.source, "file": _file(delivery.spec),
            "rows_read": n, "rows_loaded": n, "rows_quarantined": 0, "outcome": "loaded" if n else "empty"}


def _insert(con, table: str, rows: list[dict]) -> None:
    # One statement for all rows: row by row (executemany) costs DuckDB a few ms each.
    if rows:
        insert_arrow(con, table, pl.DataFrame(rows).to_arrow())


def _stage(con, delivery: Delivery) -> pl.DataFrame:
    """The delivery's rows cleaned by the ingest's cleaning, into staging; the cleaned rows
    (with `__member`). Empty cells are null, as the CSV reader gives them."""
    spec, n = delivery.spec, len(delivery.rows)
    file = _file(spec)
    raw = pl.DataFrame(
        {c.name: [_text(row.get(c.name)) or None for row in delivery.rows] for c in spec.columns}
        | {"source_row": list(range(2, n + 2)), "__member": delivery.members},
        schema={c.name: pl.Utf8 for c in spec.columns} | {"source_row": pl.Int32, "__member": pl.Utf8},
    )
    if not n:
        return raw
    good, bad = clean_batch(spec, raw)
    if bad.height:
        raise NeedsEndToEnd(f"{spec.source}: the ingest quarantines a row ({bad['__reason_code'][0]}): mark the case end_to_end")
    staged = good.with_columns(quarter=pl.lit(delivery.quarter), source_file=pl.lit(file), run_id=pl.lit(RUN_ID))
    insert_arrow(con, spec.staging_table, staged.select(
        [pl.col(name).cast(POLARS_TYPES[kind]) for name, kind in spec.staged_columns()]
    ).to_arrow())
    return good


def _in_view(spec: SourceSpec, delivered: Quarter, quarter: Quarter, frame: pl.DataFrame) -> pl.Series:
    """Which of a delivery's records the quarter links (the source's `person.window`)."""
    if delivered > quarter or (spec.person.window == "quarter" and delivered != quarter):
        return pl.Series([False] * frame.height)
    if spec.person.window == "history":
        window = history_window(quarter)
        return frame[spec.record_date].is_between(window.start, window.end, closed="right")
    return pl.Series([True] * frame.height)


def _links(quarter: Quarter, staged: dict[tuple[str, str], pl.DataFrame]) -> list[dict]:
    links = {}
    for spec in linked_sources():
        for (delivered, name), frame in staged.items():
            if name != spec.source or not frame.height:
                continue
            about = frame.filter(_in_view(spec, Quarter.parse(delivered), quarter, frame) & pl.col("__member").is_not_null())
            for key, member in about.select(spec.key[0], "__member").iter_rows():
                links[(spec.source, key, member)] = {"quarter": str(quarter), "source": spec.source, "record_key": key,
                                                     "member_id": member, **EXACT_LINK}
    return list(links.values())


def _roster_pairs(case: dict, quarter: Quarter) -> list[dict]:
    return [
        {"quarter": str(quarter), "member_id_l": min(pair), "member_id_r": max(pair), "match_probability": 1.0,
         "match_method": "exact_id"}
        for pair in case.get("roster_duplicates", [])
    ]


def _linker_free(case: dict, staged: dict[tuple[str, str], pl.DataFrame], quarter: Quarter) -> None:
    """Refuse a fast case whose people the linker could see otherwise than the case says."""
    people = _people_roster()
    roster = staged[(str(quarter), people.source)]
    declared = {frozenset(pair) for pair in case.get("roster_duplicates", [])}
    for columns in (["id_number"], ["name", "birth_date"]):
        same = roster.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in columns])).group_by(columns).agg(pl.col("member_id"))
        for members in same["member_id"]:
            if len(members) > 1 and frozenset(members) not in declared:
                raise NeedsEndToEnd(f"roster rows {sorted(members)} share {columns}: declare roster_duplicates or mark end_to_end")
    ids, names = set(roster["id_number"].drop_nulls()), set(roster["name"].drop_nulls())
    flags = dict(roster.select("member_id", "id_number_flag").iter_rows())
    for spec in linked_sources():
        for (_, name), frame in staged.items():
            if name != spec.source or not frame.height:
                continue
            for member, id_number, person in frame.select("__member", spec.person.id_number, spec.person.name).iter_rows():
                if member is None and (id_number in ids or person in names):
                    raise NeedsEndToEnd(f"{spec.source}: an outsider's record with a roster member's ID or name: mark end_to_end")
                if member is not None and flags.get(member) != "ok":
                    raise NeedsEndToEnd(f"{spec.source}: a record of {member}, whose ID is not clean as written: mark end_to_end")


def _run_fast(case: dict, con) -> None:
    rows = case_rows(case, fast=True)
    staged = {key: _stage(con, delivery) for key, delivery in rows.deliveries.items()}
    _linker_free(case, staged, rows.quarter)
    _insert(con, "audit.ingest_log", [_ingest_log(delivery) for delivery in rows.deliveries.values()])
    _insert(con, "linked.matches", _links(rows.quarter, staged))
    _insert(con, "linked.roster_duplicates", _roster_pairs(case, rows.quarter))


# ---- a case ------------------------------------------------------------------------------------------


@functools.cache
def _empty_warehouse() -> Path:
    """A warehouse with its schema, made once per process: every case starts from a copy
    (creating the schema is a tenth of a second a case)."""
    folder = Path(tempfile.mkdtemp(prefix="doudi-rule-cases-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with connect(folder / "warehouse.duckdb"):
        pass
    return folder / "warehouse.duckdb"


def run_case(case: dict, workdir: Path, end_to_end: bool | None = None, kinds: tuple[str, ...] = KINDS) -> list[dict]:
    """The findings (rules.findings rows as dicts) of the rule families `kinds` (a family
    reads no other's findings) for the case's quarter, the case's own way (`end_to_end` in
    the case) unless told."""
    quarter = Quarter.parse(case["quarter"])
    end_to_end = case.get("end_to_end", False) if end_to_end is None else end_to_end
    warehouse = workdir / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_empty_warehouse(), warehouse)
    with connect(warehouse, schema=False) as con:
        if end_to_end:
            _run_end_to_end(case, con, workdir)
        else:
            _run_fast(case, con)
        for kind in kinds:
            run_family(con, kind, quarter)
        rows = con.execute(
            "SELECT rule_code, household_id, member_id, severity, due_date, action, evidence FROM rules.findings WHERE quarter = ?",
            [str(quarter)],
        ).fetchall()
        # The case's warehouse is read once more at most (from its log) and then thrown away:
        # writing it into the file on closing is time for nothing.
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
    return [
        {"rule": r[0], "household": r[1], "member": r[2], "severity": r[3], "due_date": r[4], "action": r[5], "evidence": json.loads(r[6])}
        for r in rows
    ]
