"""A department is one spec file: a made-up eighth department (车辆登记信息), declared by a
file in the folder DOUDI_DEPARTMENTS_DIR names and nowhere else, is ingested, checked,
linked and available to the rules of a `doudi run`.

The quarter runs in a subprocess: the Dagster definitions (one asset and its checks per
department) are built when `pipelines.definitions` is imported, so the variable must be set
before that, as a deployment sets it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from sources import registry

QUARTER = "2025Q1"
REPO = Path(__file__).resolve().parents[2]

VEHICLES_SPEC = """\
# A made-up department for the test: vehicle registrations, a full stock each quarter.
source: vehicles
title: 车辆登记信息
order: 75
delivery: full_stock
key: registration_no
person:
  name: name
  id_number: id_number
  window: quarter
record_date: registration_date
record_detail: model
columns:
  - {name: registration_no, type: key, required: true, not_null: true, headers: [登记编号]}
  - {name: name, type: name, required: true, headers: [姓名, 车主姓名]}
  - {name: id_number, type: id_number, required: true, headers: [身份证号]}
  - {name: registration_date, type: date, required: true, not_after_extract: true, headers: [登记日期]}
  - {name: model, type: text, required: false, headers: [品牌型号]}
"""
OTHER_NAME = "司徒无忌"  # written on a member's ID: an identity conflict, not a link
OUTSIDER_ID = "110101195001010014"


def _members(inbox: Path, scratch: Path) -> list[tuple[str, str, str]]:
    """Three members (member_id, name, ID as written) read from the generated roster with
    the real readers, each with a valid ID and a name no one else on the roster has."""
    from pipelines.ingest.load import load_source
    from pipelines.quarters import Quarter
    from warehouse.connection import connect

    with connect(scratch) as con:
        for name in ("households", "members"):
            load_source(con, registry.source(name), inbox / QUARTER, Quarter.parse(QUARTER), "pick")
        rows = con.execute(
            """SELECT member_id, name, id_number_raw FROM staging.members
               WHERE id_number_valid AND name IS NOT NULL AND length(name) BETWEEN 2 AND 3
               QUALIFY count(*) OVER (PARTITION BY id_number) = 1 AND count(*) OVER (PARTITION BY name) = 1
               ORDER BY member_id"""
        ).fetchall()
    third = next(r for r in rows[2:] if not set(r[1]) & set(OTHER_NAME))
    return [rows[0], rows[1], third]


@pytest.fixture(scope="module")
def vehicles_run(tmp_path_factory):
    from devtools.synth.generate import generate
    from pipelines.quarters import quarter_range

    root = tmp_path_factory.mktemp("vehicles")
    departments = root / "departments"
    departments.mkdir()
    (departments / "vehicles.yaml").write_text(VEHICLES_SPEC, encoding="utf-8")
    inbox = root / "inbox"
    summary = generate(inbox, quarter_range(f"{QUARTER}:{QUARTER}"), households=80, seed=19)
    assert "vehicles" not in summary["rows_delivered"][QUARTER]  # the generator does not know it
    m1, m2, m3 = _members(inbox, root / "scratch.duckdb")
    rows = [
        ("V1", m1[1], m1[2], "2024-05-01", "五菱宏光"),
        ("V2", m2[1], m2[2], "2023-11-12", "比亚迪秦"),
        ("V3", "外部人员", OUTSIDER_ID, "2022-01-05", "长安之星"),
        ("V4", OTHER_NAME, m3[2], "2024-08-20", "吉利帝豪"),
    ]
    folder = inbox / QUARTER / "vehicles"
    folder.mkdir()
    with (folder / "车辆登记.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("登记编号", "姓名", "身份证号", "登记日期", "品牌型号"), *rows])
    warehouse, out, summary_file = root / "w.duckdb", root / "out", root / "summary.json"
    env = os.environ | {"DOUDI_DEPARTMENTS_DIR": str(departments), "DAGSTER_HOME": str(root / "dagster_home")}
    env.pop("DOUDI_WAREHOUSE_KEY", None)
    env.pop("DOUDI_WAREHOUSE_KEY_FILE", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--inbox", str(inbox), "--quarter", QUARTER, "--warehouse", str(warehouse),
         "--out", str(out), "--quiet", "--json", str(summary_file)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return SimpleNamespace(warehouse=warehouse, departments=departments, members=(m1, m2, m3),
                           summary=json.loads(summary_file.read_text(encoding="utf-8")))


def _query(warehouse: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_the_department_is_ingested(vehicles_run):
    rows = _query(vehicles_run.warehouse, "SELECT registration_no, model FROM staging.vehicles WHERE quarter = ? ORDER BY 1", [QUARTER])
    assert [r[0] for r in rows] == ["V1", "V2", "V3", "V4"] and rows[0][1] == "五菱宏光"
    assert _query(vehicles_run.warehouse, "SELECT rows_read, rows_loaded FROM audit.ingest_log WHERE source = 'vehicles'") == [(4, 4)]


def test_the_department_is_checked_with_the_key_checks_of_its_spec(vehicles_run):
    results = _query(vehicles_run.warehouse,
                     "SELECT check_name, passed, metadata FROM audit.check_results WHERE asset = 'staging/vehicles' ORDER BY 1")
    assert [(name, passed) for name, passed, _ in results] == [("delivery_accepted", True), ("value_quality", True)]
    expectations = json.loads(results[0][2])["expectations"]
    assert [(e["expectation"], e["why"]) for e in expectations] == [
        ("expect_table_row_count_to_be_between(table)", "车辆登记信息数据不能为空"),
        ("expect_column_values_to_be_unique(registration_no)", "登记编号唯一"),
        ("expect_column_values_to_not_be_null(registration_no)", "每条记录都有登记编号"),
    ]


def test_the_members_records_are_linked_and_the_borrowed_id_is_a_conflict(vehicles_run):
    (m1, _, _), (m2, _, _), (m3, _, _) = vehicles_run.members
    links = _query(vehicles_run.warehouse, """SELECT record_key, member_id, match_method FROM linked.matches
                                              WHERE source = 'vehicles' AND match_method <> 'roster_duplicate'""")
    assert sorted(links) == [("V1", m1, "exact_id"), ("V2", m2, "exact_id")]
    conflicts = _query(vehicles_run.warehouse,
                       "SELECT record_key, member_id, name_as_written FROM linked.identity_conflicts WHERE source = 'vehicles'")
    assert conflicts == [("V4", m3, OTHER_NAME)]


def test_the_rules_read_the_department(vehicles_run, monkeypatch):
    """Q02 asks about the borrowed ID, showing the record as the department wrote it; and
    the engine's inputs built for a rule that reads links hold the department's links."""
    m3 = vehicles_run.members[2][0]
    [(basis, evidence)] = _query(vehicles_run.warehouse,
                                 "SELECT basis, evidence FROM rules.findings WHERE rule_code = 'Q02' AND member_id = ?", [m3])
    assert basis == ["vehicles:V4"]
    [record] = json.loads(evidence)["records"]
    assert (record["source_title"], record["name_as_written"], record["detail"]) == ("车辆登记信息", OTHER_NAME, "吉利帝豪")

    from pipelines.policy.params import default_parameters
    from pipelines.quarters import Quarter
    from pipelines.rules.engine import prepare_inputs

    monkeypatch.setenv("DOUDI_DEPARTMENTS_DIR", str(vehicles_run.departments))
    registry.all_sources.cache_clear()
    try:
        q = Quarter.parse(QUARTER)
        with duckdb.connect(str(vehicles_run.warehouse), read_only=True) as con:
            # a rule that reads the links and the identity conflicts (by its declared inputs and its SQL)
            reads_links = SimpleNamespace(inputs=("int_links", "int_identity_conflicts"),
                                          sql="select * from int_links, int_identity_conflicts")
            prepare_inputs(con, q, default_parameters().at(q.end), [reads_links])
            linked = con.execute(
                "SELECT record_key FROM int_links WHERE source = 'vehicles' AND for_ineligibility AND corroborated").fetchall()
            conflict = con.execute("SELECT source_title, detail FROM int_identity_conflicts WHERE source = 'vehicles'").fetchall()
    finally:
        monkeypatch.delenv("DOUDI_DEPARTMENTS_DIR")
        registry.all_sources.cache_clear()
    assert sorted({r[0] for r in linked}) == ["V1", "V2"] and conflict == [("车辆登记信息", "吉利帝豪")]


def test_the_run_summary_names_the_department(vehicles_run):
    """`doudi run --json`: the rows read and the links, under the department's title."""
    [read] = [s for s in vehicles_run.summary["sources"] if s["source"] == "vehicles"]
    assert (read["title"], read["rows_read"], read["rows_loaded"]) == ("车辆登记信息", 4, 4)
    assert sum(link["records"] for link in vehicles_run.summary["links"] if link["source"] == "vehicles") >= 2
