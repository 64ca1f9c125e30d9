"""Linking a quarter's extract records to its roster members (`linked.matches`).

The deterministic pass joins cleaned ID numbers (`warehouse/intermediate/link_exact_id.sql`);
the result replaces the quarter's rows in one transaction.
"""

from __future__ import annotations

import duckdb

from pipelines.quarters import Quarter, add_months
from pipelines.rules.params import default_parameters
from warehouse.models import materialize


def link_params(quarter: Quarter) -> dict:
    lookback = default_parameters().at(quarter.end)["rigid_expenditure_lookback_months"]
    return {"quarter": str(quarter), "q_end": quarter.end, "lookback_start": add_months(quarter.end, -lookback)}


def link_quarter(con: duckdb.DuckDBPyConnection, quarter: Quarter) -> dict[str, dict[str, int]]:
    params = link_params(quarter)
    materialize(con, "intermediate/int_roster", params)
    materialize(con, "intermediate/int_extract_identities", params)
    materialize(con, "intermediate/link_exact_id", params, table="__links")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM linked.matches WHERE quarter = ?", [str(quarter)])
        con.execute("INSERT INTO linked.matches BY NAME SELECT * FROM __links")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    counts: dict[str, dict[str, int]] = {}
    for source, method, n in con.execute("SELECT source, match_method, count(*) FROM __links GROUP BY ALL ORDER BY ALL").fetchall():
        counts.setdefault(source, {})[method] = int(n)
    return counts
