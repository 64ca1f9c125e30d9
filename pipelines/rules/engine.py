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
from pipelines.policy.params import Parameters, ParameterSet, default_parameters
from pipelines.policy.regional import HOUSEHOLD_COUNTY_SQL, Binding, RegionalParameters
from pipelines.policy.window import history_window
from pipelines.quarters import Quarter
from pipelines.rules.catalog import ENGINE_INPUTS, Rule, rules_of
from pipelines.rules.records import apply_identity_caveat, attach_records, record_lookup_sql
from warehouse.models import bind, materialize
from warehouse.writes import insert_rows, insert_select, replace_quarter

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
# The households of the quarter with their county, built when a rule's values or citations differ by county.
HOUSEHOLD_COUNTY = "__household_county"


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


def _regional(params: ParameterSet | RegionalParameters) -> RegionalParameters:
    """A plain parameter set (the national comparison's) is the defaults for every county."""
    if isinstance(params, RegionalParameters):
        return params
    return RegionalParameters(params.day, params, {})


def _engine_parameter(regional: RegionalParameters, name: str) -> str:
    """An engine parameter (int_standards' defaults) for every county, as one JSON object
    {county_code: value, "*": the default} the model looks the county up in."""
    by_county = {"*": regional.default[name]} | {c: p[name] for c, p in regional.by_county.items()}
    return json.dumps(by_county, ensure_ascii=False, sort_keys=True)


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
    con: duckdb.DuckDBPyConnection,
    quarter: Quarter,
    params: ParameterSet | RegionalParameters,
    rules: list[Rule],
    findings: str = FINDINGS,
) -> dict:
    """Build the engine inputs `rules` declare; return the base SQL parameters. `findings`
    is the table the family's findings are collected in (what `prior_findings` shows)."""
    regional = _regional(params)
    base = quarter_params(quarter) | {
        "lookback_start": history_window(quarter, regional.default).start,
        **{name: _engine_parameter(regional, name) for name in ENGINE_PARAMETERS},
    }
    for name in declared_inputs(rules):
        if name in MODEL_INPUTS:
            materialize(con, MODEL_INPUTS[name], base)
        else:
            BUILDERS[name](con, quarter, findings)
    return base


def _run_bindings(con: duckdb.DuckDBPyConnection, rule: Rule, values: dict, bindings: list[Binding]) -> None:
    """The rule's rows into __rule_out: one run when every county shares one binding, else
    one run per binding, each kept for the households of its counties."""
    if len(bindings) == 1:
        sql = rule.sql
        con.execute(f"CREATE OR REPLACE TEMP TABLE __rule_out AS {sql}", bind(sql, values | bindings[0].values))
        return
    sql = f"""
        SELECT r.* FROM ({rule.sql}) AS r LEFT JOIN {HOUSEHOLD_COUNTY} AS hc USING (household_id)
        WHERE list_contains($binding_counties, hc.county_code) OR ($binding_unknown AND hc.county_code IS NULL)
    """
    for i, binding in enumerate(bindings):
        bound = values | binding.values | {"binding_counties": list(binding.counties), "binding_unknown": binding.includes_unknown}
        verb = "CREATE OR REPLACE TEMP TABLE __rule_out AS" if i == 0 else "INSERT INTO __rule_out"
        con.execute(f"{verb} {sql}", bind(sql, bound))


def _ensure_household_county(con: duckdb.DuckDBPyConnection, quarter: Quarter) -> None:
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {HOUSEHOLD_COUNTY} AS {HOUSEHOLD_COUNTY_SQL}", {"quarter": str(quarter)})


def run_rule(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    quarter: Quarter,
    base: dict,
    params: ParameterSet | RegionalParameters,
    findings: str = FINDINGS,
) -> int:
    """Run one rule and add its findings to `findings`; return how many. Each finding
    cites the values and documents in force for its household's county."""
    regional = _regional(params)
    values = dict(base) | rule.action_parameters()
    bindings = regional.bindings(rule.parameters)
    (cited, policy_ref), per_county = regional.citations(rule)
    if len(bindings) > 1 or per_county:
        _ensure_household_county(con, quarter)
    _run_bindings(con, rule, values, bindings)
    con.execute("CREATE OR REPLACE TEMP TABLE __citations (county_code VARCHAR, parameters VARCHAR, policy_ref VARCHAR)")
    insert_rows(con, "__citations", [{"county_code": c, "parameters": p, "policy_ref": r} for c, p, r in per_county])
    cited_by_county = (
        f"LEFT JOIN {HOUSEHOLD_COUNTY} AS hc USING (household_id) LEFT JOIN __citations AS c ON c.county_code = hc.county_code"
        if per_county else "LEFT JOIN __citations AS c ON false"
    )
    insert_select(
        con,
        findings,
        f"""
        SELECT $quarter AS quarter, $code AS rule_code, $kind AS rule_kind, o.household_id, o.member_id, o.severity, o.due_date,
               coalesce(o.action, $action) AS action, coalesce(c.policy_ref, $policy_ref) AS policy_ref,
               json_merge_patch(o.evidence::JSON, json_object('parameters', coalesce(c.parameters, $parameters)::JSON)) AS evidence,
               coalesce(c.parameters, $parameters)::JSON AS parameters, list_sort(o.basis) AS basis
        FROM __rule_out AS o {cited_by_county}
        """,
        {"quarter": str(quarter), "code": rule.code, "kind": rule.kind, "action": rule.action,
         "policy_ref": policy_ref, "parameters": cited},
    )
    return con.execute("SELECT count(*) FROM __rule_out").fetchone()[0]


def evaluate_family(
    con: duckdb.DuckDBPyConnection, kind: str, quarter: Quarter, parameters: Parameters, findings: str = FINDINGS
) -> dict[str, int]:
    """Run every rule of a family under `parameters`, collecting the findings in the
    temporary table `findings` (records attached, identity caveat applied) without
    writing the warehouse: what both the quarter's run and a policy replay do."""
    rules = rules_of(kind)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {findings} AS SELECT * FROM rules.findings LIMIT 0")
    con.execute(f"DROP TABLE IF EXISTS temp.{HOUSEHOLD_COUNTY}")
    started = time.perf_counter()
    regional = RegionalParameters.for_quarter(con, parameters, quarter)
    base = prepare_inputs(con, quarter, regional, rules, findings)
    log.info("rules %s: inputs built in %.1f s", kind, time.perf_counter() - started)
    counts = {}
    for rule in rules:
        started = time.perf_counter()
        counts[rule.code] = run_rule(con, rule, quarter, base, regional, findings)
        log.info("rule %s: %d findings in %.1f s", rule.code, counts[rule.code], time.perf_counter() - started)
    if "int_links" in declared_inputs(rules):  # the rules read linked records
        started = time.perf_counter()
        finding_records = attach_records(con, quarter, findings)
        held = apply_identity_caveat(con, findings, finding_records)
        log.info("rules %s: records attached in %.1f s, %d held to 先核实身份", kind, time.perf_counter() - started, held)
    return counts


def run_family(con: duckdb.DuckDBPyConnection, kind: str, quarter: Quarter) -> dict[str, int]:
    """Run every rule of a family and replace the quarter's findings of that family."""
    counts = evaluate_family(con, kind, quarter, default_parameters(), FINDINGS)
    replace_quarter(con, "rules.findings", quarter, f"SELECT * FROM {FINDINGS}", where={"rule_kind": kind})
    return counts
