"""No ID number and no name leaves the outputs meant for them.

Two quarters run through `doudi run` (the real command line, a Dagster home of its own),
with a returned list whose 核查说明 names the household head, and a refused delivery.
Then every place a person's identity could escape to is scanned for every ID number and
every full name in the data: what the command printed, every log record, every file the
Dagster instance wrote (event log, run storage, asset metadata, compute logs), the report,
the audit tables and the analyst tables and views. The township workbooks, which must carry
names and IDs, are scanned with the same scanner to show that it finds them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pytest

from pipelines.cli import main
from pipelines.run import EXIT_OK, EXIT_REFUSED
from tests.helpers import synthetic_inbox

QUARTERS = ["2025Q1", "2025Q2"]
IDENTITY_SOURCES = ("members", "medical", "disability", "education", "death", "detention")
FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")


class Identities:
    """Every ID number and full name in the staged data, and a scanner for them."""

    def __init__(self, ids: set[str], names: set[str]):
        self.ids = ids
        self.id_prefixes = {i[:15] for i in ids}  # an Excel-rounded or 15-digit form still identifies
        self.names = {n for n in names if len(n) >= 2}
        self.longest_name = max(map(len, self.names))

    def find(self, text: str) -> list[str]:
        """What identifies someone in `text`, described without repeating it."""
        found = []
        flat = text.translate(FULL_WIDTH).upper()
        for candidate in set(re.findall(r"(?<!\d)\d{15,17}[\dX]?(?!\d)", flat)):
            if candidate in self.ids or candidate[:15] in self.id_prefixes:
                found.append(f"an ID number ({len(candidate)} characters)")
        for run in set(re.findall(r"[\u4e00-\u9fff·]{2,}", text)):
            for size in range(2, min(len(run), self.longest_name) + 1):
                for start in range(len(run) - size + 1):
                    if run[start:start + size] in self.names:
                        found.append(f"a name ({size} characters) in a run of {len(run)} characters")
        return found


ID_HEADERS = ("身份证号", "公民身份号码", "身份证号码", "证件号码", "身份证件号码")


def _drop_id_header(path: Path) -> None:
    """Rename the ID column's header so the members extract lacks its required column."""
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path)
        for row in book.worksheets[0].iter_rows(max_row=10):
            for cell in row:
                if isinstance(cell.value, str) and cell.value.strip() in ID_HEADERS:
                    cell.value = "备用字段"
        book.save(path)
        return
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "utf-16", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    header, _, rest = text.partition("\n")
    for alias in ID_HEADERS:
        header = re.sub(rf"(^|,)\s*{alias}\s*(?=,|\r?$)", r"\1备用字段", header)
    path.write_text(header + "\n" + rest, encoding="utf-8")


@pytest.fixture(scope="module")
def privacy_run(tmp_path_factory):
    inbox = synthetic_inbox(tmp_path_factory, "privacy", "2025Q1:2025Q2", households=300, seed=17)
    root = inbox.parent
    warehouse, out, home = root / "w.duckdb", root / "out", root / "dagster_home"
    printed, records = io.StringIO(), []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(), logging.getLogger("dagster"), logging.getLogger("duckdb"), logging.getLogger("splink")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    home.mkdir()
    codes = {}

    def run(quarter: str, inbox_dir: Path = inbox, label: str | None = None) -> int:
        summary = root / f"summary-{label or quarter}.json"  # the operator's summary for scripts (--json)
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            return main(["run", "--inbox", str(inbox_dir), "--quarter", quarter, "--warehouse", str(warehouse), "--out", str(out),
                         "--json", str(summary)])

    try:
        codes["2025Q1"] = run("2025Q1")
        # a caseworker writes the head's name into 核查说明 and returns the list
        book_path = sorted((out / "2025Q1" / "lists").glob("*/*.xlsx"))[0]
        book = openpyxl.load_workbook(book_path)
        sheet = book.worksheets[0] if book.worksheets[0].max_row > 1 else book.worksheets[1]
        header = [c.value for c in sheet[1]]
        name = sheet.cell(row=2, column=header.index("姓名") + 1).value
        sheet.cell(row=2, column=header.index("核查结果") + 1, value="不属实")
        sheet.cell(row=2, column=header.index("核查说明") + 1, value=f"已与{name}本人核实，比对有误")
        (inbox / "2025Q2" / "verifications").mkdir(exist_ok=True)
        book.save(inbox / "2025Q2" / "verifications" / "returned.xlsx")
        codes["2025Q2"] = run("2025Q2")
        # a refused delivery: the members extract lost its ID column
        broken = root / "broken"
        shutil.copytree(inbox / "2025Q2", broken / "2025Q2")
        for path in (broken / "2025Q2" / "members").iterdir():
            _drop_id_header(path)
        codes["refused"] = run("2025Q2", broken, label="refused")
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
        monkeypatch.undo()

    with duckdb.connect(str(warehouse), read_only=True) as con:
        ids, names = set(), set()
        for source in IDENTITY_SOURCES:
            columns = {r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging' AND table_name = ?", [source]
            ).fetchall()}
            if "id_number" in columns:
                ids |= {r[0] for r in con.execute(f"SELECT DISTINCT id_number FROM staging.{source} WHERE length(id_number) = 18").fetchall()}
            if "name" in columns:
                names |= {r[0] for r in con.execute(f"SELECT DISTINCT name FROM staging.{source} WHERE name IS NOT NULL").fetchall()}
    return {"root": root, "warehouse": warehouse, "out": out, "home": home, "printed": printed.getvalue(),
            "logs": records, "codes": codes, "identities": Identities(ids, names)}


