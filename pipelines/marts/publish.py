"""Publish a quarter's marts atomically (and the link labels its returned lists gave).

Everything is computed into temporary tables first; the swap (delete the quarter's rows,
insert the new ones, in every mart, plus the audit row) is one transaction, so readers
see the old quarter or the new one, never a mix, and a failure leaves the old one.
"""

from __future__ import annotations

import datetime as dt
import secrets

import duckdb

from pipelines.quarters import Quarter
from pipelines.rules.catalog import all_rules
from warehouse.models import bind, materialize, model_sql

MARTS = ("warnings", "household_cases", "quarterly_comparison", "warnings_masked", "verification_results")


def _ensure_person_key_secret(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "INSERT INTO audit.settings SELECT 'person_key_secret', ? WHERE NOT EXISTS "
        "(SELECT 1 FROM audit.settings WHERE name = 'person_key_secret')",
        [secrets.token_hex(32)],
    )


def publish_quarter(con: duckdb.DuckDBPyConnection, quarter: Quarter, run_id: str) -> dict[str, int]:
    params = {"quarter": str(quarter), "previous_quarter": str(quarter.previous), "q_end": quarter.end}
    _ensure_person_key_secret(con)
    con.execute("CREATE OR REPLACE TEMP TABLE rule_catalog (rule_code VARCHAR, title VARCHAR)")
    con.executemany("INSERT INTO rule_catalog VALUES (?, ?)", [(r.code, r.title) for r in all_rules()])
    materialize(con, "intermediate/int_verifications", params)
    materialize(con, "marts/link_labels", params, table="__link_labels")
    built = {}
    for mart in MARTS:
        sql = model_sql(f"marts/{mart}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE __{mart} AS {sql}", bind(sql, params))
        built[mart] = con.execute(f"SELECT count(*) FROM __{mart}").fetchone()[0]
    con.execute("BEGIN TRANSACTION")
    try:
        for mart in MARTS:
            con.execute(f"DELETE FROM marts.{mart} WHERE quarter = ?", [str(quarter)])
            con.execute(f"INSERT INTO marts.{mart} BY NAME SELECT * FROM __{mart}")
        con.execute("DELETE FROM linked.link_labels WHERE delivered_quarter = ?", [str(quarter)])
        con.execute("INSERT INTO linked.link_labels BY NAME SELECT * FROM __link_labels")
        con.execute(
            "INSERT INTO audit.publications VALUES (?, ?, ?, ?, ?)",
            [run_id, str(quarter), dt.datetime.now(), built["warnings"], built["household_cases"]],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return built
