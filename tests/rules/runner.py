"""Feeding a rule case (YAML, written for a policy officer to read) through the real code.

A case names a quarter, the roster (households, members) and the departments' records in
plain terms; the runner writes them as the CSV files a department would send (Chinese
headers), loads them with the real ingest, links them with the real linker, runs every
rule family, and returns the findings. A record says whom it is about with `member: M1`:
it then carries M1's name and ID number, as a department's record of that person would.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from pipelines.ingest.load import load_source
from pipelines.link.linker import link_quarter
from pipelines.quarters import Quarter
from pipelines.rules.catalog import KINDS
from pipelines.rules.engine import run_family
from sources.registry import source
from warehouse.connection import connect

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

HOUSEHOLD_DEFAULTS = {
    "county_code": "140502", "township": "城关镇", "village": "东关社区", "urban_rural": "城市", "category": "低保",
    "approval_date": "2024-01-15", "household_size": 1, "monthly_benefit_yuan": 0, "annual_income_yuan": 0,
    "financial_assets_yuan": 0,
}
MEMBER_DEFAULTS = {"sex": "男", "birth_date": "1970-01-01", "relation": "户主", "is_beneficiary": "是"}
RECORD_DEFAULTS = {
    "medical": {"visit_type": "住院", "institution": "县人民医院", "total_cost_yuan": 0, "basic_insurance_yuan": 0,
                "critical_illness_yuan": 0, "medical_assistance_yuan": 0, "other_supplementary_yuan": 0},
    "death": {"info_source": "公安户籍注销"},
    "detention": {"detention_type": "监狱服刑", "facility": "省第一监狱"},
    "disability": {"status": "有效", "issue_date": "2020-01-01"},
    "education": {"school": "城区第一中学", "stage": "高中", "study_mode": "全日制", "high_fee": "否", "tuition_yuan": 0,
                  "boarding_yuan": 0, "childcare_yuan": 0, "enrolment_status": "在读"},
}
KEYS = {"medical": "settlement_id", "death": "record_id", "detention": "record_id", "disability": "certificate_no", "education": "student_no"}
CATEGORY_DIGIT = {"视力": "1", "听力": "2", "言语": "3", "肢体": "4", "智力": "5", "精神": "6", "多重": "7"}
GRADE_DIGIT = {"一级": "1", "二级": "2", "三级": "3", "四级": "4"}


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


def _write(folder: Path, source_name: str, rows: list[dict]) -> None:
    spec = source(source_name)
    columns = [c for c in spec.columns if any(c.name in row for row in rows) or c.required]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.headers[0] for c in columns])
    for row in rows:
        writer.writerow([_text(row.get(c.name)) for c in columns])
    path = folder / source_name / f"{source_name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def build_inbox(case: dict, inbox: Path) -> dict[str, dict]:
    """Write the case's files; return the members as written (for records about them)."""
    quarter = case["quarter"]
    households = [HOUSEHOLD_DEFAULTS | h for h in case.get("households", [])]
    members = {}
    for i, m in enumerate(case.get("members", []), start=1):
        row = MEMBER_DEFAULTS | {"name": f"成员{i}"} | m
        if "id_number" not in m:
            row["id_number"] = valid_id(row.get("region", "140502"), _text(row["birth_date"]), i, row["sex"] == "男")
        for flag in ("is_beneficiary",):
            if isinstance(row.get(flag), bool):
                row[flag] = "是" if row[flag] else "否"
        members[row["member_id"]] = row
    folder = inbox / quarter
    _write(folder, "households", households)
    _write(folder, "members", list(members.values()))
    deliveries: dict[tuple[str, str], list[dict]] = {}
    for source_name in ("medical", "death", "detention", "disability", "education"):
        for i, rec in enumerate(case.get(source_name, []), start=1):
            row = dict(RECORD_DEFAULTS[source_name]) | rec
            person = members.get(rec.get("member")) if rec.get("member") else None
            if person is not None:
                row.setdefault("name", person["name"])
                row.setdefault("id_number", person["id_number"])
            row.setdefault("name", "外部人员")
            if source_name == "disability" and "certificate_no" not in row:
                row["certificate_no"] = (row.get("id_number") or valid_id("140525", "1960-01-01", 900 + i, True)) + CATEGORY_DIGIT[row["category"]] + GRADE_DIGIT[row["grade"]]
            if source_name == "education" and "student_no" not in row:
                row["student_no"] = "G" + (row.get("id_number") or valid_id("140525", "2010-01-01", 900 + i, True))
            row.setdefault(KEYS[source_name], f"{source_name[:2].upper()}{i:05d}")
            deliveries.setdefault((row.pop("delivered", quarter), source_name), []).append(row)
    for source_name in ("medical", "death", "detention", "disability", "education"):
        deliveries.setdefault((quarter, source_name), [])
    for (delivered, source_name), rows in deliveries.items():
        _write(inbox / delivered, source_name, rows)
    if case.get("standards"):
        by_quarter: dict[str, list[dict]] = {}
        for row in case["standards"]:
            row = dict(row)
            by_quarter.setdefault(row.pop("delivered", quarter), []).append(row)
        for delivered, rows in by_quarter.items():
            _write(inbox / delivered, "standards", rows)
    return members


def run_case(case: dict, workdir: Path) -> list[dict]:
    """The findings (rules.findings rows as dicts) of every rule for the case's quarter."""
    inbox = workdir / "inbox"
    build_inbox(case, inbox)
    quarter = Quarter.parse(case["quarter"])
    with connect(workdir / "warehouse.duckdb") as con:
        for quarter_dir in sorted(p for p in inbox.iterdir() if p.is_dir()):
            for folder in sorted(p for p in quarter_dir.iterdir() if p.is_dir()):
                load_source(con, source(folder.name), quarter_dir, quarter_dir.name, "case")
        link_quarter(con, quarter)
        for kind in KINDS:
            run_family(con, kind, quarter)
        rows = con.execute(
            "SELECT rule_code, household_id, member_id, severity, due_date, action, evidence FROM rules.findings WHERE quarter = ?",
            [str(quarter)],
        ).fetchall()
    import json

    return [
        {"rule": r[0], "household": r[1], "member": r[2], "severity": r[3], "due_date": r[4], "action": r[5], "evidence": json.loads(r[6])}
        for r in rows
    ]
