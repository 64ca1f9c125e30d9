"""The caseworkers' round trip over three quarters: the township workbooks are read back
with openpyxl (sheets, headers, drop-down, only that township), results are filled in the
way caseworkers do (rows reordered, a column added, a row deleted), returned in the next
quarter's verifications/, and marts.warnings shows them: 不属实 resolves a warning once and
then silences it while its basis is unchanged; 属实 is recorded and kept as a link label."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pytest

from pipelines.exports.lists import COLUMNS, SHEETS, VERIFICATION_CHOICES, safe_file_name
from pipelines.run import EXIT_OK, run_quarter
from tests.helpers import synthetic_inbox

QUARTERS = ["2025Q1", "2025Q2", "2025Q3"]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory, dagster_instance):
    inbox = synthetic_inbox(tmp_path_factory, "roundtrip", "2025Q1:2025Q3", households=400, seed=21)
    root = inbox.parent
    warehouse, out = root / "w.duckdb", root / "out"
    assert run_quarter(inbox, "2025Q1", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK
    return root, inbox, warehouse, out


def _sheet_rows(sheet) -> list[dict]:
    header = [c.value for c in sheet[1]]
    return [dict(zip(header, [c.value for c in row])) for row in sheet.iter_rows(min_row=2)]


def test_workbooks_have_the_sheets_headers_and_drop_down(round_trip):
    _, _, warehouse, out = round_trip
    lists = out / "2025Q1" / "lists"
    files = sorted(lists.glob("*/*.xlsx"))
    assert files
    with duckdb.connect(str(warehouse), read_only=True) as con:
        places = {file: (county, township) for county, township, file in con.execute(
            "SELECT county_code, township, file FROM audit.exports WHERE quarter = '2025Q1' AND kind = 'township_list'").fetchall()}
        assert len(places) == len(files)
        for path in files:
            book = openpyxl.load_workbook(path)
            assert book.sheetnames[:2] == [title for _, title in SHEETS[:2]]
            for sheet in book.worksheets:
                assert [c.value for c in sheet[1]] == [label for _, label, _ in COLUMNS]
                assert sheet.freeze_panes == "D2" and sheet.auto_filter.ref  # the header row and 序号, 姓名, 身份证号
                validations = sheet.data_validations.dataValidation
                assert any(all(choice in (v.formula1 or "") for choice in VERIFICATION_CHOICES) for v in validations)
            county, township = places[path.relative_to(lists).as_posix()]
            assert path.parent.name == county and path.name.endswith(f"_{safe_file_name(township)}.xlsx")
            rows = [r for sheet in book.worksheets for r in _sheet_rows(sheet)]
            assert {(r["区县代码"], r["乡镇（街道）"]) for r in rows} == {(county, township)}
            expected = con.execute(
                "SELECT count(*) FROM marts.warnings WHERE quarter = '2025Q1' AND county_code = ? AND township = ?",
                [county, township],
            ).fetchone()[0]
            assert len(rows) == expected
            assert all(r["预警依据"] and r["处理建议"] and r["政策依据"] for r in rows)


def _pick(con, rule: str) -> tuple[str, str]:
    """A warning of 2025Q1 that is raised again in 2025Q2 on the same basis, and its township file."""
    return con.execute(
        """SELECT w.warning_id, e.file
           FROM marts.warnings AS w
           JOIN rules.findings AS f ON f.quarter = '2025Q2' AND f.rule_code = w.rule_code AND f.household_id = w.household_id
                AND f.member_id IS NOT DISTINCT FROM w.member_id
           JOIN audit.exports AS e ON e.quarter = w.quarter AND e.kind = 'township_list' AND e.county_code = w.county_code
                AND e.township IS NOT DISTINCT FROM w.township
           WHERE w.quarter = '2025Q1' AND w.rule_code = ? AND md5(array_to_string(f.basis, '|')) = w.evidence_basis
           ORDER BY w.warning_id LIMIT 1""",
        [rule],
    ).fetchone()


def test_returned_results_change_the_warnings(round_trip, dagster_instance):
    root, inbox, warehouse, out = round_trip
    assert run_quarter(inbox, "2025Q2", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK  # findings of Q2 exist
    with duckdb.connect(str(warehouse), read_only=True) as con:
        dismissed, dismissed_file = _pick(con, "N02")
        confirmed_rule = "D04" if _pick(con, "D04") else "N04"
        confirmed, confirmed_file = _pick(con, confirmed_rule)
    returned = inbox / "2025Q2" / "verifications"
    returned.mkdir(parents=True, exist_ok=True)
    for relative, warning_id, result in ((dismissed_file, dismissed, "不属实"), (confirmed_file, confirmed, "属实")):
        source = out / "2025Q1" / "lists" / relative
        target = returned / f"{relative.removesuffix('.xlsx').replace('/', '_')}_{warning_id}.xlsx"
        if target.exists():
            source = target
        book = openpyxl.load_workbook(source)
        for sheet in book.worksheets:
            header = [c.value for c in sheet[1]]
            rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
            id_col, result_col, note_col = header.index("预警编号"), header.index("核查结果"), header.index("核查说明")
            for row in rows:
                if row[id_col] == warning_id:
                    row[result_col], row[note_col] = result, "入户核实"
            rows.reverse()  # caseworkers sort and filter as they like
            sheet.delete_rows(2, sheet.max_row)
            sheet.cell(row=1, column=len(header) + 1, value="走访人")
            for r, values in enumerate(rows, start=2):
                for c, value in enumerate(values, start=1):
                    sheet.cell(row=r, column=c, value=value)
                sheet.cell(row=r, column=len(header) + 1, value="李干事")
        book.save(target)
    # a CSV from another township, written by hand: one result for a warning on no list
    (returned / "手工回执.csv").write_text("预警编号,核查结果,备注\nW0000000000000000,属实,编号抄错\n", encoding="utf-8-sig")
    assert run_quarter(inbox, "2025Q2", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK
    with duckdb.connect(str(warehouse), read_only=True) as con:
        status = dict(con.execute("SELECT warning_id, status FROM marts.warnings WHERE quarter = '2025Q2'").fetchall())
        assert status[dismissed] == "resolved_by_verification"
        assert status[confirmed] == "persisting"
        result = con.execute("SELECT verification_result, verified_quarter FROM marts.warnings WHERE quarter = '2025Q2' AND warning_id = ?",
                             [confirmed]).fetchone()
        assert result == ("属实", "2025Q1")
        labels = con.execute("SELECT label, count(*) FROM linked.link_labels GROUP BY ALL").fetchall()
        assert ("non_match", 1) in labels  # the N02 certificate link was rejected
        results = con.execute(
            "SELECT warning_id, result, matched FROM marts.verification_results WHERE quarter = '2025Q2' ORDER BY ALL"
        ).fetchall()
        assert sorted(results) == sorted([(dismissed, "不属实", True), (confirmed, "属实", True), ("W0000000000000000", "属实", False)])
        precision = {r[0]: r[1:] for r in con.execute("SELECT rule_code, returned, rejected, observed_precision FROM marts.verification_precision").fetchall()}
        assert precision["N02"] == (1, 1, 0.0)
        assert precision[confirmed_rule] == (1, 0, 1.0)
        # not in the lists any more, not counted
        lists = sorted((out / "2025Q2" / "lists").glob("*/*.xlsx"))
        ids = {r["预警编号"] for p in lists for s in openpyxl.load_workbook(p).worksheets for r in _sheet_rows(s)}
        assert dismissed not in ids and confirmed in ids
    assert run_quarter(inbox, "2025Q3", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK
    with duckdb.connect(str(warehouse), read_only=True) as con:
        q3 = dict(con.execute("SELECT warning_id, status FROM marts.warnings WHERE quarter = '2025Q3'").fetchall())
        raised_again = con.execute(
            """SELECT count(*) FROM rules.findings f JOIN marts.warnings w ON w.warning_id = ? AND w.quarter = '2025Q2'
               WHERE f.quarter = '2025Q3' AND f.rule_code = w.rule_code AND f.household_id = w.household_id
                 AND f.member_id IS NOT DISTINCT FROM w.member_id AND md5(array_to_string(f.basis, '|')) = w.evidence_basis""",
            [dismissed],
        ).fetchone()[0]
    if raised_again:  # the same finding on the same basis: silenced
        assert dismissed not in q3
    report = (out / "2025Q2" / "report.html").read_text(encoding="utf-8")
    assert "核查反馈" in report and "核实准确率" in report and "找不到" in report  # the unmatched result is reported


def _documented_queries() -> list[tuple[str, str]]:
    text = (Path(__file__).parents[2] / "docs" / "analysts.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    return [(block.splitlines()[0].removeprefix("-- ").strip(), block) for block in blocks]


def test_the_documented_queries_run_on_a_published_warehouse(round_trip):
    queries = _documented_queries()
    assert len(queries) >= 8
    _, _, warehouse, _ = round_trip
    # opened as an analyst would, straight from the file (the views resolve in its own catalog)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        answered = {name: con.execute(sql).fetchall() for name, sql in queries}
    assert answered["per county"] and answered["per rule over quarters"] and answered["links by method"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        open_now = con.execute(
            "SELECT count(*) FROM marts.warnings WHERE quarter = (SELECT max(quarter) FROM audit.publications) "
            "AND status <> 'resolved_by_verification' AND rule_kind <> 'data_quality'"
        ).fetchone()[0]
    assert sum(row[1] + row[2] for row in answered["per county"]) == open_now


# Added to a copy of the report (which itself has no script): the chart labels that overlap
# one another or stick out of their chart, as Chromium lays them out.
_LABEL_CHECK = """<script>
const problems = [];
document.querySelectorAll("svg").forEach((svg, s) => {
  const frame = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll("text")].map(t => [t.getBoundingClientRect(), t.textContent]);
  boxes.forEach(([a, text], i) => {
    if (a.left < frame.left - 1 || a.right > frame.right + 1 || a.top < frame.top - 1 || a.bottom > frame.bottom + 1)
      problems.push(`chart ${s}: ${text} outside the chart`);
    boxes.slice(i + 1).forEach(([b, other]) => {
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 2 && h > 2) problems.push(`chart ${s}: ${text} overlaps ${other}`);
    });
  });
});
const out = document.createElement("pre");
out.id = "label-" + "problems";
out.textContent = JSON.stringify(problems);
document.body.appendChild(out);
</script>"""


def _report_of_quarters(round_trip, dagster_instance) -> tuple[str, list[str], Path]:
    """The latest quarter's report with at least two quarters published (run alone, this test
    runs 2025Q2 first, as test_returned_results_change_the_warnings does anyway)."""
    _, inbox, warehouse, out = round_trip
    with duckdb.connect(str(warehouse), read_only=True) as con:
        published = [r[0] for r in con.execute("SELECT DISTINCT quarter FROM audit.publications ORDER BY 1").fetchall()]
    if len(published) < 2:
        assert run_quarter(inbox, "2025Q2", warehouse, out, instance=dagster_instance).exit_code == EXIT_OK
        published = sorted({*published, "2025Q2"})
    return published[-1], published, out / published[-1] / "report.html"


@pytest.mark.browser
def test_report_renders_in_headless_chromium(round_trip, dagster_instance, tmp_path):
    import json
    import subprocess
    from decimal import Decimal

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    quarter, published, report = _report_of_quarters(round_trip, dagster_instance)
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    done = subprocess.run([chromium, *flags, "--window-size=1100,2400", f"--screenshot={shot}", report.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a page with charts, not a blank one
    dom = subprocess.run([chromium, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "低收入人口动态监测预警季度报告" in dom and dom.count("<svg") >= 5
    # counties by name (the synthetic province's two districts both called 城区), not by code
    assert "晋城市城区" in dom and "阳泉市城区" in dom
    # the money at stake: D01's estimated overpayment, summed here from the evidence itself
    _, _, warehouse, _ = round_trip
    with duckdb.connect(str(warehouse), read_only=True) as con:
        evidence = con.execute(
            "SELECT evidence::VARCHAR FROM marts.warnings WHERE quarter = ? AND rule_code = 'D01' AND status IN ('new', 'persisting')",
            [quarter],
        ).fetchall()
    overpaid = sum((Decimal(str(json.loads(e)["estimated_overpayment_yuan"])) for (e,) in evidence), Decimal(0))
    assert evidence and f"死亡后多发放保障金（估算）<b>{overpaid:,.0f}元</b>" in dom
    # the trend: every quarter published so far, in its table and on its chart's axis
    trend = dom[dom.index("二、历季度趋势"):dom.index("三、涉及金额")]
    assert all(f">{q}</th>" in trend and f">{q}</text>" in trend for q in published)
    # no chart label runs into another or out of its chart
    checked = tmp_path / "labels.html"
    checked.write_text(report.read_text(encoding="utf-8").replace("</body>", _LABEL_CHECK + "</body>"), encoding="utf-8")
    laid_out = subprocess.run([chromium, *flags, "--window-size=1100,2400", "--dump-dom", checked.as_uri()],
                              capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="label-problems">(.*?)</pre>', laid_out, flags=re.S)
    assert found, laid_out[-2000:]
    assert json.loads(found.group(1).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")) == []
