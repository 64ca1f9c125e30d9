"""The floors `doudi bench` measures beside its stages (devtools/floors.py): the raw read
counts every CSV row of the quarter and leaves nothing behind; the exact-ID join misses
damaged IDs but is rarely wrong; a plain Splink model finds at least as much; and neither
linkage floor changes the warehouse."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import polars as pl
import pytest

from devtools import floors
from devtools.evaluate import load_truth
from warehouse.connection import connect, published_copy_path
from warehouse.workdir import work_dir


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def _non_empty_lines(path: Path) -> int:
    """Physical lines with something on them (DuckDB skips empty lines; the synthetic
    files have no newline inside quotes)."""
    return sum(1 for line in path.read_bytes().splitlines() if line)


def _ingested_csv(warehouse: Path, quarter: str) -> pl.DataFrame:
    """audit.ingest_log's CSV files of the quarter, from each source's last run."""
    with connect(warehouse, read_only=True) as con:
        return con.execute(
            """SELECT encoding, records_counted FROM audit.ingest_log AS l
               WHERE quarter = ? AND file_format = 'csv'
                 AND run_id = (SELECT arg_max(run_id, logged_at) FROM audit.ingest_log
                               WHERE quarter = l.quarter AND source = l.source)""",
            [quarter],
        ).pl()


def _check_scores(sources: dict) -> None:
    assert sources
    for source, s in sources.items():
        for name in ("precision", "recall", "f1"):
            assert 0.0 <= s[name] <= 1.0, (source, name, s[name])


def test_raw_read_reads_every_csv_row_and_cleans_up(run_province, tmp_path):
    quarter = run_province.quarters[-1]
    quarter_dir = run_province.inbox / quarter
    work = tmp_path / "work"
    result = floors.raw_read_floors(quarter_dir, work)
    csv_files = sorted(quarter_dir.rglob("*.csv"))
    xlsx_files = sorted(quarter_dir.rglob("*.xlsx"))
    assert result["files"] == len(csv_files) > 0
    assert result["bytes"] == sum(p.stat().st_size for p in csv_files)
    assert result["xlsx_files"] == len(xlsx_files) > 0
    assert result["xlsx_bytes"] == sum(p.stat().st_size for p in xlsx_files)
    # every line of every CSV file, header and title lines included, by both readers
    assert result["rows"] == result["polars_rows"] == sum(_non_empty_lines(p) for p in csv_files)
    ingested = _ingested_csv(run_province.warehouse, quarter)
    assert ingested.height == len(csv_files)
    assert result["rows"] >= int(ingested["records_counted"].sum()) + ingested.height  # records and one header per file
    # GBK deliveries go through Python's decoder: the floor reads them, not a Latin-1 misreading
    assert result["decoded_files"] == ingested.filter(pl.col("encoding") == "gb18030").height > 0
    assert result["duckdb_seconds"] > 0 and result["polars_seconds"] > 0
    assert list(work.iterdir()) == []


def test_raw_read_of_awkward_files(tmp_path):
    """A title line, a newline inside quotes with a ragged row (DuckDB's parallel reader
    refuses that with padding), GBK with bytes DuckDB's Latin-1 refuses, a file UTF-8
    for its first 64 KB and GBK after, UTF-16; lock files, hidden files and folders of no
    source are no deliveries."""
    quarter = tmp_path / "2025Q1"
    for folder in ("medical", "death", "not_a_source"):
        (quarter / folder).mkdir(parents=True)
    (quarter / "medical" / "a.csv").write_bytes('标题\n姓名,号码,金额\n"甲,乙","1\n2",3\n丙,5\n丁,1,2,3,4\n'.encode("utf-8-sig"))  # 5 rows
    late = ("姓名,号码\n" + "甲乙,1\n" * 10_000).encode("utf-8") + "丂亐,3\n".encode("gb18030")  # 10,002 rows
    assert len(late) > floors.HEAD_BYTES
    (quarter / "medical" / "b.csv").write_bytes(late)
    (quarter / "death" / "c.csv").write_bytes("姓名,号码\n丂亐乚倻,1\n".encode("gb18030"))  # 2 rows, bytes 0x80-0x9f
    (quarter / "death" / "d.txt").write_bytes(codecs.BOM_UTF16_LE + "姓名\t号码\r\n甲\t1\r\n".encode("utf-16-le"))  # 2 rows
    for ignored in ("~$a.csv", ".b.csv"):
        (quarter / "death" / ignored).write_bytes(b"x\n")
    (quarter / "not_a_source" / "e.csv").write_bytes(b"x\n")
    (quarter / "death" / "f.xlsx").write_bytes(b"PK\x03\x04")
    work = tmp_path / "work"
    result = floors.raw_read_floors(quarter, work)
    assert (result["files"], result["xlsx_files"], result["xlsx_bytes"]) == (4, 1, 4)
    assert result["rows"] == 5 + 10_002 + 2 + 2
    assert result["decoded_files"] == 3  # b (after its head), c, d
    assert list(work.iterdir()) == []


@pytest.fixture(scope="module")
def linkage_floors(run_province):
    _, truth_links = load_truth(run_province.truth)
    quarter = run_province.quarters[-1]
    published = published_copy_path(run_province.warehouse)
    before = (_sha256(run_province.warehouse), _sha256(published))
    exact = floors.exact_join_floor(run_province.warehouse, quarter, truth_links)
    plain = floors.plain_splink_floor(run_province.warehouse, quarter, truth_links)
    after = (_sha256(run_province.warehouse), _sha256(published))
    left = [p.name for p in work_dir(run_province.warehouse).iterdir() if p.name.startswith("doudi-floor-")]
    return exact, plain, before, after, left


def test_linkage_floors_leave_the_warehouse_as_it_was(linkage_floors):
    _, _, before, after, left = linkage_floors
    assert before[0] and before == after
    assert left == []


def test_exact_join_misses_damaged_ids_but_is_rarely_wrong(linkage_floors):
    exact, _, _, _, _ = linkage_floors
    assert exact["seconds"] > 0
    _check_scores(exact["sources"])
    assert min(s["recall"] for s in exact["sources"].values()) < 0.95  # the synthetic IDs are damaged
    for source, s in exact["sources"].items():
        assert s["precision"] >= 0.8, (source, s)
    found = sum(s["found"] for s in exact["sources"].values())
    right = sum(s["found"] * s["precision"] for s in exact["sources"].values())
    assert right / found >= 0.97


def test_plain_splink_finds_at_least_what_the_exact_join_finds(linkage_floors):
    exact, plain, _, _, _ = linkage_floors
    assert plain["training_seconds"] > 0 and plain["predict_seconds"] > 0
    assert plain["seconds"] == pytest.approx(plain["training_seconds"] + plain["predict_seconds"])
    assert "link_only" in plain["settings"]
    _check_scores(plain["sources"])
    assert set(plain["sources"]) == set(exact["sources"])
    at_least = [s for s in exact["sources"] if plain["sources"][s]["recall"] >= exact["sources"][s]["recall"]]
    assert len(at_least) >= len(exact["sources"]) - 1, (plain["sources"], exact["sources"])
    better = [s for s in exact["sources"] if plain["sources"][s]["recall"] > exact["sources"][s]["recall"] + 0.02]
    assert better  # the damaged IDs it was built to find
    for source, s in plain["sources"].items():
        assert s["precision"] >= 0.8, (source, s)
