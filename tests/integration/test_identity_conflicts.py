"""Identity conflicts end to end, through `doudi run` (the Dagster job) over three quarters.

A hand-built roster and death extract (the rule-case runner writes them as departments
would) holds three hazards: 杨文博's ID on a death record in another person's name (an ID
copied from the row above), 王秀英's ID on a death record in her new name (she changed it),
and 胡欣玲's death recorded as 胡欣伟 (one character off). The township workbook of 2025Q2
shows two Q02 and a D01 that asks to verify the identity first. The caseworker returns
不属实 for 杨文博 and 属实 for 王秀英: in 2025Q3 王秀英's record links (D01 follows) and
杨文博's Q02 is resolved once, then silent in 2025Q4 while the record is unchanged.
"""

from __future__ import annotations

import duckdb
import openpyxl
import pytest

from pipelines.run import EXIT_OK, run_quarter
from tests.rules.runner import build_inbox

HOUSEHOLDS = [
    {"household_id": "H1", "category": "低保", "household_size": 1, "monthly_benefit_yuan": 700},
    {"household_id": "H2", "category": "特困", "household_size": 1, "monthly_benefit_yuan": 900},
    {"household_id": "H3", "category": "低保", "household_size": 1, "monthly_benefit_yuan": 700},
]
MEMBERS = [
    {"member_id": "M1", "household_id": "H1", "name": "杨文博"},
    {"member_id": "M2", "household_id": "H2", "name": "王秀英", "sex": "女"},
    {"member_id": "M3", "household_id": "H3", "name": "胡欣玲", "sex": "女"},
]
DEATHS = [
    {"member": "M1", "name": "欧阳娜娜", "death_date": "2025-05-03", "record_id": "GA0001"},
    {"member": "M2", "name": "王佳怡", "death_date": "2025-05-20", "record_id": "GA0002"},
    {"member": "M3", "name": "胡欣伟", "death_date": "2025-06-01", "record_id": "GA0003"},
]
QUARTERS = ["2025Q2", "2025Q3", "2025Q4"]


def _outsiders(quarter: str) -> dict[str, list[dict]]:
    """A record of someone off the roster in every extract (a department never sends an
    empty file), keyed by quarter."""
    q = quarter[-1]
    return {
        "medical": [{"name": "赵外", "id_number": "110101198001010017", "settlement_id": f"JS{q}001", "settlement_date": f"2025-{3 * int(q) - 1:02d}-01"}],
        "death": [{"name": "钱外", "id_number": "110101195001010014", "record_id": f"GA9{q}01", "death_date": f"2025-{3 * int(q) - 1:02d}-02"}],
        "detention": [{"name": "孙外", "id_number": "110101199001010019", "admission_date": "2024-01-01"}],
        "disability": [{"name": "李外", "id_number": "110101196001010016", "category": "肢体", "grade": "四级"}],
        "education": [{"name": "周外", "id_number": "110101201001010015"}],
    }


def _rows(path) -> list[dict]:
    rows = []
    for sheet in openpyxl.load_workbook(path).worksheets:
        header = [c.value for c in sheet[1]]
        rows += [dict(zip(header, [c.value for c in row])) for row in sheet.iter_rows(min_row=2)]
    return rows


