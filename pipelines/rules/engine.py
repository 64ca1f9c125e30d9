"""Running a rule family for a quarter.

A rule declares the tables it reads (`Rule.inputs`); the engine builds, once per run, the
engine inputs the family's rules declare, as temporary tables, and nothing else:
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
  prior_findings        the findings of the family's rules run before this one (rules run
                        in code order): N06 looks at N01's
A rule's own SQL may also read warehouse tables it names among its inputs (the quarter's
full-stock staging tables, say). Then every member finding gets the records it rests on in
its evidence, and an ineligibility finding that no record corroborates outright is held
back to orange with "先核实身份" in its action (`records`). The family's findings replace
the quarter's findings of that family in `rules.findings`, in one transaction.
"""

from __future__ import annotations

import json
import logging
import time

import duckdb

from pipelines.link import thresholds
from pipelines.link.corroboration import CORROBORATED_SQL
from pipelines.policy.params import ParameterSet, default_parameters
from pipelines.policy.window import history_window
from pipelines.quarters import Quarter
from pipelines.rules.catalog import ENGINE_INPUTS, Rule, rules_of
from pipelines.rules.records import apply_identity_caveat, attach_records, record_lookup_sql
from warehouse.models import bind, materialize
from warehouse.writes import insert_select, replace_quarter

log = logging.getLogger(__name__)

# The engine inputs that are SQL models (warehouse/intermediate/<name>.sql).
MODEL_INPUTS = {
    "int_roster": "intermediate/int_roster",
    "int_death_records": "intermediate/int_death_records",
    "int_settlements": "intermediate/int_settlements",
    "int_standards": "intermediate/int_standards",
}
INPUT_MODELS = list(MODEL_INPUTS.values())
# Parameters the engine reads itself, for the shared inputs (int_standards' defaults).
ENGINE_PARAMETERS = ("default_monthly_standard_yuan", "default_disposable_income_yuan")
# What the records step (attach_records) reads, built when any rule of the family reads links.
RECORDS_INPUTS = ("int_links", "int_roster")
# Where a family's findings are collected before they replace the quarter's.
FINDINGS = "__findings"


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


def declared_inputs(rules: list[Rule]) -> list[str]:
    """The engine inputs `rules` declare (and the records step's, when they read links), in
    ENGINE_INPUTS order. A province's settlements are tens of millions of rows: they are
    built only for a family whose rules say they read them."""
    wanted = {table for rule in rules for table in rule.inputs}
    if "int_links" in wanted:
        wanted.update(RECORDS_INPUTS)
    return [name for name in ENGINE_INPUTS if name in wanted]


def _build_links(con: duckdb.DuckDBPyConnection, quarter: Quarter, findings: str) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE int_links AS
        SELECT *, match_probability >= $ineligibility AS for_ineligibility, match_probability >= $need AS for_need,
               coalesce({CORROBORATED_SQL}, false) AS corroborated
        FROM linked.matches WHERE quarter = $quarter
        """,
        {"quarter": str(quarter), "ineligibility": thresholds.INELIGIBILITY, "need": thresholds.NEED},
    )


def _build_identity_conflicts(con: duckdb.DuckDBPyConnection, quarter: Quarter, findings: str) -> None:
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


def _build_prior_findings(con: duckdb.DuckDBPyConnection, quarter: Quarter, findings: str) -> None:
    # A view: each rule sees the findings of the rules run before it, as they are then.
    con.execute(f"CREATE OR REPLACE TEMP VIEW prior_findings AS SELECT * FROM {findings}")


BUILDERS = {
    "int_links": _build_links,
    "int_identity_conflicts": _build_identity_conflicts,
    "prior_findings": _build_prior_findings,
}


def prepare_inputs(
    con: duckdb.DuckDBPyConnection, quarter: Quarter, params: ParameterSet, rules: list[Rule], findings: str = FINDINGS
) -> dict:
    """Build the engine inputs `rules` declare; return the base SQL parameters. `findings`
    is the table the family's findings are collected in (what `prior_findings` shows)."""
    base = quarter_params(quarter) | {
        "lookback_start": history_window(quarter, params).start,
        **{name: sql_value(params[name]) for name in ENGINE_PARAMETERS},
    }
    for name in declared_inputs(rules):
        if name in MODEL_INPUTS:
            materialize(con, MODEL_INPUTS[name], base)
        else:
            BUILDERS[name](con, quarter, findings)
    return base


def run_rule(
    con: duckdb.DuckDBPyConnection, rule: Rule, quarter: Quarter, base: dict, params: ParameterSet, findings: str = FINDINGS
) -> int:
    """Run one rule and add its findings to `findings`; return how many."""
    values = dict(base) | rule.action_parameters()
    for name in rule.parameters:
        values[name] = sql_value(params[name])
    cited = json.dumps(params.cited(list(rule.parameters)), ensure_ascii=False, default=str)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __rule_out AS {rule.sql}", bind(rule.sql, values))
    insert_select(
        con,
        findings,
        """
        SELECT $quarter AS quarter, $code AS rule_code, $kind AS rule_kind, household_id, member_id, severity, due_date,
               coalesce(action, $action) AS action, $policy_ref AS policy_ref, evidence::JSON AS evidence,
               $parameters::JSON AS parameters, list_sort(basis) AS basis
        FROM __rule_out
        """,
        {"quarter": str(quarter), "code": rule.code, "kind": rule.kind, "action": rule.action,
         "policy_ref": rule.policy_ref, "parameters": cited},
    )
    return con.execute("SELECT count(*) FROM __rule_out").fetchone()[0]


def run_family(con: duckdb.DuckDBPyConnection, kind: str, quarter: Quarter) -> dict[str, int]:
    """Run every rule of a family and replace the quarter's findings of that family."""
    rules = rules_of(kind)
    params = default_parameters().at(quarter.end)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {FINDINGS} AS SELECT * FROM rules.findings LIMIT 0")
    started = time.perf_counter()
    base = prepare_inputs(con, quarter, params, rules, FINDINGS)
    log.info("rules %s: inputs built in %.1f s", kind, time.perf_counter() - started)
    counts = {}
    for rule in rules:
        started = time.perf_counter()
        counts[rule.code] = run_rule(con, rule, quarter, base, params, FINDINGS)
        log.info("rule %s: %d findings in %.1f s", rule.code, counts[rule.code], time.perf_counter() - started)
    if "int_links" in declared_inputs(rules):  # the rules read linked records
        started = time.perf_counter()
        finding_records = attach_records(con, quarter, FINDINGS)
        held = apply_identity_caveat(con, FINDINGS, finding_records)
        log.info("rules %s: records attached in %.1f s, %d held to 先核实身份", kind, time.perf_counter() - started, held)
    replace_quarter(con, "rules.findings", quarter, f"SELECT * FROM {FINDINGS}", where={"rule_kind": kind})
    return counts
