"""Analysts never block the run: they read the published copy, which a run replaces whole.

A reader in another process holds the copy open (read-only) while a quarter runs: the run
succeeds, the reader goes on seeing the version it opened, and a new connection sees the
new quarter. A reader holding the warehouse itself does stop the run, and the message says
so and names the copy. The copy holds no name or ID number, answers every documented
query, and is encrypted with the warehouse's key when the warehouse is encrypted.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.marts.analysts_copy import write_analysts_copy
from pipelines.run import EXIT_FAILED, EXIT_OK, run_quarter
from tests.helpers import synthetic_inbox
from warehouse.connection import WarehouseError, connect, published_copy_path

QUARTER = "2025Q1"
KEY = "test-only-analysts-key-41c2"

# Opens a file read-only (with the key, if given) and reports what it sees, then waits for a
# line on stdin (the test's "the run is over") and reports again through the same connection.
READER = """
import sys, duckdb
path, key = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
if key:
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{path}' AS copy (ENCRYPTION_KEY '{key}', READ_ONLY)")
    con.execute("USE copy")
else:
    con = duckdb.connect(path, read_only=True)
seen = lambda: con.execute("SELECT count(*), coalesce(string_agg(DISTINCT quarter), '-') FROM marts.warnings_masked").fetchone()
print("OPEN", *seen(), flush=True)
sys.stdin.readline()
print("AFTER", *seen(), flush=True)
"""

# Holds a file open for writing (as a stray process would) until stdin closes.
WRITER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("OPEN", flush=True)
sys.stdin.readline()
"""


