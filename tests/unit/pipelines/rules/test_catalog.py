"""Every rule of RULES.md is in the catalog, cites its clause, uses only dated parameters,
declares the tables it reads and the actions it gives, and its docstring names its
parameter files; each of these checks is also shown to catch what it is for."""

import datetime as dt
import re

import duckdb

from pipelines.policy.params import default_parameters
from pipelines.quarters import Quarter
from pipelines.rules import engine
from pipelines.rules.catalog import ACTION_PARAMETER, ENGINE_INPUTS, all_rules, rule, rules_of
from warehouse.connection import connect
from warehouse.models import parameters_of

RULES_MD = ["D01", "D02", "D03", "D04", "N01", "N02", "N03", "N04", "N05", "N06", "Q01", "Q02"]
BOUND_BY_ENGINE = {
    "quarter", "previous_quarter", "quarter_a_year_before", "q_start", "q_end", "next_q_end", "ineligibility_threshold",
    "lookback_start", *engine.ENGINE_PARAMETERS,
}


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _without_literals(sql: str) -> str:
    return re.sub(r"'[^']*'", "''", _without_comments(sql))


def test_every_rule_is_implemented_once():
    codes = [r.code for r in all_rules()]
    assert sorted(codes) == RULES_MD


def test_rules_cite_their_clause():
    for r in all_rules():
        assert r.policy_ref and r.title and r.action, r.code
        assert r.code in r.doc.split()[0], r.code  # the docstring opens with the rule


def test_every_parameter_in_the_sql_is_declared_and_in_force():
    in_force = default_parameters().at(dt.date(2025, 9, 30))
    for r in all_rules():
        used = parameters_of(r.sql) - BOUND_BY_ENGINE - set(r.action_parameters())
        assert used == set(r.parameters), (r.code, used ^ set(r.parameters))
        for name in r.parameters:
            assert in_force.reference(name)


# ---- no number in a rule that is not a parameter --------------------------------------------

NUMBER = re.compile(r"(?<![\w$.])\d+(?:\.\d+)?(?![\w.])")


def _enclosing_call(body: str, position: int) -> str:
    """The function whose parentheses hold `position` (`round`, `substr`), or ''."""
    depth = 0
    for i in range(position - 1, -1, -1):
        if body[i] == ")":
            depth += 1
        elif body[i] == "(":
            if depth == 0:
                name = re.search(r"(\w+)\s*$", body[:i])
                return name.group(1).lower() if name else ""
            depth -= 1
    return ""


def _is_last_argument(body: str, end: int) -> bool:
    return body[end:].lstrip().startswith(")")


# The numbers a rule's SQL may hold without a parameter, each for a reason that is not
# policy. Anything else (an amount, a share such as 0.9, a count of days) must be a dated,
# cited parameter. Only whole numbers: no structural reason needs a decimal.
STRUCTURAL = {
    "zero and one (empty amounts, counts, flags)": lambda body, m: m.group() in {"0", "1"},
    "decimal places of round(…, n)": lambda body, m: _enclosing_call(body, m.start()) == "round" and _is_last_argument(body, m.end()),
    "character positions in an ID number": lambda body, m: _enclosing_call(body, m.start()) == "substr",
    "12 months a year": lambda body, m: m.group() == "12" and (
        re.search(r"[*/]\s*$", body[: m.start()]) is not None or re.match(r"\s*\*", body[m.end():]) is not None
    ),
    "3 months a quarter": lambda body, m: m.group() == "3" and re.search(r"count\(distinct quarter\)\s*\*\s*$", body[: m.start()]),
    "odd or even (the sex digit)": lambda body, m: m.group() == "2" and re.search(r"%\s*$", body[: m.start()]),
}


def hard_coded_numbers(sql: str) -> list[str]:
    body = _without_literals(sql)
    return [
        m.group() for m in NUMBER.finditer(body)
        if "." in m.group() or not any(allowed(body, m) for allowed in STRUCTURAL.values())
    ]


def test_every_number_in_a_rule_is_a_parameter():
    for r in all_rules():
        assert hard_coded_numbers(r.sql) == [], r.code


def test_the_number_check_catches_a_planted_number():
    assert hard_coded_numbers("select round(x / 12, 2), substr(id, 17, 1)::int % 2 = 1 from t") == []
    assert hard_coded_numbers("select x from t where share > 0.9") == ["0.9"]
    assert hard_coded_numbers("select round(x, 0.9), coalesce(y, 30) from t") == ["0.9", "30"]
    planted = rule("N06").sql.replace("> $medical_burden_share * annual_income_yuan", "> 0.9 * annual_income_yuan")
    assert planted != rule("N06").sql and hard_coded_numbers(planted) == ["0.9"]


# ---- the actions: every sentence once, in Python ----------------------------------------------

CHINESE_LITERAL = re.compile(r"'[^']*[\u4e00-\u9fff][^']*'")


