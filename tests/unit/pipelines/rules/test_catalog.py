"""Every rule of RULES.md is in the catalog, cites its clause, uses only dated parameters,
and has a sentence for the caseworker list."""

import datetime as dt
import re

from pipelines.exports.evidence import RENDERERS
from pipelines.rules.catalog import all_rules
from pipelines.policy.params import default_parameters
from warehouse.models import parameters_of

RULES_MD = ["D01", "D02", "D03", "D04", "N01", "N02", "N03", "N04", "N05", "N06", "Q01", "Q02"]
BOUND_BY_ENGINE = {
    "quarter", "previous_quarter", "quarter_a_year_before", "q_start", "q_end", "next_q_end", "ineligibility_threshold",
    "lookback_start", "default_monthly_standard_yuan", "default_disposable_income_yuan",
}


def test_every_rule_is_implemented_once():
    codes = [r.code for r in all_rules()]
    assert sorted(codes) == RULES_MD


def test_rules_cite_their_clause_and_have_a_sentence():
    for rule in all_rules():
        assert rule.policy_ref and rule.title and rule.action, rule.code
        assert rule.code in rule.doc.split()[0], rule.code  # the docstring opens with the rule
        assert rule.code in RENDERERS, rule.code


# Numbers a rule's SQL may hold: decimal places in round(), 12 months a year and 3 a
# quarter, a single-person household, and positions inside an ID number.
STRUCTURAL_NUMBERS = {0, 1, 2, 3, 4, 7, 8, 12, 17}


def test_every_number_in_a_rule_is_a_parameter():
    in_force = default_parameters().at(dt.date(2025, 9, 30))
    seen = set()
    for rule in all_rules():
        used = parameters_of(rule.sql) - BOUND_BY_ENGINE
        assert used == set(rule.parameters), (rule.code, used ^ set(rule.parameters))
        for name in rule.parameters:
            assert in_force.reference(name)
        body = re.sub(r"--[^\n]*", "", rule.sql)
        # no bare money amounts or day counts in the SQL (1 and 0 and 12-month arithmetic aside)
        numbers = {int(n) for n in re.findall(r"(?<![\w.$'|])(\d+)(?![\w.'])", body)}
        assert numbers <= STRUCTURAL_NUMBERS, (rule.code, numbers - STRUCTURAL_NUMBERS)
        seen |= numbers
    assert 12 in seen  # the search finds numbers at all