def test_the_runs_did_what_they_should(privacy_run):
    assert privacy_run["codes"] == {"2025Q1": EXIT_OK, "2025Q2": EXIT_OK, "refused": EXIT_REFUSED}
    assert "身份证号" in privacy_run["printed"]  # the refusal names the missing column
    assert len(privacy_run["identities"].ids) > 500 and len(privacy_run["identities"].names) > 500


def test_the_scanner_finds_people_in_the_township_lists(privacy_run):
    """The lists are meant to carry names and IDs: the scanner must see them there."""
    identities = privacy_run["identities"]
    book = sorted((privacy_run["out"] / "2025Q2" / "lists").glob("*/*.xlsx"))[0]
    text = "\n".join(str(c.value) for sheet in openpyxl.load_workbook(book).worksheets for row in sheet.iter_rows() for c in row if c.value)
    found = identities.find(text)
    assert any("ID number" in f for f in found) and any("name" in f for f in found)


def test_nothing_printed_or_logged_names_anyone(privacy_run):
    identities = privacy_run["identities"]
    assert privacy_run["logs"], "the run logged nothing: the log capture is broken"
    assert identities.find(privacy_run["printed"]) == []
    summaries = sorted(privacy_run["root"].glob("summary-*.json"))
    assert len(summaries) == 3 and all(identities.find(path.read_text(encoding="utf-8")) == [] for path in summaries)
    leaks = [(i, found) for i, line in enumerate(privacy_run["logs"]) if (found := identities.find(line))]
    assert leaks == []


def test_no_file_the_dagster_instance_wrote_names_anyone(privacy_run):
    """Event log and run storage (SQLite), asset and check metadata, compute logs: every byte."""
    identities = privacy_run["identities"]
    files = [p for p in privacy_run["home"].rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files), "no event log found under DAGSTER_HOME"
    leaks = {}
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        if found := identities.find(text):
            leaks[str(path.relative_to(privacy_run["home"]))] = found[:5]
    assert leaks == {}


def test_event_records_and_metadata_name_no_one(privacy_run):
    """The same through Dagster's own API, as the UI shows it (decoded, not raw bytes)."""
    import dagster as dg
    from dagster._serdes import serialize_value

    identities = privacy_run["identities"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(privacy_run["home"]))
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert len(runs) == 3
            texts = [serialize_value(run) for run in runs]
            for run in runs:
                texts += [serialize_value(record) for record in instance.all_logs(run.run_id)]
    decoded = [json.loads(t) for t in texts]  # \\u escapes to characters
    leaks = [found for d in decoded if (found := identities.find(json.dumps(d, ensure_ascii=False)))]
    assert leaks == []


def test_the_report_names_no_one(privacy_run):
    identities = privacy_run["identities"]
    for quarter in QUARTERS:
        assert identities.find((privacy_run["out"] / quarter / "report.html").read_text(encoding="utf-8")) == []


ANALYST_TABLES = [
    "marts.warnings_masked", "marts.quarterly_comparison", "marts.county_rule_summary", "marts.overdue_warnings",
    "marts.verification_precision", "audit.ingest_log", "audit.check_results", "audit.exports", "audit.publications",
    "audit.link_runs",
]


