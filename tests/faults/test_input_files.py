"""Delivered files that used to lose rows in silence or end in a traceback (issue: nothing
lost in silence). Each file goes through the real loader into a temporary warehouse; every
record below the header must come out loaded or quarantined, or the file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.ingest.load import load_source
from pipelines.quarters import Quarter
from sources import readers
from sources.readers import InputRefused
from sources.registry import source
from warehouse.connection import connect

QUARTER = "2025Q3"
HEADER = "记录编号,姓名,身份证号,死亡日期,信息来源"
IDS = ["140502198001014736", "11010519491231002X", "140502195503030011", "140502196612120026"]


def rows(n: int) -> list[str]:
    return [f"SW{i},张{'三四五六七八九十'[i % 8]},{IDS[i % 4]},2025-07-0{1 + i % 9},公安户籍注销" for i in range(n)]


def load(tmp_path: Path, content: bytes, name: str = "deaths.csv"):
    folder = tmp_path / "inbox" / QUARTER / "death"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    with connect(tmp_path / "w.duckdb") as con:
        outcome = load_source(con, source("death"), tmp_path / "inbox" / QUARTER, Quarter.parse(QUARTER), "run1")
        staged = con.execute("SELECT source_row FROM staging.death WHERE quarter = ? ORDER BY source_row", [QUARTER]).fetchall()
        quarantined = con.execute(
            "SELECT source_row, reason_code, reason FROM quarantine.death WHERE quarter = ? ORDER BY source_row", [QUARTER]
        ).fetchall()
        entry = con.execute("SELECT * FROM audit.ingest_log WHERE run_id = 'run1'").pl().row(0, named=True)
        log = tuple(entry.get(c) for c in ("rows_read", "rows_loaded", "rows_quarantined", "records_counted", "preamble_lines"))
        skipped = con.execute(
            "SELECT line, reason, length(text_sha256) FROM audit.skipped_lines WHERE run_id = 'run1' ORDER BY line"
        ).fetchall() if "records_counted" in entry else None
    return outcome, [r[0] for r in staged], quarantined, log, skipped


def test_title_lines_ending_in_lf_above_a_crlf_table_load_every_row(tmp_path):
    """Excel's export with a report title: the titles end in LF, the table in CRLF. Before,
    DuckDB's strict parser returned no rows at all and the run exited 0."""
    content = "2025年第三季度死亡人员名单\n制表单位：某县民政局\n".encode() + "\r\n".join([HEADER, *rows(5)]).encode() + b"\r\n"
    outcome, staged, quarantined, log, skipped = load(tmp_path, content)
    assert outcome.rows_loaded == 5 and not quarantined
    assert staged == [4, 5, 6, 7, 8]  # the lines the rows are on in the file
    assert log == (5, 5, 0, 5, 3)
    assert skipped == [(1, "表头之前的标题行", 64), (2, "表头之前的标题行", 64), (3, "表头", 64)]


def test_one_row_appended_with_lf_to_a_crlf_file_loads(tmp_path):
    """A clerk adds a line in another editor. Before: "CSV Parser state machine reached an
    invalid state" and the department's whole delivery refused."""
    content = "\r\n".join([HEADER, *rows(4)]).encode() + b"\r\n" + rows(5)[4].encode() + b"\n"
    outcome, staged, quarantined, log, _ = load(tmp_path, content)
    assert outcome.rows_loaded == 5 and not quarantined
    assert staged == [2, 3, 4, 5, 6]


def test_old_mac_line_endings_load(tmp_path):
    content = "\r".join([HEADER, *rows(3)]).encode() + b"\r"
    outcome, staged, _, _, _ = load(tmp_path, content)
    assert outcome.rows_loaded == 3 and staged == [2, 3, 4]


