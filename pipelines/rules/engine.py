"""Running a rule family for a quarter.

The inputs every rule reads are built once per run as temporary tables:
  int_roster            the quarter's member rows with their household's fields
  int_links             linked.matches of the quarter, with `for_ineligibility` / `for_need`
                        saying whether the link is strong enough for that kind of rule,
                        and `corroborated`: the record's ID and name agree outright
  int_identity_conflicts  linked.identity_conflicts of the quarter (records carrying a
                        member's ID under another name, rule Q02), with the records as written
  int_death_records     deaths delivered so far (accumulated)
  int_settlements       settlements of the 12 months ending Q.end, delivered so far, that
                        the quarter links to a roster member (rules read them through links)
  int_standards         the standard and disposable income in force on Q.end, per county
                        and 城乡类别 (delivered standards, else the built-in defaults)
A rule's own SQL reads these and the quarter's full-stock staging tables. Rules of a
family run in code order and can read the findings of earlier ones (`__findings`): N06
looks at N01's. Then every member finding gets the records it rests on in its evidence,
and an ineligibility finding that no record corroborates outright is held back to orange
with "先核实身份" in its action (`records`).
"""

from __future__ import annotations

import json
import logging
import re
import time

import duckdb

from pipelines.link import thresholds
from pipelines.link.corroboration import CORROBORATED_SQL
from pipelines.quarters import Quarter
from pipelines.rules.catalog import Rule, rules_of
from pipelines.policy.params import ParameterSet, default_parameters
from pipelines.policy.window import history_window
from pipelines.rules.records import apply_identity_caveat, attach_records, record_lookup_sql
from warehouse.models import bind, materialize

log = logging.getLogger(__name__)

INPUT_MODELS = [
    "intermediate/int_roster",
    "intermediate/int_death_records",
    "intermediate/int_settlements",
    "intermediate/int_standards",
]


def quarter_params(quarter: Quarter) -> dict:
    return {
        "quarter": str(quarter),
        "previous_quarter": str(quarter.previous),
        "quarter_a_year_before": str(quarter + (-4)),
        "q_start": quarter.start,
        "q_end": quarter.end,
        "next_q_end": quarter.next.end,
        "ineligibility_threshold": thresholds.INELIGIBILITY,
    }


def sql_value(value):
    """Parameters as DuckDB binds them: a mapping of lists becomes `key|item` strings
    (tested with list_contains), a mapping of numbers a JSON object, lists stay lists."""
    if isinstance(value, dict):
        if all(isinstance(v, list) for v in value.values()):
            return [f"{k}|{item}" for k, items in value.items() for item in items]
        return json.dumps(value, ensure_ascii=False)
    return value


def needed_inputs(rules: list[Rule]) -> list[str]:
    """The input models (and `int_links`) the rules' SQL reads: a province's settlements
    are tens of millions of rows, built only for the family whose rules use them."""
    names = [*INPUT_MODELS, "int_links", "int_identity_conflicts"]
    return [m for m in names if any(re.search(rf"\b{m.rsplit('/', 1)[-1]}\b", rule.sql) for rule in rules)]


def prepare_inputs(con: duckdb.DuckDBPyConnection, quarter: Quarter, params: ParameterSet, rules: list[Rule]) -> dict:
    """Build the shared input tables `rules` read; return the base SQL parameters."""
    wanted = needed_inputs(rules)
    base = quarter_params(quarter) | {
        "lookback_start": history_window(quarter, params).start,
        "default_monthly_standard_yuan": sql_value(params["default_monthly_standard_yuan"]),
        "default_disposable_income_yuan": sql_value(params["default_disposable_income_yuan"]),
    }
    for model in INPUT_MODELS:
        if model in wanted:
            materialize(con, model, base)
    if "int_identity_conflicts" in wanted:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __conflict_keys AS SELECT * FROM linked.identity_conflicts WHERE quarter = $quarter",
            {"quarter": str(quarter)},
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE int_identity_conflicts AS
            SELECT c.quarter, c.source, c.record_key, c.member_id, c.name_as_written,
                   w.source_title, w.id_number_as_written, w.record_date, w.detail
            FROM __conflict_keys AS c
            LEFT JOIN ({record_lookup_sql('__conflict_keys')}) AS w USING (source, record_key)
            """,
            {"quarter": str(quarter)},
        )
    if "int_links" not in wanted:
        return base
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE int_links AS
        SELECT *, match_probability >= $ineligibility AS for_ineligibility, match_probability >= $need AS for_need,
               coalesce({CORROBORATED_SQL}, false) AS corroborated
        FROM linked.matches WHERE quarter = $quarter
        """,
        {"quarter": str(quarter), "ineligibility": thresholds.INELIGIBILITY, "need": thresholds.NEED},
    )
    return base


def run_rule(con: duckdb.DuckDBPyConnection, rule: Rule, quarter: Quarter, base: dict, params: ParameterSet) -> int:
    values = dict(base)
    for name in rule.parameters:
        values[name] = sql_value(params[name])
    cited = json.dumps(
        {n: {"value": params[n], "since": params.entry(n).start.isoformat(), "reference": params.reference(n)} for n in rule.parameters},
        ensure_ascii=False,
        default=str,
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE __rule_out AS {rule.sql}", bind(rule.sql, values))
    con.execute(
        """
        INSERT INTO __findings
        SELECT $quarter, $code, $kind, household_id, member_id, severity, due_date,
               coalesce(action, $action), $policy_ref, evidence::JSON, $parameters::JSON, list_sort(basis)
        FROM __rule_out
        """,
        {"quarter": str(quarter), "code": rule.code, "kind": rule.kind, "action": rule.action,
         "policy_ref": rule.policy_ref, "parameters": cited},
    )
    return con.execute("SELECT count(*) FROM __rule_out").fetchone()[0]


def run_family(con: duckdb.DuckDBPyConnection, kind: str, quarter: Quarter) -> dict[str, int]:
    """Run every rule of a family and replace the quarter's findings of that family."""
    params = default_parameters().at(quarter.end)
    started = time.perf_counter()
    base = prepare_inputs(con, quarter, params, rules_of(kind))
    log.info("rules %s: inputs built in %.1f s", kind, time.perf_counter() - started)
    con.execute("CREATE OR REPLACE TEMP TABLE __findings AS SELECT * FROM rules.findings LIMIT 0")
    counts = {}
    for rule in rules_of(kind):
        started = time.perf_counter()
        counts[rule.code] = run_rule(con, rule, quarter, base, params)
        log.info("rule %s: %d findings in %.1f s", rule.code, counts[rule.code], time.perf_counter() - started)
    if "int_links" in needed_inputs(rules_of(kind)):  # the rules read linked records
        started = time.perf_counter()
        attach_records(con, str(quarter))
        held = apply_identity_caveat(con)
        log.info("rules %s: records attached in %.1f s, %d held to 先核实身份", kind, time.perf_counter() - started, held)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM rules.findings WHERE quarter = ? AND rule_kind = ?", [str(quarter), kind])
        con.execute("INSERT INTO rules.findings SELECT * FROM __findings")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return counts

