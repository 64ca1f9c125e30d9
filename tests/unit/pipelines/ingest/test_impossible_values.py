"""Values that cannot be true are quarantined with a reason, never loaded in silence: a
negative amount where none is allowed, a date after the latest possible extract date, a
member whose household is not in the quarter's households file; and the audit log counts
each file's quarantined rows per reason. Small synthetic files (no real person), through
the real loader into a temporary warehouse."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from pipelines.ingest.load import latest_extract_date, load_source
from pipelines.quarters import Quarter
from sources.readers import InputRefused
from sources.registry import source
from warehouse.connection import connect

QUARTER = "2025Q3"  # latest possible extract date: 2025-12-31
ID_A = "140502198001014736"
ID_X = "11010519491231002X"

HOUSEHOLDS = "户编号,区县代码,乡镇（街道）,村（社区）,城乡类别,救助类别,认定日期,有效期至,家庭人口数,月保障金额,上年家庭总收入,家庭金融资产"
MEMBERS = "成员编号,户编号,姓名,身份证号,性别,出生日期,与户主关系,是否保障对象"
DEATHS = "记录编号,姓名,身份证号,死亡日期,信息来源"
MEDICAL = "结算流水号,姓名,身份证号,结算日期,就诊类别,医疗总费用,基本医保支付,大病保险支付,医疗救助支付,其他补充支付"


def household(hid: str, approval: str = "2024-01-15", validity: str = "", benefit: str = "500", income: str = "6000") -> str:
    return f"{hid},140502,城关镇,东关社区,城市,低保,{approval},{validity},1,{benefit},{income},1000"


def deliver(tmp_path: Path, source_name: str, header: str, rows: list[str]) -> Path:
    folder = tmp_path / "inbox" / QUARTER / source_name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{source_name}.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return tmp_path / "inbox" / QUARTER


def load(con, tmp_path: Path, source_name: str, header: str, rows: list[str]):
    outcome = load_source(con, source(source_name), deliver(tmp_path, source_name, header, rows), Quarter.parse(QUARTER), "test")
    assert outcome.rows_read == outcome.rows_loaded + outcome.rows_quarantined
    staged = con.execute(f"SELECT * FROM staging.{source_name} WHERE quarter = ? ORDER BY source_row", [QUARTER]).pl()
    quarantined = con.execute(f"SELECT * FROM quarantine.{source_name} WHERE quarter = ? ORDER BY source_row", [QUARTER]).pl()
    return outcome, staged, quarantined


def reasons(quarantined) -> dict[int, str]:
    return dict(zip(quarantined["source_row"].to_list(), quarantined["reason_code"].to_list()))


def test_a_negative_amount_is_quarantined_where_negatives_are_not_allowed(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        _, staged, quarantined = load(con, tmp_path, "households", HOUSEHOLDS, [household("H1"), household("H2", benefit="-50")])
        assert staged["household_id"].to_list() == ["H1"]
        assert reasons(quarantined) == {3: "negative_amount"}
        assert quarantined["reason"].item().startswith("月保障金额为负数")
        # a medical reversal (冲销) is negative by nature, and loads
        _, staged, quarantined = load(con, tmp_path, "medical", MEDICAL, [f"JS1,张三,{ID_A},2025-08-01,住院,-1200,-800,0,0,0"])
        assert staged["total_cost_yuan"].cast(float).to_list() == [-1200.0] and quarantined.height == 0


def test_a_date_after_the_extract_is_quarantined_and_a_validity_end_ahead_is_loaded(tmp_path):
    assert latest_extract_date(Quarter.parse(QUARTER), today=dt.date(2026, 12, 3)) == dt.date(2025, 12, 31)
    assert latest_extract_date(Quarter.parse("2026Q4"), today=dt.date(2026, 12, 3)) == dt.date(2026, 12, 3)  # never after today
    with connect(tmp_path / "w.duckdb") as con:
        deaths = [
            f"SW1,张三,{ID_A},2025-08-03,公安",
            f"SW2,李四,{ID_X},2026-08-03,公安",  # next year: a keying error
            f"SW3,王五,{ID_A},2025-10-20,殡葬",  # after the quarter, before the extract could be made
        ]
        _, staged, quarantined = load(con, tmp_path, "death", DEATHS, deaths)
        assert staged["record_id"].to_list() == ["SW1", "SW3"]
        assert reasons(quarantined) == {3: "date_after_extract"}
        assert quarantined["reason"].item() == "死亡日期晚于本季度数据最晚可能的提取日期（2025-12-31），不可能为真，未入库"
        assert json.loads(quarantined["raw_record"].item())["record_id"] == "SW2"

        rows = [household("H1", validity="2027-06-30"), household("H2", approval="2026-03-01")]
        _, staged, quarantined = load(con, tmp_path, "households", HOUSEHOLDS, rows)
        assert staged["household_id"].to_list() == ["H1"] and staged["validity_end"].to_list() == [dt.date(2027, 6, 30)]
        assert reasons(quarantined) == {3: "date_after_extract"} and quarantined["reason"].item().startswith("认定日期晚于")


def test_a_member_whose_household_is_not_delivered_is_quarantined(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        load(con, tmp_path, "households", HOUSEHOLDS, [household("H1"), household("H2", benefit="-1")])
        members = [
            f"M1,H1,张三,{ID_A},男,1980-01-01,户主,是",
            f"M2,H9,李四,{ID_X},女,1949-12-31,户主,是",  # no such household
            f"M3,H2,王五,{ID_A},男,1980-01-01,户主,是",  # its household was quarantined
        ]
        outcome, staged, quarantined = load(con, tmp_path, "members", MEMBERS, members)
        assert staged["member_id"].to_list() == ["M1"]
        assert reasons(quarantined) == {3: "household_not_delivered", 4: "household_not_delivered"}
        assert set(quarantined["reason"]) == {"所属家庭（户编号）不在本季度的家庭名单中"}
        assert outcome.rows_quarantined == 2 and outcome.files[0].outcome == "loaded_with_quarantine"


def test_members_are_refused_not_all_quarantined_when_no_household_was_loaded(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(InputRefused, match="低收入人口家庭"):
            load(con, tmp_path, "members", MEMBERS, [f"M1,H1,张三,{ID_A},男,1980-01-01,户主,是"])
        assert con.execute("SELECT count(*) FROM quarantine.members").fetchone()[0] == 0
        assert con.execute("SELECT outcome FROM audit.ingest_log WHERE source = 'members'").fetchall() == [("refused",)]


def test_members_load_after_households_in_dagster():
    from pipelines.ingest.assets import STAGED_ASSETS, staged_key

    members = next(a for a in STAGED_ASSETS if staged_key("members") in a.keys)
    assert staged_key("households") in members.asset_deps[staged_key("members")]


def test_the_ingest_log_counts_each_files_quarantine_per_reason(tmp_path):
    rows = [household("H1"), household("H2", benefit="-5"), household("H3", income="-100"), household("H4", approval="2026-02-01"),
            household("H4", approval="2026-02-01")]
    with connect(tmp_path / "w.duckdb") as con:
        load(con, tmp_path, "households", HOUSEHOLDS, rows)
        logged = con.execute("SELECT file, rows_quarantined, quarantine_reasons FROM audit.ingest_log WHERE source = 'households'").fetchall()
    assert [(f, n, json.loads(r)) for f, n, r in logged] == [
        ("households/households.csv", 4, {"date_after_extract": 2, "negative_amount": 2}),
    ]


def test_an_older_warehouse_gets_the_reason_counts_column(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # the log as the first release created it
        con.execute("CREATE SCHEMA audit; CREATE TABLE audit.ingest_log (run_id VARCHAR, quarter VARCHAR, source VARCHAR, file VARCHAR, "
                    "file_format VARCHAR, encoding VARCHAR, header_row INTEGER, rows_read BIGINT, rows_loaded BIGINT, "
                    "rows_quarantined BIGINT, checksum VARCHAR, outcome VARCHAR, message VARCHAR, logged_at TIMESTAMP)")
    with connect(path) as con:
        columns = {r[0]: r[1] for r in con.execute("DESCRIBE audit.ingest_log").fetchall()}
    assert columns["quarantine_reasons"] == "JSON"