def _action_expressions(sql: str) -> list[str]:
    """The expressions of the `… as action` columns, back to the comma before them."""
    body = _without_comments(sql)
    found = []
    for m in re.finditer(r"\bas action\b", body):
        depth, i = 0, m.start()
        while i > 0 and not (depth == 0 and body[i - 1] == ","):
            i -= 1
            depth += {")": 1, "(": -1}.get(body[i], 0)
        found.append(body[i:m.start()])
    return found


def test_no_action_sentence_is_written_in_a_rules_sql():
    for r in all_rules():
        expressions = _action_expressions(r.sql)
        assert expressions, r.code
        for expression in expressions:
            assert not CHINESE_LITERAL.search(expression), (r.code, expression)
        in_sql = {p for p in parameters_of(r.sql) if p.startswith(ACTION_PARAMETER)}
        assert in_sql == set(r.action_parameters()), r.code  # declared and used, both ways


def test_the_action_check_catches_a_sentence_in_sql():
    planted = "select a, case when x then '终止救助' else $action_other end as action, b from t"
    assert any(CHINESE_LITERAL.search(e) for e in _action_expressions(planted))
    assert not any(CHINESE_LITERAL.search(e) for e in _action_expressions(rule("D04").sql))


# ---- the inputs: declared, and exactly those built ----------------------------------------------


def tables_read(sql: str) -> set[str]:
    """The tables a query reads (FROM and JOIN), its own CTEs left out."""
    body = _without_literals(sql)
    ctes = set(re.findall(r"(?:\bwith|,)\s*(\w+)\s+as\s*\(", body, re.IGNORECASE))
    return set(re.findall(r"(?<!distinct )\b(?:from|join)\s+([a-z_][\w.]*)", body, re.IGNORECASE)) - ctes


def test_the_table_reader_finds_the_tables_and_skips_ctes():
    sql = "with a as (select * from int_roster), b as (select 1 from a) select * from b semi join staging.x using (k)"
    assert tables_read(sql) == {"int_roster", "staging.x"}


def test_every_rule_declares_the_tables_its_sql_reads():
    for r in all_rules():
        assert set(r.inputs) == tables_read(r.sql), (r.code, set(r.inputs) ^ tables_read(r.sql))
        assert len(set(r.inputs)) == len(r.inputs), r.code


def test_every_engine_input_has_a_builder():
    assert set(ENGINE_INPUTS) == set(engine.MODEL_INPUTS) | set(engine.BUILDERS)


def _temporary_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal").fetchall()
    return {name for (name,) in tables + views if not name.startswith("__")}  # the engine's own scratch aside


def test_the_engine_builds_exactly_the_inputs_a_rule_declares(tmp_path):
    quarter = Quarter(2025, 3)
    params = default_parameters().at(quarter.end)
    for r in all_rules():
        with connect(tmp_path / f"{r.code}.duckdb") as con:
            con.execute(f"CREATE TEMP TABLE {engine.FINDINGS} AS SELECT * FROM rules.findings LIMIT 0")
            engine.prepare_inputs(con, quarter, params, [r], engine.FINDINGS)
            built = _temporary_tables(con)
        engine_inputs = {t for t in r.inputs if t in ENGINE_INPUTS}
        records_step = set(engine.RECORDS_INPUTS) if "int_links" in r.inputs else set()
        assert built == engine_inputs | records_step, (r.code, built)


def test_a_rule_reads_only_the_findings_of_earlier_rules_of_its_family():
    for r in all_rules():
        if "prior_findings" not in r.inputs:
            continue
        earlier = [x.code for x in rules_of(r.kind) if x.code < r.code]
        named = set(re.findall(r"rule_code\s*=\s*'(\w+)'", _without_comments(r.sql)))
        assert named and named <= set(earlier), (r.code, named)


# ---- the docstring names the parameter files -------------------------------------------------


def documented_parameters(doc: str) -> dict[str, set[str]]:
    """`Parameters: a.yaml (x, y); b.yaml (z).` (wrapped as it may be) -> {a.yaml: {x, y}, b.yaml: {z}}."""
    found = re.search(r"^Parameters: (.*?)(?:\n\s*\n|\Z)", doc, re.MULTILINE | re.DOTALL)
    if not found:
        return {}
    text = " ".join(found.group(1).split())
    return {file: {n.strip() for n in names.split(",")} for file, names in re.findall(r"([\w-]+\.yaml) \(([^)]*)\)", text)}


def test_every_rules_docstring_names_its_parameter_files():
    parameters = default_parameters().parameters
    for r in all_rules():
        expected: dict[str, set[str]] = {}
        for name in r.parameters:
            expected.setdefault(parameters[name].file, set()).add(name)
        assert documented_parameters(r.doc) == expected, r.code


def test_the_docstring_check_sees_a_stale_line():
    doc = "X01 t\n\nParameters: deadlines.yaml (verification_days); scope.yaml\n(death_check_categories).\n"
    assert documented_parameters(doc) == {"deadlines.yaml": {"verification_days"}, "scope.yaml": {"death_check_categories"}}
    assert documented_parameters("X01 t\n\nno line here\n") == {}