@pytest.fixture(scope="module")
def conflict_run(tmp_path_factory, dagster_instance):
    root = tmp_path_factory.mktemp("conflicts")
    inbox, warehouse, out = root / "inbox", root / "w.duckdb", root / "out"
    for quarter in QUARTERS:  # the same roster every quarter; the deaths delivered once
        records = _outsiders(quarter)
        if quarter == "2025Q2":
            records["death"] += DEATHS
        build_inbox({"quarter": quarter, "households": HOUSEHOLDS, "members": MEMBERS, **records}, inbox)
    assert run_quarter(inbox, "2025Q2", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK
    return inbox, warehouse, out


def _warnings(warehouse, quarter: str) -> dict[tuple[str, str], tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT rule_code, member_id, warning_id, severity, status, action FROM marts.warnings WHERE quarter = ?", [quarter]
        ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_the_list_shows_what_each_warning_rests_on(conflict_run):
    _, warehouse, out = conflict_run
    found = _warnings(warehouse, "2025Q2")
    assert set(found) == {("Q02", "M1"), ("Q02", "M2"), ("D01", "M3")}
    assert found[("D01", "M3")][1] == "orange"  # no living beneficiary, but the name is only near: verify first
    with duckdb.connect(str(warehouse), read_only=True) as con:
        conflicts = con.execute("SELECT source, record_key, member_id, name_as_written FROM linked.identity_conflicts ORDER BY 2").fetchall()
        linked = con.execute("SELECT record_key, member_id, match_method, name_agreement FROM linked.matches WHERE quarter = '2025Q2'").fetchall()
    assert conflicts == [("death", "GA0001", "M1", "欧阳娜娜"), ("death", "GA0002", "M2", "王佳怡")]
    assert linked == [("GA0003", "M3", "exact_id", "variant")]
    rows = {r["姓名"]: r for path in (out / "2025Q2" / "lists").glob("*/*.xlsx") for r in _rows(path)}
    assert "姓名 欧阳娜娜（花名册：杨文博）" in rows["杨文博"]["预警依据"]
    assert "身份证号一致，姓名不同" in rows["杨文博"]["预警依据"]
    assert "GA0001" in rows["杨文博"]["预警依据"] and "2025年5月3日" in rows["杨文博"]["预警依据"]
    assert "核实" in rows["杨文博"]["处理建议"]
    d01 = rows["胡欣玲"]
    assert d01["处理建议"].startswith("先核实身份")
    assert "比对依据：死亡信息：公安户籍注销 GA0003" in d01["预警依据"] and "姓名 胡欣伟（花名册：胡欣玲）" in d01["预警依据"]
    assert "身份证号一致，姓名近似" in d01["预警依据"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        masked = con.execute("SELECT evidence::VARCHAR FROM marts.warnings_masked WHERE rule_code = 'Q02' AND member_id = 'M1'").fetchone()[0]
    assert "欧阳娜娜" not in masked and '"name_as_written":"欧阳"' in masked and "杨文博" not in masked


def test_verdicts_link_the_confirmed_record_and_silence_the_rejected_one(conflict_run, dagster_instance):
    inbox, warehouse, out = conflict_run
    q2 = _warnings(warehouse, "2025Q2")
    returned = inbox / "2025Q3" / "verifications"
    returned.mkdir(parents=True, exist_ok=True)
    (returned / "城关镇回执.csv").write_text(
        f"预警编号,核查结果,核查说明\n{q2[('Q02', 'M1')][0]},不属实,非本人，已告知公安更正\n{q2[('Q02', 'M2')][0]},属实,本人已改名\n",
        encoding="utf-8-sig",
    )
    assert run_quarter(inbox, "2025Q3", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK
    q3 = _warnings(warehouse, "2025Q3")
    assert q3[("Q02", "M1")][2] == "resolved_by_verification"
    assert ("Q02", "M2") not in q3 and ("D01", "M1") not in q3
    assert q3[("D01", "M2")][1] == "red"  # the caseworker confirmed the identity: stop the benefit
    assert not q3[("D01", "M2")][3].startswith("先核实身份")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        link = con.execute("SELECT match_method, name_agreement FROM linked.matches WHERE quarter = '2025Q3' AND record_key = 'GA0002'").fetchall()
    assert link == [("confirmed_identity", "confirmed")]
    assert run_quarter(inbox, "2025Q4", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK
    q4 = _warnings(warehouse, "2025Q4")
    assert ("Q02", "M1") not in q4  # silenced while the record is unchanged
    assert ("D01", "M2") in q4 and ("D01", "M3") in q4