def _hold(script: str, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith("OPEN"), process.stderr.read()
    process.first_line = line.split()
    return process


def _release(process: subprocess.Popen) -> list[str]:
    out, err = process.communicate("\n", timeout=60)
    assert process.returncode == 0, err
    return out.split()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    return synthetic_inbox(tmp_path_factory, "analysts", QUARTER, households=100, seed=3)


@pytest.fixture(scope="module")
def published(inbox, dagster_instance, tmp_path_factory):
    instance = dagster_instance
    """A warehouse whose copy was first written empty (the version a reader holds), then the
    quarter run while the reader holds it."""
    root = tmp_path_factory.mktemp("published")
    warehouse, out = root / "doudi.duckdb", root / "out"
    with connect(warehouse) as con:
        copy, _ = write_analysts_copy(con, warehouse)
    reader = _hold(READER, str(copy))
    try:
        outcome = run_quarter(inbox, QUARTER, warehouse, out, instance=instance)
    finally:
        after = _release(reader)
    return warehouse, copy, outcome, reader.first_line, after


def test_a_run_succeeds_while_an_analyst_reads_the_copy(published):
    warehouse, copy, outcome, opened, after = published
    assert outcome.exit_code == EXIT_OK, outcome.messages
    assert copy == published_copy_path(warehouse.resolve()) and copy.name == "doudi-published.duckdb"
    assert opened[1:] == after[1:] == ["0", "-"]  # the reader saw the version it opened, throughout the run
    with duckdb.connect(str(copy), read_only=True) as con:  # a new connection: the new quarter
        copied = con.execute("SELECT count(*) FROM marts.warnings_masked WHERE quarter = ?", [QUARTER]).fetchone()[0]
        runs = con.execute("SELECT run_id, outcome FROM audit.runs").fetchall()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        held = con.execute("SELECT count(*) FROM marts.warnings_masked WHERE quarter = ?", [QUARTER]).fetchone()[0]
    assert copied == held > 0
    assert runs == [(outcome.run_id, "published")]
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not list(Path(str(warehouse) + ".work").iterdir())  # the copy was written aside and moved


def test_the_copy_answers_the_documented_queries(published):
    _, copy, *_ = published
    text = (Path(__file__).parents[2] / "docs" / "analysts.md").read_text(encoding="utf-8")
    queries = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    assert len(queries) >= 8
    with duckdb.connect(str(copy), read_only=True) as con:
        for sql in queries:
            con.execute(sql).fetchall()
        assert con.execute("SELECT count(*) FROM marts.county_rule_summary").fetchone()[0] > 0


def test_the_copy_holds_no_name_or_id_number(published):
    warehouse, copy, *_ = published
    with duckdb.connect(str(copy), read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal").fetchall()}
        assert {"marts.warnings_masked", "marts.household_cases", "audit.ingest_log", "audit.runs", "linked.matches"} <= tables
        assert not {"marts.warnings", "audit.settings"} & tables
        assert not {t for t in tables if t.split(".")[0] in ("staging", "rules")}
        columns = {(t, c) for t, c in con.execute(
            "SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns() WHERE NOT internal").fetchall()}
        assert not {c for _, c in columns} & {"name", "id_number", "head_name", "raw_record", "record_key", "name_as_written"}
        text_columns = con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE NOT internal AND data_type IN ('VARCHAR', 'JSON', 'VARCHAR[]')").fetchall()
    with connect(warehouse, read_only=True) as con:
        people = con.execute(
            "SELECT DISTINCT id_number, name FROM staging.members WHERE length(id_number) = 18 AND length(name) >= 2").fetchall()
    assert len(people) > 100

    def found(con, schema: str, table: str, column: str) -> int:
        return con.execute(
            f'SELECT count(*) FROM {schema}."{table}" AS t, people AS p '
            f'WHERE contains(t."{column}"::VARCHAR, p.id_number) OR t."{column}"::VARCHAR = p.name '
            f'OR (length(p.name) >= 3 AND contains(t."{column}"::VARCHAR, p.name))'
        ).fetchone()[0]

    with duckdb.connect(str(warehouse), read_only=True) as con:  # the control: the scan finds them where they are
        con.execute("CREATE TEMP TABLE people (id_number VARCHAR, name VARCHAR)")
        con.executemany("INSERT INTO people VALUES (?, ?)", people)
        assert found(con, "marts", "warnings", "id_number") > 0 and found(con, "marts", "warnings", "name") > 0
    with duckdb.connect(str(copy), read_only=True) as con:
        con.execute("CREATE TEMP TABLE people (id_number VARCHAR, name VARCHAR)")
        con.executemany("INSERT INTO people VALUES (?, ?)", people)
        for schema, table, column in text_columns:
            assert found(con, schema, table, column) == 0, f"{schema}.{table}.{column} holds a person's name or ID number"


def test_a_reader_of_the_warehouse_itself_stops_the_run_and_is_told_of_the_copy(published, inbox, dagster_instance, tmp_path):
    warehouse, copy, *_ = published
    reader = _hold(READER, str(warehouse))
    try:
        outcome = run_quarter(inbox, QUARTER, warehouse, tmp_path / "out", instance=dagster_instance)
    finally:
        _release(reader)
    assert outcome.exit_code == EXIT_FAILED
    message = " ".join(outcome.messages)
    assert "被另一个进程" in message and "发布副本" in message and str(copy) in message, message
    # and the other way round: while something writes the warehouse, a reader is pointed to the copy
    writer = _hold(WRITER, str(warehouse))
    try:
        with pytest.raises(WarehouseError, match="发布副本"):
            with connect(warehouse, read_only=True):
                pass
    finally:
        writer.communicate("\n", timeout=60)


def test_an_encrypted_warehouse_gives_an_encrypted_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUDI_WAREHOUSE_KEY", KEY)
    warehouse = tmp_path / "secret.duckdb"
    marker = "1405SYNTHETICMARKER"
    with connect(warehouse) as con:
        con.execute("INSERT INTO marts.warnings_masked (quarter, warning_id, id_number_masked) VALUES (?, 'W1', ?)", [QUARTER, marker])
        copy, counts = write_analysts_copy(con, warehouse)
    assert counts["marts.warnings_masked"] == 1
    assert marker.encode() not in copy.read_bytes() and b"warnings_masked" not in copy.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(copy), read_only=True).execute("SELECT count(*) FROM marts.warnings_masked")
    with pytest.raises(duckdb.Error):
        duckdb.connect(":memory:").execute(f"ATTACH '{copy}' AS c (ENCRYPTION_KEY 'a-wrong-key', READ_ONLY)")
    reader = _hold(READER, str(copy), KEY)  # opened with the key, as the analysts' guide says
    with connect(warehouse) as con:  # the next publication replaces it under the reader
        con.execute("INSERT INTO marts.warnings_masked (quarter, warning_id) VALUES ('2025Q2', 'W2')")
        write_analysts_copy(con, warehouse)
    assert reader.first_line[1:] == _release(reader)[1:] == ["1", QUARTER]
    with connect(copy, read_only=True) as con:  # the project's connection, which brings the key
        assert con.execute("SELECT count(*) FROM marts.warnings_masked").fetchone()[0] == 2
    monkeypatch.delenv("DOUDI_WAREHOUSE_KEY")
    with pytest.raises(WarehouseError, match="encrypted"):
        with connect(copy, read_only=True):
            pass
