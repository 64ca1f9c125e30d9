"""Every SQL the pipeline runs parses before any data reaches it: the warehouse's model and
schema files and every rule's SQL, read by DuckDB's own parser and by sqlglot (duckdb
dialect). And the models keep the convention of `warehouse/models.py`: CTEs ending in a
`final` one, the file's last statement `select * from final`.

`$name` parameters parse as they are (both parsers know them). The linker's models with
`{{ fragment }}` lines are parsed as `pipelines.link.sql_models.render` fills them in:
unfilled, DuckDB refuses them and sqlglot would read `{{ x }}` as a struct literal.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

WAREHOUSE = Path(__file__).resolve().parents[2] / "warehouse"
SQL_FILES = sorted(WAREHOUSE.rglob("*.sql"))
MODELS = [p for p in SQL_FILES if p.name != "schema.sql"]
# Models whose last statement orders the final CTE's rows (`select * from final order by …`):
# the convention with an ORDER BY, nothing else.
ORDERED_MODELS = {"marts/household_cases.sql", "marts/quarterly_comparison.sql"}
# SQL that DuckDB reads and sqlglot (30.30) cannot, with why. DuckDB is the engine, so its
# parser decides; the test fails when sqlglot learns to read one (remove it here then).
SQLGLOT_GAPS = {
    "rule D04": "json_object('expired', ends <= $q_end): sqlglot takes a bare comparison as a json_object value for a syntax error;"
                " `(ends <= $q_end)` would read",
}


def _name(path: Path) -> str:
    return path.relative_to(WAREHOUSE).as_posix()


def _filled(sql: str) -> str:
    if "{{" not in sql:
        return sql
    from pipelines.link.sql_models import render

    return render(sql)


def _rules():
    from pipelines.rules.catalog import all_rules

    return all_rules()


def assert_parses(sql: str, where: str) -> list[exp.Expression]:
    """Both parsers read `sql` without error; sqlglot's statements are returned."""
    try:
        statements = duckdb.connect().extract_statements(sql)
    except duckdb.ParserException as e:
        pytest.fail(f"{where}: DuckDB cannot parse it: {e}")
    if where in SQLGLOT_GAPS:
        with pytest.raises(sqlglot.errors.ParseError):
            sqlglot.parse(sql, read="duckdb")
        return []
    try:
        # (a comment between statements comes back as a Semicolon node: not a statement)
        parsed = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None and not isinstance(s, exp.Semicolon)]
    except sqlglot.errors.ParseError as e:
        pytest.fail(f"{where}: sqlglot cannot parse it: {e}")
    assert statements and parsed, f"{where}: no statement"
    assert len(parsed) == len(statements), f"{where}: DuckDB reads {len(statements)} statements, sqlglot {len(parsed)}"
    return parsed


def test_there_is_sql_to_parse():
    assert len(SQL_FILES) >= 15 and len(MODELS) >= 13 and (WAREHOUSE / "schema.sql") in SQL_FILES
    assert len(_rules()) >= 10
    assert ORDERED_MODELS <= {_name(p) for p in MODELS}


@pytest.mark.parametrize("path", SQL_FILES, ids=_name)
def test_warehouse_sql_parses(path):
    assert_parses(_filled(path.read_text(encoding="utf-8")), _name(path))


def test_every_rule_sql_parses():
    for rule in _rules():
        where = f"rule {rule.code}"
        statements = assert_parses(rule.sql, where)
        assert where in SQLGLOT_GAPS or (len(statements) == 1 and isinstance(statements[0], exp.Query)), f"{where}: not one query"
    assert set(SQLGLOT_GAPS) <= {f"rule {r.code}" for r in _rules()} | {_name(p) for p in SQL_FILES}, "a gap for SQL that is gone"


def final_select_problem(statement: exp.Expression, ordered: bool) -> str | None:
    """Why `statement` is not `with …, final as (…) select * from final`, or None."""
    if not isinstance(statement, exp.Select):
        return f"the last statement is a {type(statement).__name__}, not a select"
    ctes = statement.args.get("with_") or statement.args.get("with")
    if not ctes or ctes.expressions[-1].alias != "final":
        return "the last CTE is not named final"
    source = statement.args.get("from_") or statement.args.get("from")
    if not (source and isinstance(source.this, exp.Table) and source.this.name == "final" and not source.this.alias):
        return "it does not select from final"
    if not (len(statement.expressions) == 1 and isinstance(statement.expressions[0], exp.Star)):
        return "it does not select *"
    allowed = {"with", "with_", "from", "from_", "expressions"} | ({"order"} if ordered else set())
    extra = sorted(k for k, v in statement.args.items() if v and k not in allowed)
    return f"it adds {', '.join(extra)}" if extra else None


@pytest.mark.parametrize("path", MODELS, ids=_name)
def test_model_ends_in_select_star_from_final(path):
    statements = assert_parses(_filled(path.read_text(encoding="utf-8")), _name(path))
    problem = final_select_problem(statements[-1], ordered=_name(path) in ORDERED_MODELS)
    assert problem is None, f"{_name(path)}: {problem}"


# The checks themselves fail on what they are for.
@pytest.mark.parametrize("broken", [
    "with final as (select 1 as a) select * from final where",
    "select a,, b from t",
    "select case when a then 1 from t",
    "select {{ unfilled }} from t",
])
def test_a_broken_sql_fails(broken):
    with pytest.raises(pytest.fail.Exception):
        assert_parses(broken, "broken")


@pytest.mark.parametrize(("sql", "ordered", "problem"), [
    ("with x as (select 1 as a), final as (select * from x) select * from final", False, None),
    ("with final as (select 1 as a) select * from final order by a", True, None),
    ("with final as (select 1 as a) select * from final order by a", False, "it adds order"),
    ("with final as (select 1 as a) select a from final", False, "it does not select *"),
    ("with final as (select 1 as a), x as (select 2) select * from final", False, "the last CTE is not named final"),
    ("with final as (select 1 as a) select * from final where a = $quarter", False, "it adds where"),
    ("select * from final", False, "the last CTE is not named final"),
])
def test_the_final_convention_check(sql, ordered, problem):
    assert final_select_problem(sqlglot.parse_one(sql, read="duckdb"), ordered) == problem