@pytest.mark.parametrize("table", ANALYST_TABLES)
def test_analyst_tables_and_audit_name_no_one(privacy_run, table):
    identities = privacy_run["identities"]
    with duckdb.connect(str(privacy_run["warehouse"]), read_only=True) as con:
        rows = con.execute(f"SELECT * FROM {table}").fetchall()
    if table == "marts.warnings_masked":
        assert rows
    text = "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)
    assert identities.find(text) == []


def test_each_workbook_holds_only_its_township_and_is_logged(privacy_run):
    out, warehouse = privacy_run["out"], privacy_run["warehouse"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for quarter in QUARTERS:
            run_id = con.execute(
                "SELECT run_id FROM audit.publications WHERE quarter = ? ORDER BY published_at DESC LIMIT 1", [quarter]
            ).fetchone()[0]
            logged = {
                file: ((county, township), rows)
                for county, township, file, rows in con.execute(
                    "SELECT county_code, township, file, rows FROM audit.exports WHERE quarter = ? AND run_id = ? AND kind = 'township_list'",
                    [quarter, run_id],
                ).fetchall()
            }
            books = sorted((out / quarter / "lists").glob("*/*.xlsx"))
            assert len(books) == len(logged) > 1
            for path in books:
                sheets = openpyxl.load_workbook(path).worksheets
                rows = [dict(zip([c.value for c in s[1]], [c.value for c in r])) for s in sheets for r in s.iter_rows(min_row=2)]
                place, logged_rows = logged[path.relative_to(out / quarter / "lists").as_posix()]
                assert path.parent.name == place[0]
                assert {(r["区县代码"], r["乡镇（街道）"]) for r in rows} == {place}
                assert logged_rows == len(rows)
                in_mart = con.execute(
                    "SELECT count(*) FROM marts.warnings WHERE quarter = ? AND county_code = ? AND township = ? "
                    "AND status IN ('new', 'persisting')", [quarter, *place]
                ).fetchone()[0]
                assert len(rows) == in_mart


# ---- what the operator is shown (the same runs of `doudi run`) ---------------------------------

def test_the_operator_sees_each_stage_and_a_summary_that_adds_up(privacy_run):
    """One line per step as it ends, then the summary tables; --json holds the same counts
    as the warehouse (rows read = loaded + quarantined per source, links by method,
    warnings per rule), and a refused run names its failed check and publishes nothing."""
    printed = privacy_run["printed"]
    for words in ("数据接收 家庭成员", "检查 医保结算", "比对成功", "预警规则 救助需求", "发布", "核查清单", "数据接收", "比对方式", "已解除"):
        assert words in printed, words
    root, warehouse = privacy_run["root"], privacy_run["warehouse"]
    summary = json.loads((root / "summary-2025Q2.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == EXIT_OK and summary["published"] and summary["quarter"] == "2025Q2"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT source, sum(rows_read), sum(rows_loaded), sum(rows_quarantined) FROM audit.ingest_log WHERE run_id = ? GROUP BY 1",
            [summary["run_id"]]).fetchall()}
        links = dict(((s, m), n) for s, m, n in con.execute(
            "SELECT source, match_method, count(*) FROM linked.matches WHERE quarter = '2025Q2' GROUP BY ALL").fetchall())
        warnings = dict(con.execute(
            "SELECT rule_code, count(*) FROM marts.warnings WHERE quarter = '2025Q2' AND status IN ('new', 'persisting') GROUP BY 1"
        ).fetchall())
    assert {s["source"]: (s["rows_read"], s["rows_loaded"], s["rows_quarantined"]) for s in summary["sources"]} == rows
    assert all(s["rows_read"] == s["rows_loaded"] + s["rows_quarantined"] for s in summary["sources"])
    assert {(link["source"], link["match_method"]): link["records"] for link in summary["links"]} == links
    assert {w["rule_code"]: w["this_quarter"] for w in summary["warnings"] if w["this_quarter"]} == warnings
    refused = json.loads((root / "summary-refused.json").read_text(encoding="utf-8"))
    assert refused["exit_code"] == EXIT_REFUSED and not refused["published"] and refused["warnings"] == []
    assert any(c["blocking"] and c["asset"].endswith("members") for c in refused["failed_checks"]) or any(
        "members" in s["source"] and s["files_refused"] for s in refused["sources"])