def test_row_numbers_stay_true_after_blank_lines_and_multiline_cells(tmp_path):
    data = rows(3)
    data[1] = data[1].replace("公安户籍注销", '"公安\n户籍注销"')
    content = "\n".join([HEADER, data[0], "", data[1], data[2]]).encode() + b"\n"
    outcome, staged, _, log, _ = load(tmp_path, content)
    assert staged == [2, 4, 6]
    assert log[:4] == (3, 3, 0, 3)


def test_a_10_mb_line_among_the_first_lines_is_quarantined_not_a_traceback(tmp_path):
    """Before: Python's csv field limit raised while the header was searched (exit 1,
    the file not named)."""
    huge = "SW9,王五," + "9" * 10_000_000 + ",2025-07-01,殡葬"
    content = "\n".join(["死亡人员名单", HEADER, *rows(2), huge, *rows(3)[2:]]).encode() + b"\n"
    outcome, staged, quarantined, log, _ = load(tmp_path, content)
    assert outcome.rows_read == 4 and staged == [3, 4, 6]
    assert [(r[0], r[1]) for r in quarantined] == [(5, "line_too_long")]


def test_a_10_mb_title_line_above_the_header_is_skipped_as_preamble(tmp_path):
    content = ("X" * 10_000_000 + "\n" + "\n".join([HEADER, *rows(2)]) + "\n").encode()
    outcome, staged, _, log, skipped = load(tmp_path, content)
    assert staged == [3, 4]
    assert [s[1] for s in skipped] == ["表头之前的标题行", "表头"]


def test_an_oversized_field_is_quarantined_with_its_size_and_without_its_text(tmp_path):
    content = "\n".join([HEADER, *rows(2), "SW7,赵六" + "六" * 20_000 + f",{IDS[0]},2025-07-01,殡葬"]).encode() + b"\n"
    with connect(tmp_path / "probe.duckdb"):
        pass
    outcome, staged, quarantined, _, _ = load(tmp_path, content)
    assert staged == [2, 3]
    (line, code, reason), = quarantined
    assert (line, code) == (4, "field_too_long") and "60" in reason  # 60,006 bytes
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        raw = con.execute("SELECT raw_record FROM quarantine.death WHERE reason_code = 'field_too_long'").fetchone()[0]
    assert "六六六" not in json.loads(raw)["line"]


def test_when_the_two_counts_differ_the_file_is_refused_naming_both(tmp_path, monkeypatch):
    """The guard itself: a parser that loses records (simulated by a counter that sees
    one more) refuses the file and keeps nothing of the delivery."""
    original = readers.RecordCounter.records

    monkeypatch.setattr(readers.RecordCounter, "records", property(lambda self: original.fget(self) + 1))
    content = "\n".join([HEADER, *rows(3)]).encode() + b"\n"
    with pytest.raises(InputRefused) as refused:
        load(tmp_path, content)
    message = str(refused.value)
    assert "death/deaths.csv" in message and "4 条记录" in message and "读出 3 行" in message
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM staging.death").fetchone()[0] == 0
        assert con.execute("SELECT outcome FROM audit.ingest_log").fetchall() == [("refused",)]


def test_no_converted_copy_of_a_gbk_file_is_left_on_disk(tmp_path, monkeypatch):
    """GBK is streamed to DuckDB through a pipe: while DuckDB reads it, the temp folder
    holds the pipe and no regular file with the file's text (before, a UTF-8 copy)."""
    from sources import csvstream

    seen: list[Path] = []
    real_exit = csvstream.PipeStream.__exit__

    def watching_exit(self, *exc):
        seen.extend(p for p in self.path.parent.rglob("*") if p.is_file())
        assert self.path.is_fifo()
        return real_exit(self, *exc)

    monkeypatch.setattr(csvstream.PipeStream, "__exit__", watching_exit)
    content = "\r\n".join([HEADER, *rows(3)]).encode("gb18030") + b"\r\n"
    outcome, staged, _, _, _ = load(tmp_path, content)
    assert outcome.rows_loaded == 3 and outcome.files[0].encoding == "gb18030"
    assert seen == []
