"""The one way to write to the warehouse.

Every stage that publishes rows does it through these helpers, so that each write is one
transaction (a failure leaves the quarter as it was, never half replaced) and every insert
names its columns (a table that gains a column, or a reordered one, cannot shift values
into the wrong place):

- `transaction(con)`: BEGIN … COMMIT, ROLLBACK on any exception (then re-raised).
- `insert_rows(con, table, rows)`: rows as mappings of column name to value.
- `insert_select(con, table, sql, params)`: `INSERT INTO table BY NAME <sql>`, the select's
  column names matched to the table's.
- `insert_arrow(con, table, data)`: an Arrow table's (a polars frame's `to_arrow()`) rows, its
  columns matched to the table's by name, appended by all of DuckDB's threads at once.
- `replace_quarter(con, table, quarter, sql, params, where=...)`: the quarter's rows (and
  those matching `where`, e.g. a rule family or a region) deleted and the select inserted,
  in one transaction unless the caller already holds one (`in_transaction=True`). A table
  that names its quarter otherwise (`linked.link_labels.delivered_quarter`) says so with
  `quarter_column`. `replace_quarter_rows` does the same with rows given as mappings;
  `delete_quarter` is its first half, for a caller that inserts (an Arrow table, say)
  inside a transaction of its own.

DuckDB does not nest transactions: a helper called inside `transaction()` must be told so
(`in_transaction=True`), which is why the helpers that write more than one statement take
that flag rather than opening a transaction of their own unconditionally.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

if TYPE_CHECKING:  # the warehouse takes a quarter as its text; pipelines.quarters gives it
    from pipelines.quarters import Quarter


class WriteError(ValueError):
    """A write names a column its table does not have (a bug, not bad input)."""


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _maybe_transaction(con: duckdb.DuckDBPyConnection, in_transaction: bool) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext(con) if in_transaction else transaction(con)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of a table (`schema.table`, or a temporary table), in order."""
    return [d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description]


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert rows given as {column: value}; columns left out are NULL (or their default).
    Every row must name the same columns. Returns the number of rows inserted."""
    rows = list(rows)
    if not rows:
        return 0
    names = list(rows[0].keys())
    known = set(table_columns(con, table))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WriteError(f"{table} has no column(s) {unknown}")
    for i, row in enumerate(rows):
        if list(row.keys()) != names:
            raise WriteError(f"{table}: row {i} names columns {list(row.keys())}, the first names {names}")
    columns = ", ".join(f'"{n}"' for n in names)
    placeholders = ", ".join("?" for _ in names)
    con.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", [[row[n] for n in names] for row in rows])
    return len(rows)


def insert_row(con: duckdb.DuckDBPyConnection, table: str, **values: Any) -> None:
    """One row, its columns by keyword: `insert_row(con, "audit.runs", run_id=..., quarter=...)`."""
    insert_rows(con, table, [values])


def insert_select(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: Mapping[str, Any] | list | None = None) -> None:
    """`INSERT INTO table BY NAME <sql>`: the select's columns matched to the table's by name
    (a column the table has and the select lacks is NULL; one the table lacks is an error)."""
    con.execute(f"INSERT INTO {table} BY NAME {sql}", params if params is not None else {})


# DuckDB's row-group size: Arrow data in chunks of this many rows is appended by all of
# DuckDB's threads at once, each compressing its own row groups; a single chunk is appended
# by one thread (4.3 s against 1.9 s per million settlements, inserted alone).
INSERT_CHUNK_ROWS = 122_880


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, chunk_rows: int = INSERT_CHUNK_ROWS) -> int:
    """Insert the rows of an Arrow table, its columns matched to the table's by name (as
    `insert_select`). Returns the number of rows inserted (none: nothing is run)."""
    if data.num_rows == 0:
        return 0
    chunked = pa.Table.from_batches(data.to_batches(max_chunksize=chunk_rows), schema=data.schema)
    # A name of this call's own: the scan is visible to the connection only while it runs.
    name = f"__doudi_rows_{uuid.uuid4().hex[:12]}"
    con.register(name, chunked)
    try:
        insert_select(con, table, f"SELECT * FROM {name}")
    finally:
        con.unregister(name)
    return data.num_rows


def delete_quarter(
    con: duckdb.DuckDBPyConnection,
    table: str,
    quarter: "Quarter | str",
    where: Mapping[str, Any] | None = None,
    quarter_column: str = "quarter",
) -> None:
    """Delete the quarter's rows of `table` (narrowed by `where`: {column: value}): the first
    half of a replace, for a caller that inserts the rows itself inside its transaction."""
    conditions = {quarter_column: str(quarter), **(where or {})}
    known = set(table_columns(con, table))
    unknown = [c for c in conditions if c not in known]
    if unknown:
        raise WriteError(f"{table} has no column(s) {unknown}")
    clause = " AND ".join(f'"{c}" = ?' for c in conditions)
    con.execute(f"DELETE FROM {table} WHERE {clause}", list(conditions.values()))


def replace_quarter(
    con: duckdb.DuckDBPyConnection,
    table: str,
    quarter: "Quarter | str",
    sql: str,
    params: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    in_transaction: bool = False,
    quarter_column: str = "quarter",
) -> None:
    """Replace the quarter's rows of `table` (narrowed by `where`: {column: value}, e.g.
    {"rule_kind": "need"}) with the rows `sql` selects, matched by column name."""
    with _maybe_transaction(con, in_transaction):
        delete_quarter(con, table, quarter, where, quarter_column)
        insert_select(con, table, sql, params)


def replace_quarter_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    quarter: "Quarter | str",
    rows: Iterable[Mapping[str, Any]],
    where: Mapping[str, Any] | None = None,
    in_transaction: bool = False,
) -> int:
    """As `replace_quarter`, the new rows given as {column: value} (`insert_rows`); none
    leaves the quarter's scope empty. Returns the number of rows inserted."""
    rows = list(rows)
    with _maybe_transaction(con, in_transaction):
        delete_quarter(con, table, quarter, where)
        return insert_rows(con, table, rows)
