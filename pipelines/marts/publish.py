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
from sources.registry import linked_sources
from warehouse.models import bind, materialize, model_sql
from warehouse.writes import insert_row, insert_rows, insert_select, replace_quarter, transaction

MARTS = ("warnings", "household_cases", "quarterly_comparison", "warnings_masked", "verification_results")


def staged_mart(mart: str) -> str:
    """The temporary table a mart is built into before the swap. The mart models built later
    read the earlier ones by these names (household_cases and warnings_masked read
    `__warnings`), so the name is fixed by the SQL in warehouse/marts/, not chosen here."""
    return f"__{mart}"


def ensure_person_key_secret(con: duckdb.DuckDBPyConnection) -> None:
    insert_select(
        con, "audit.settings",
        "SELECT 'person_key_secret' AS name, $value AS value WHERE NOT EXISTS "
        "(SELECT 1 FROM audit.settings WHERE name = 'person_key_secret')",
        {"value": secrets.token_hex(32)},
    )


def stage_rule_catalog(con: duckdb.DuckDBPyConnection, rules: list[tuple[str, str]]) -> None:
    """`rule_catalog` (rule_code, title): the rules' titles, which the warnings models join
    by that name (warehouse/marts/warnings.sql, warehouse/national/warnings.sql)."""
    con.execute("CREATE OR REPLACE TEMP TABLE rule_catalog (rule_code VARCHAR, title VARCHAR)")
    insert_rows(con, "rule_catalog", [{"rule_code": code, "title": title} for code, title in rules])


def _build_marts(con: duckdb.DuckDBPyConnection, params: dict) -> dict[str, int]:
    """Every mart into its temporary table (`staged_mart`), in MARTS order; rows per mart."""
    built = {}
    for mart in MARTS:
        sql = model_sql(f"marts/{mart}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {staged_mart(mart)} AS {sql}", bind(sql, params))
        built[mart] = con.execute(f"SELECT count(*) FROM {staged_mart(mart)}").fetchone()[0]
    return built


def publish_quarter(con: duckdb.DuckDBPyConnection, quarter: Quarter, run_id: str) -> dict[str, int]:
    params = {"quarter": str(quarter), "previous_quarter": str(quarter.previous), "q_end": quarter.end,
              "linked_sources": [spec.source for spec in linked_sources()]}
    ensure_person_key_secret(con)
    stage_rule_catalog(con, [(r.code, r.title) for r in all_rules()])
    materialize(con, "intermediate/int_verifications", params)
    link_labels = materialize(con, "marts/link_labels", params, table="__link_labels")
    built = _build_marts(con, params)
    with transaction(con):
        for mart in MARTS:
            replace_quarter(con, f"marts.{mart}", quarter, f"SELECT * FROM {staged_mart(mart)}", in_transaction=True)
        replace_quarter(con, "linked.link_labels", quarter, f"SELECT * FROM {link_labels}",
                        quarter_column="delivered_quarter", in_transaction=True)
        insert_row(con, "audit.publications", run_id=run_id, quarter=str(quarter), published_at=dt.datetime.now(),
                   warnings=built["warnings"], households=built["household_cases"])
    return built
