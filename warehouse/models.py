"""SQL models kept as files, one model per file, in the dbt style: CTEs that read their
sources, rename and compute, ending in `select * from final`.

A model takes named parameters (`$quarter`, `$q_end`, ...) which DuckDB binds; the
pipeline materialises intermediate models as temporary tables for the run.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import duckdb

MODEL_DIR = Path(__file__).parent
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


@functools.cache
def model_sql(name: str) -> str:
    """`intermediate/int_roster` -> the file's SQL."""
    path = MODEL_DIR / f"{name}.sql"
    return path.read_text(encoding="utf-8")


def parameters_of(sql: str) -> set[str]:
    # Strip comments so a `$x` in prose is not taken for a parameter.
    body = re.sub(r"--[^\n]*", "", sql)
    return set(_PARAM.findall(body))


def bind(sql: str, params: dict) -> dict:
    """Only the parameters the SQL uses (DuckDB refuses unused named parameters)."""
    wanted = parameters_of(sql)
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"SQL needs parameters {sorted(missing)}")
    return {k: params[k] for k in wanted}


def materialize(con: duckdb.DuckDBPyConnection, name: str, params: dict, table: str | None = None) -> str:
    """Run a model into a temporary table named after it; return the table name."""
    sql = model_sql(name)
    table = table or name.rsplit("/", 1)[-1]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", bind(sql, params))
    return table
