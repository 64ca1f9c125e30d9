"""The warehouse write helpers: all or nothing, and every value in its named column."""

from __future__ import annotations

import duckdb
import pytest

from warehouse.writes import (
    WriteError,
    delete_quarter,
    insert_arrow,
    insert_row,
    insert_rows,
    insert_select,
    replace_quarter,
    replace_quarter_rows,
    transaction,
)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA audit; CREATE TABLE audit.t (quarter VARCHAR, kind VARCHAR, n INTEGER, note VARCHAR)")
    yield con
    con.close()


def test_a_failing_block_rolls_back_everything_it_wrote(con):
    with pytest.raises(RuntimeError):
        with transaction(con):
            insert_row(con, "audit.t", quarter="2025Q1", kind="a", n=1)
            raise RuntimeError("boom")
    assert con.execute("SELECT count(*) FROM audit.t").fetchone()[0] == 0
    with transaction(con):
        insert_row(con, "audit.t", quarter="2025Q1", kind="a", n=1)
    assert con.execute("SELECT count(*) FROM audit.t").fetchone()[0] == 1


def test_inserts_go_by_column_name_whatever_the_order(con):
    insert_rows(con, "audit.t", [{"n": 3, "kind": "b", "quarter": "2025Q2"}])
    insert_select(con, "audit.t", "SELECT 'x' AS note, 5 AS n, '2025Q3' AS quarter")
    assert con.execute("SELECT quarter, kind, n, note FROM audit.t ORDER BY quarter").fetchall() == [
        ("2025Q2", "b", 3, None), ("2025Q3", None, 5, "x")]


def test_an_unknown_column_is_refused_naming_it(con):
    with pytest.raises(WriteError, match="nmae"):
        insert_row(con, "audit.t", quarter="2025Q1", nmae="x")
    with pytest.raises(WriteError, match="row 1"):
        insert_rows(con, "audit.t", [{"quarter": "a", "n": 1}, {"n": 2, "quarter": "b"}])


def test_replace_quarter_touches_only_that_quarter_and_scope(con):
    insert_rows(con, "audit.t", [{"quarter": q, "kind": k, "n": 1} for q in ("2025Q1", "2025Q2") for k in ("a", "b")])
    replace_quarter(con, "audit.t", "2025Q1", "SELECT '2025Q1' AS quarter, 'a' AS kind, $n AS n", {"n": 9}, where={"kind": "a"})
    assert con.execute("SELECT quarter, kind, n FROM audit.t ORDER BY ALL").fetchall() == [
        ("2025Q1", "a", 9), ("2025Q1", "b", 1), ("2025Q2", "a", 1), ("2025Q2", "b", 1)]


def test_replace_quarter_keeps_the_old_rows_when_the_select_fails(con):
    insert_row(con, "audit.t", quarter="2025Q1", kind="a", n=1)
    with pytest.raises(duckdb.Error):
        replace_quarter(con, "audit.t", "2025Q1", "SELECT '2025Q1' AS quarter, 'not a number'::INTEGER AS n")
    assert con.execute("SELECT n FROM audit.t").fetchall() == [(1,)]


def test_an_arrow_table_goes_in_by_column_name_in_row_groups(con):
    import pyarrow as pa

    data = pa.table({"n": list(range(10)), "quarter": ["2025Q1"] * 10})  # the table's order is quarter, kind, n
    assert insert_arrow(con, "audit.t", data, chunk_rows=3) == 10
    assert insert_arrow(con, "audit.t", data.slice(0, 0)) == 0
    assert con.execute("SELECT quarter, kind, sum(n), count(*) FROM audit.t GROUP BY ALL").fetchall() == [("2025Q1", None, 45, 10)]
    with pytest.raises(duckdb.Error):
        insert_arrow(con, "audit.t", pa.table({"nmae": ["x"]}))


def test_replace_quarter_rows_and_a_table_that_names_its_quarter_otherwise(con):
    insert_rows(con, "audit.t", [{"quarter": q, "kind": k, "n": 1} for q in ("2025Q1", "2025Q2") for k in ("a", "b")])
    assert replace_quarter_rows(con, "audit.t", "2025Q1", [{"quarter": "2025Q1", "kind": "a", "n": 7}], where={"kind": "a"}) == 1
    assert replace_quarter_rows(con, "audit.t", "2025Q2", [], where={"kind": "b"}) == 0  # none: the scope is emptied
    assert con.execute("SELECT quarter, kind, n FROM audit.t ORDER BY ALL").fetchall() == [
        ("2025Q1", "a", 7), ("2025Q1", "b", 1), ("2025Q2", "a", 1)]
    con.execute("CREATE TABLE audit.labels (delivered_quarter VARCHAR, label VARCHAR)")
    insert_rows(con, "audit.labels", [{"delivered_quarter": q, "label": "old"} for q in ("2025Q1", "2025Q2")])
    replace_quarter(con, "audit.labels", "2025Q2", "SELECT '2025Q2' AS delivered_quarter, 'new' AS label",
                    quarter_column="delivered_quarter")
    assert con.execute("SELECT * FROM audit.labels ORDER BY ALL").fetchall() == [("2025Q1", "old"), ("2025Q2", "new")]
    with pytest.raises(WriteError, match="quarter"):
        delete_quarter(con, "audit.labels", "2025Q1")  # no column `quarter`: refused, nothing deleted


def test_a_failed_insert_inside_replace_quarter_rows_keeps_the_old_rows(con):
    insert_row(con, "audit.t", quarter="2025Q1", kind="a", n=1)
    with pytest.raises(duckdb.Error):
        replace_quarter_rows(con, "audit.t", "2025Q1", [{"quarter": "2025Q1", "n": "not a number"}])
    assert con.execute("SELECT n FROM audit.t").fetchall() == [(1,)]
