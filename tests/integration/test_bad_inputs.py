"""Bad deliveries through `doudi run`: each gives a clear message and the right exit
code, never a traceback, never lost rows, and a refused quarter publishes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.run import EXIT_OK, EXIT_REFUSED
from tests.helpers import synthetic_inbox

QUARTER = "2025Q1"


@pytest.fixture(scope="module")
def tiny_inbox(tmp_path_factory) -> Path:
    return synthetic_inbox(tmp_path_factory, "tiny", QUARTER, households=150, seed=3)


@pytest.fixture()
def inbox(tiny_inbox, tmp_path) -> Path:
    target = tmp_path / "inbox"
    shutil.copytree(tiny_inbox / QUARTER, target / QUARTER)
    return target


@pytest.fixture(autouse=True)
def _dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))


def run(inbox: Path, tmp_path: Path, capsys) -> tuple[int, str]:
    code = main(["run", "--inbox", str(inbox), "--quarter", QUARTER, "--warehouse", str(tmp_path / "w.duckdb"), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


def published(tmp_path: Path) -> int:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM marts.warnings WHERE quarter = ?", [QUARTER]).fetchone()[0] + con.execute(
            "SELECT count(*) FROM audit.publications WHERE quarter = ?", [QUARTER]
        ).fetchone()[0]


def rows_accounted(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM audit.ingest_log WHERE rows_read <> rows_loaded + rows_quarantined").fetchone()[0] == 0


def first_file(inbox: Path, source: str) -> Path:
    return sorted(p for p in (inbox / QUARTER / source).iterdir() if p.suffix == ".csv")[0]


def test_a_clean_delivery_runs(inbox, tmp_path, capsys):
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_OK, text
    assert published(tmp_path) > 0


def read_lines(path: Path) -> list[str]:
    from sources.readers import detect_encoding

    encoding = detect_encoding(path).name
    return path.read_bytes().decode("utf-8-sig" if encoding.startswith("utf-8") else encoding).splitlines()


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def test_missing_column_is_refused_naming_file_and_column(inbox, tmp_path, capsys):
    path = first_file(inbox, "medical")
    lines = read_lines(path)
    header_index = next(i for i, line in enumerate(lines) if "结算" in line and "," in line)
    drop = next(i for i, c in enumerate(lines[header_index].split(",")) if c in ("结算日期", "结算时间", "费用结算日期"))
    write_lines(path, [",".join(c for j, c in enumerate(line.split(",")) if j != drop) if i >= header_index else line for i, line in enumerate(lines)])
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_REFUSED
    assert path.name in text and "结算日期" in text
    assert published(tmp_path) == 0


def test_wrong_encoding_is_refused(inbox, tmp_path, capsys):
    path = first_file(inbox, "death")
    path.write_bytes(b"\x81\x30\xff\xfe" + "记录编号".encode("utf-8") + b"\xc0\xaf\xff\n" * 3)
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_REFUSED and path.name in text and "编码" in text
    assert published(tmp_path) == 0


def test_garbage_file_is_refused(inbox, tmp_path, capsys):
    (inbox / QUARTER / "detention" / "garbage.csv").write_bytes(bytes(range(256)) * 10)
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_REFUSED and "garbage.csv" in text
    assert published(tmp_path) == 0


def test_duplicate_keys_are_refused_naming_rows(inbox, tmp_path, capsys):
    path = first_file(inbox, "death")
    lines = read_lines(path)
    changed = lines[-1].split(",")
    changed[-1] = "殡葬火化" if "公安" in changed[-1] else "公安户籍注销"  # the same key, a different record
    write_lines(path, lines + [",".join(changed)])
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_REFUSED, text
    assert "记录编号" in text and path.name in text
    assert published(tmp_path) == 0
    rows_accounted(tmp_path)


def test_truncated_file_loses_no_row(inbox, tmp_path, capsys):
    path = first_file(inbox, "medical")
    content = path.read_bytes()
    path.write_bytes(content[: len(content) - 25])
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_OK, text
    rows_accounted(tmp_path)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        reasons = con.execute("SELECT reason_code FROM quarantine.medical WHERE source_file LIKE ?", [f"%{path.name}"]).fetchall()
    assert ("csv_malformed",) in reasons


def test_empty_source_folder_is_refused(inbox, tmp_path, capsys):
    for path in (inbox / QUARTER / "detention").iterdir():
        path.unlink()
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_REFUSED and "detention" in text
    assert published(tmp_path) == 0


def test_missing_source_folder_is_refused(inbox, tmp_path, capsys):
    shutil.rmtree(inbox / QUARTER / "education")
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_REFUSED and "education" in text
    assert published(tmp_path) == 0


def test_a_stray_file_is_recorded_not_fatal(inbox, tmp_path, capsys):
    (inbox / QUARTER / "death" / "说明.docx").write_bytes(b"PK\x03\x04")
    code, text = run(inbox, tmp_path, capsys)
    assert code == EXIT_OK, text
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT outcome FROM audit.ingest_log WHERE file LIKE '%说明.docx'").fetchone()[0] == "ignored"


def test_a_refused_rerun_leaves_the_published_quarter(inbox, tmp_path, capsys):
    code, _ = run(inbox, tmp_path, capsys)
    assert code == EXIT_OK
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM marts.warnings WHERE quarter = ?", [QUARTER]).fetchone()[0]
    shutil.rmtree(inbox / QUARTER / "education")
    code, _ = run(inbox, tmp_path, capsys)
    assert code == EXIT_REFUSED
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.warnings WHERE quarter = ?", [QUARTER]).fetchone()[0] == before
        assert con.execute("SELECT count(*) FROM staging.education WHERE quarter = ?", [QUARTER]).fetchone()[0] > 0


def test_a_missing_quarter_folder_is_refused(inbox, tmp_path, capsys):
    code = main(["run", "--inbox", str(inbox), "--quarter", "2024Q4", "--warehouse", str(tmp_path / "w.duckdb"), "--out", str(tmp_path / "o")])
    assert code == EXIT_REFUSED and "2024Q4" in capsys.readouterr().err


def test_large_files_are_read_to_the_end_in_batches(tiny_inbox, inbox, tmp_path, capsys, monkeypatch):
    """A CSV longer than one batch is read whole, though each batch is written to the
    warehouse before the next is read (a streamed DuckDB result would stop after one)."""
    import json

    import sources.readers

    monkeypatch.setattr(sources.readers, "BATCH_ROWS", 20)
    code, _ = run(inbox, tmp_path, capsys)
    assert code == EXIT_OK
    delivered = json.loads((tiny_inbox / "truth" / "manifest.json").read_text(encoding="utf-8"))["rows_delivered"][QUARTER]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        read = dict(con.execute("SELECT source, sum(rows_read) FROM audit.ingest_log WHERE quarter = ? GROUP BY source", [QUARTER]).fetchall())
        longest = con.execute("SELECT max(rows_read) FROM audit.ingest_log WHERE file LIKE '%.csv'").fetchone()[0]
    assert longest > 3 * 20  # several batches
    assert {s: read.get(s) for s in delivered} == delivered  # every row the generator wrote was read
    rows_accounted(tmp_path)


@pytest.mark.parametrize("label", ["2025Q9", "2025-07", "2019Q4"])
def test_a_quarter_that_cannot_be_run_is_refused_before_anything_is_touched(inbox, tmp_path, capsys, label):
    """A mistyped quarter, or one before the deployment's first, is refused input (exit 2)
    with a message saying how to write it; no warehouse is created."""
    code = main(["run", "--inbox", str(inbox), "--quarter", label, "--warehouse", str(tmp_path / "w.duckdb"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_REFUSED and label in err and ("2025Q3" in err or "第一个季度" in err)
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "o").exists()
