"""The linker's SQL models whose ID blocking keys are generated from `blocking`.

`warehouse/intermediate/link_identities.sql` and `link_candidate_records.sql` do not write
the seven ID keys out (they are defined once, in `blocking.ID_KEYS`): a line holding only
`{{ fragment }}` stands where they go, and `render` fills it in at the line's indentation.
Such a model cannot run unfilled (`{{` does not parse), so it is materialised through
`materialize_linkage`, never `warehouse.models.materialize`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb

from pipelines.link import blocking
from warehouse.models import bind, model_sql

# fragment -> its SQL, given the indentation of the placeholder's line
FRAGMENTS: dict[str, Callable[[str], str]] = {
    "id_key_columns": blocking.key_columns_sql,
    "record_id_key_columns": lambda indent: blocking.record_key_columns_sql("r"),
    "near_damaged_member_by_id_key": blocking.near_damaged_member_sql,
}
_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{\{\s*(?P<name>[a-z_]+)\s*\}\}[ \t]*$", re.MULTILINE)


def render(sql: str) -> str:
    """The SQL with every placeholder line filled in; an unknown fragment, or a `{{` left
    anywhere else, is an error."""

    def fill(match: re.Match) -> str:
        name, indent = match["name"], match["indent"]
        if name not in FRAGMENTS:
            raise KeyError(f"unknown SQL fragment {{{{ {name} }}}} (known: {sorted(FRAGMENTS)})")
        return indent + FRAGMENTS[name](indent)

    rendered = _PLACEHOLDER.sub(fill, sql)
    if "{{" in re.sub(r"--[^\n]*", "", rendered):
        raise ValueError("a {{ placeholder }} must stand on a line of its own")
    return rendered


def linkage_sql(name: str) -> str:
    """`intermediate/link_identities` -> the model's SQL, filled in."""
    return render(model_sql(name))


def materialize_linkage(con: duckdb.DuckDBPyConnection, name: str, params: dict, table: str | None = None) -> str:
    """Like `warehouse.models.materialize`, for a model with generated parts: run it into a
    temporary table (named after it unless `table` is given); return the table's name."""
    sql = linkage_sql(name)
    table = table or name.rsplit("/", 1)[-1]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", bind(sql, params))
    return table
