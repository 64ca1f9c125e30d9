"""`doudi whatif` and the `policy_replay` job on a published province: a replay with no change
reproduces what was published, the warehouse is never written, refusals write nothing, and
the household list is masked unless asked otherwise."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import main
from pipelines.resources import DoudiResource
from pipelines.run import EXIT_OK, EXIT_REFUSED
from pipelines.whatif.job import policy_replay_job
from warehouse.connection import connect
from warehouse.writes import insert_row


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def whatif(warehouse: Path, out: Path, *args: str) -> int:
    return main(["whatif", "--warehouse", str(warehouse), "--out", str(out), *args])


@pytest.fixture(scope="module")
def province(run_province):
    assert all(o.exit_code == EXIT_OK for o in run_province.outcomes.values())
    return run_province


def _summary(out: Path) -> list[dict]:
    with (out / "summary.csv").open(encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_a_replay_without_a_change_gains_and_loses_nothing(province, tmp_path, capsys):
    before = sha(province.warehouse)
    quarters = f"{province.quarters[0]}:{province.quarters[-1]}"
    assert whatif(province.warehouse, tmp_path / "w", "--quarters", quarters) == EXIT_OK
    rows = _summary(tmp_path / "w")
    assert rows and sum(int(r["warnings_now"]) for r in rows) > 0
    assert all(r["gained"] == r["lost"] == r["changed"] == "0" for r in rows), [r for r in rows if r["gained"] != "0" or r["lost"] != "0"]
    assert all(r["warnings_now"] == r["warnings_after"] for r in rows)
    with connect(province.warehouse, read_only=True) as con:
        published = con.execute(
            "SELECT count(*) FROM rules.findings WHERE quarter BETWEEN ? AND ?", [province.quarters[0], province.quarters[-1]]
        ).fetchone()[0]
    assert sum(int(r["warnings_now"]) for r in rows) == published
    assert sha(province.warehouse) == before
    assert "新增预警 0 条，减少 0 条" in capsys.readouterr().out


def test_a_change_is_counted_by_county_and_the_list_is_masked(province, tmp_path):
    before = sha(province.warehouse)
    quarter = province.quarters[-1]
    assert whatif(province.warehouse, tmp_path / "w", "--quarters", quarter, "--set", "temporary_assistance.medical_burden_share=0.05") == 0
    rows = _summary(tmp_path / "w")
    n06 = [r for r in rows if r["rule_code"] == "N06"]
    assert sum(int(r["gained"]) for r in n06) > 0, "a lower burden share raises N06 for more households"
    assert all(int(r["lost"]) == 0 for r in n06)
    assert all(r["county_code"] for r in n06) and all(r["county_name"] for r in n06)
    households = (tmp_path / "w" / "households.csv").read_text(encoding="utf-8-sig")
    with connect(province.warehouse, read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT name FROM staging.members WHERE quarter = ? AND length(name) >= 2", [quarter]).fetchall()]
        ids = [r[0] for r in con.execute("SELECT id_number FROM staging.members WHERE quarter = ? AND id_number IS NOT NULL", [quarter]).fetchall()]
    assert not [n for n in names if n in households], "a full name in the masked household list"
    assert not [i for i in ids if i in households], "an ID number in the masked household list"
    assert "**********" in households
    page = (tmp_path / "w" / "whatif.html").read_text(encoding="utf-8")
    assert not [i for i in ids if i in page]
    assert sha(province.warehouse) == before


def test_full_names_only_when_asked(province, tmp_path):
    quarter = province.quarters[-1]
    args = ("--quarters", quarter, "--set", "temporary_assistance.medical_burden_share=0.05", "--full")
    assert whatif(province.warehouse, tmp_path / "w", *args) == 0
    header = (tmp_path / "w" / "households.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert "姓名" in header and "身份证号" in header and "脱敏" not in header


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "expenditure_poverty.financial_asset_limit_month=48"), "expenditure_poverty.financial_asset_limit_months"),
        (("--set", "expenditure_poverty.financial_asset_limit_months=四十八"), "值应为数字"),
        (("--set", "expenditure_poverty.financial_asset_limit_months=48.5"), "整数"),
        (("--set", "expenditure_poverty.financial_asset_limit_months=4年"), "单位不对"),
        (("--set", "temporary_assistance.medical_burden_share=1.5"), "比例应在 0 到 1 之间"),
        (("--set", "expenditure_poverty.candidate_categories=低保边缘"), "应为列表"),
        (("--set", "medical_assistance.inpatient_assistance_rate={特困: 0.9}"), "键为"),
        (("--set", "expenditure_poverty.rigid_expenditure_lookback_months=24"), "不重跑比对"),
        (("--set", "financial_asset_limit_months"), "参数名=值"),
    ],
)
def test_a_bad_change_is_refused_and_nothing_is_written(province, tmp_path, capsys, args, message):
    before = sha(province.warehouse)
    assert whatif(province.warehouse, tmp_path / "a" / "w", "--quarters", province.quarters[-1], *args) == EXIT_REFUSED
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    assert sha(province.warehouse) == before


def test_a_quarter_not_published_is_refused(province, tmp_path, capsys):
    before = sha(province.warehouse)
    assert whatif(province.warehouse, tmp_path / "a" / "w", "--quarters", "2024Q4:2025Q1") == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "2024Q4" in err and "没有已发布的结果" in err
    assert not list(tmp_path.iterdir())  # not even the output's parent folder
    assert sha(province.warehouse) == before


def test_a_quarter_whose_latest_run_did_not_publish_is_refused(province, tmp_path, capsys):
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(province.warehouse.read_bytes())
    with connect(copy) as con:  # a later run of the last quarter that was refused
        insert_row(con, "audit.runs", run_id="later", quarter=province.quarters[-1], region="all", started_at=dt.datetime.now(),
                   outcome="not_published")
    assert whatif(copy, tmp_path / "w", "--quarters", province.quarters[-1]) == EXIT_REFUSED
    assert "没有已发布的结果" in capsys.readouterr().err
    assert whatif(copy, tmp_path / "w", "--quarters", province.quarters[0]) == EXIT_OK


def test_an_output_folder_that_is_not_a_replays_is_never_replaced(province, tmp_path, capsys):
    quarter = ("--quarters", province.quarters[-1])
    assert whatif(province.warehouse, province.warehouse.parent, *quarter) == EXIT_REFUSED  # holds the warehouse
    assert "包含数据仓库" in capsys.readouterr().err
    assert province.warehouse.exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("x", encoding="utf-8")
    assert whatif(province.warehouse, other, *quarter) == EXIT_REFUSED
    assert (other / "keep.txt").exists()
    assert whatif(province.warehouse, tmp_path / "w", *quarter) == EXIT_OK  # a replay's own folder is replaced
    (tmp_path / "w" / "summary.csv").write_text("stale", encoding="utf-8")
    assert whatif(province.warehouse, tmp_path / "w", *quarter) == EXIT_OK
    assert (tmp_path / "w" / "summary.csv").read_text(encoding="utf-8-sig") != "stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "w"]


def test_a_county_without_its_own_document_cites_the_one_it_follows(province):
    """The lists' 政策依据 and the report: 晋市民〔2023〕2号 is 晋城's (1405) own; any other
    county's warnings cite it as 参照."""
    import openpyxl

    quarter = province.quarters[-1]
    seen = {"own": 0, "referred": 0}
    for book in sorted((province.out / quarter / "lists").rglob("*.xlsx")):
        county = book.parent.name
        sheets = openpyxl.load_workbook(book, read_only=True).worksheets
        cells = [str(c) for ws in sheets for row in ws.iter_rows(values_only=True) for c in row if c and "晋市民〔2023〕2号" in str(c)]
        for cell in cells:
            if county.startswith("1405"):
                assert "参照 晋市民" not in cell, (county, cell)
                seen["own"] += 1
            else:
                assert "参照 晋市民〔2023〕2号" in cell, (county, cell)
                seen["referred"] += 1
    assert seen["own"] and seen["referred"], seen
    report = (province.out / quarter / "report.html").read_text(encoding="utf-8")
    assert "八、政策依据" in report and "参照 焦民〔2024〕8号" in report


def test_the_policy_replay_job_runs_from_dagster(province, tmp_path):
    resource = DoudiResource(warehouse=str(province.warehouse), out=str(tmp_path / "out"))
    config = {"ops": {"replay_rules": {"config": {"quarters": province.quarters[-1],
                                                   "changes": ["temporary_assistance.medical_burden_share=0.05"]}}}}
    result = policy_replay_job.execute_in_process(run_config=config, resources={"doudi": resource})
    assert result.success
    out = Path(result.output_for_node("replay_rules"))
    assert (out / "whatif.html").exists() and out.parent == tmp_path / "whatif"
    bad = {"ops": {"replay_rules": {"config": {"quarters": province.quarters[-1], "changes": ["no_such_parameter=1"]}}}}
    failed = policy_replay_job.execute_in_process(run_config=bad, resources={"doudi": resource}, raise_on_error=False)
    assert not failed.success
    assert "未知参数 no_such_parameter" in str(failed.all_events)
    assert isinstance(policy_replay_job, dg.JobDefinition)
