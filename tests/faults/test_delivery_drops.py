"""A delivery much smaller than last quarter's stops the quarter until it is corrected or
accepted (issue: nothing lost in silence). Before, a county's roster file with a header
and no rows ran with exit 0: the county's households vanished and their warnings showed
as resolved."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from checks.ingest import Drop, _file_scope, drop_accepted
from pipelines.cli import main
from pipelines.run import EXIT_OK, EXIT_REFUSED, accept_drop_problem
from tests.helpers import synthetic_inbox

COUNTY = "140302"


@pytest.fixture(scope="module")
def two_quarters(tmp_path_factory) -> Path:
    return synthetic_inbox(tmp_path_factory, "drops", "2025Q1:2025Q2", households=150, seed=3)


def run(inbox: Path, tmp_path: Path, quarter: str, capsys, *extra: str) -> tuple[int, str]:
    code = main(["run", "--inbox", str(inbox), "--quarter", quarter, "--warehouse", str(tmp_path / "w.duckdb"),
                 "--out", str(tmp_path / "out"), "--quiet", *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def test_an_empty_county_roster_stops_the_quarter_until_accepted(two_quarters, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    inbox = tmp_path / "inbox"
    shutil.copytree(two_quarters, inbox, ignore=shutil.ignore_patterns("truth"))
    assert run(inbox, tmp_path, "2025Q1", capsys)[0] == EXIT_OK
    roster = next((inbox / "2025Q2" / "households").glob(f"{COUNTY}_*.csv"))
    header = roster.read_bytes().splitlines(keepends=True)[0]
    roster.write_bytes(header)  # the header and no rows

    code, text = run(inbox, tmp_path, "2025Q2", capsys)
    assert code == EXIT_REFUSED, text
    assert f"文件 households/{roster.name} 只有表头、没有数据行" in text
    assert f"区县 {COUNTY}" in text and "本季度 0 行，上季度" in text
    assert f"--accept-drop households:{COUNTY}" in text
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM audit.publications WHERE quarter = '2025Q2'").fetchone()[0] == 0

    code, text = run(inbox, tmp_path, "2025Q2", capsys, "--accept-drop", f"households:{COUNTY}", "--accept-drop", f"members:{COUNTY}")
    assert code == EXIT_OK, text
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        accepted = con.execute("SELECT source, scope FROM audit.accepted_drops WHERE quarter = '2025Q2' ORDER BY ALL").fetchall()
        assert ("households", COUNTY) in accepted and ("members", COUNTY) in accepted
        assert con.execute("SELECT count(*) FROM audit.publications WHERE quarter = '2025Q2'").fetchone()[0] == 1


def test_acceptances_name_a_compared_source_and_a_scope():
    assert accept_drop_problem("households:140302") is None
    assert accept_drop_problem("medical:*") is None
    assert "应写作" in accept_drop_problem("households")
    assert "不与上季度比对" in accept_drop_problem("verifications:140302")
    assert "不与上季度比对" in accept_drop_problem("nosuch:1")


def test_which_acceptance_covers_which_drop():
    county = Drop("140302", "…", 0, 812)
    assert drop_accepted(county, "households", {"households:140302"})
    assert drop_accepted(county, "households", {"households:*"})
    assert not drop_accepted(county, "households", {"members:140302", "households:140303"})
    assert _file_scope("households/140302_低收入人口家庭.csv") == "140302"
    assert _file_scope("death/殡葬火化.csv") == "殡葬火化"
