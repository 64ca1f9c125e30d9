"""What a rule is, and the list of rules by family.

A rule is a SQL query over the quarter's intermediate tables (see `engine`), written to
read like its clause, with a docstring naming the clause, and with every number it uses
bound from a dated, cited parameter (`$name` in the SQL, `parameters` below). It returns
one row per warning: household_id, member_id (null for a household warning), severity,
due_date, evidence (JSON), action (null for the rule's default, or the case's own) and
basis: the records (or, for roster rules, the roster facts) the warning rests on, as
`source:key` strings. A caseworker's 不属实 holds while the basis is unchanged.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

KINDS = ("ineligibility", "need", "data_quality")


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    kind: str
    scope: str  # member | household
    policy_ref: str
    action: str  # the default action, in the words caseworkers use
    parameters: tuple[str, ...]
    sql: str
    doc: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.code}: kind must be one of {KINDS}")
        if self.scope not in ("member", "household"):
            raise ValueError(f"{self.code}: scope must be member or household")


def rules_of(kind: str) -> list[Rule]:
    """Every rule module in the family's package defines RULE; sorted by code."""
    package = importlib.import_module(f"pipelines.rules.{kind}")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        rule = getattr(module, "RULE", None)
        if isinstance(rule, Rule):
            found.append(rule)
    return sorted(found, key=lambda r: r.code)


def all_rules() -> list[Rule]:
    return [rule for kind in KINDS for rule in rules_of(kind)]


def rule(code: str) -> Rule:
    for candidate in all_rules():
        if candidate.code == code:
            return candidate
    raise KeyError(code)
