"""What a rule is, and the list of rules by family.

A rule is one module, `pipelines/rules/<kind>/<code>_*.py`, holding everything that is the
rule's own: its clause (the docstring, whose `Parameters:` line names the parameter files
it draws on), its SQL, the tables the SQL reads (`inputs`), every action sentence it can
give (`action`, and `actions` where the SQL chooses among several), and the Chinese
sentence its evidence is shown as on the lists (`evidence`).

The SQL reads the quarter's inputs (see `engine`) and is written to read like its clause;
every number it uses is bound from a dated, cited parameter (`$name` in the SQL,
`parameters` below) and every alternative action from `actions` (`$action_<name>`). It
returns one row per warning: household_id, member_id (null for a household warning),
severity, due_date, evidence (JSON), action (null for the rule's default) and basis: the
records (or, for roster rules, the roster facts) the warning rests on, as `source:key`
strings. A caseworker's 不属实 holds while the basis is unchanged.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

KINDS = ("ineligibility", "need", "data_quality")

# The inputs the engine builds for a run as temporary tables (pipelines/rules/engine.py
# says what each holds). A rule names those it reads, with any warehouse table it reads
# itself (`staging.detention`, `linked.roster_duplicates`, `audit.ingest_log`).
ENGINE_INPUTS = (
    "int_roster",
    "int_links",
    "int_identity_conflicts",
    "int_death_records",
    "int_settlements",
    "int_standards",
    "prior_findings",  # the findings of the rules of the family run before this one
)
WAREHOUSE_TABLE = re.compile(r"(staging|linked|audit)\.\w+")
ACTION_PARAMETER = "action_"  # `$action_<name>` in the SQL: one of the rule's `actions`


@dataclass(frozen=True)
class Amount:
    """The money a warning of the rule puts at stake, as the quarterly report sums it and a
    policy replay compares it: a SQL expression over the warning's `evidence` (JSON), what
    it is (a heading, in Chinese) and how it is estimated (a note for the report's reader)."""

    sql: str
    label: str
    note: str


@dataclass(frozen=True, kw_only=True)
class Rule:
    code: str
    title: str
    kind: str
    scope: str  # member | household
    policy_ref: str
    action: str  # the default action, in the words caseworkers use
    parameters: tuple[str, ...]
    inputs: tuple[str, ...]  # the tables the SQL reads: ENGINE_INPUTS, or warehouse tables
    sql: str
    evidence: Callable[[dict], str]  # the evidence as one Chinese sentence for the lists
    # Alternative actions the SQL chooses among ({name: sentence}, bound as $action_<name>).
    actions: Mapping[str, str] = field(default_factory=dict)
    # The sentence already lists the records the warning rests on (Q02: it is its records),
    # so the lists do not append them again.
    evidence_shows_records: bool = False
    amount: Amount | None = None  # the money at stake per warning, where the rule has it
    doc: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.code}: kind must be one of {KINDS}")
        if self.scope not in ("member", "household"):
            raise ValueError(f"{self.code}: scope must be member or household")
        unknown = [t for t in self.inputs if t not in ENGINE_INPUTS and not WAREHOUSE_TABLE.fullmatch(t)]
        if unknown:
            raise ValueError(f"{self.code}: inputs {unknown} are neither engine inputs {ENGINE_INPUTS} nor warehouse tables")

    def action_parameters(self) -> dict[str, str]:
        """The alternative actions as the SQL parameters they are bound to."""
        return {f"{ACTION_PARAMETER}{name}": text for name, text in self.actions.items()}


@functools.cache
def _rules_of(kind: str) -> tuple[Rule, ...]:
    package = importlib.import_module(f"pipelines.rules.{kind}")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        rule = getattr(module, "RULE", None)
        if isinstance(rule, Rule):
            found.append(rule)
    return tuple(sorted(found, key=lambda r: r.code))


def rules_of(kind: str) -> list[Rule]:
    """Every rule module in the family's package defines RULE; sorted by code."""
    return list(_rules_of(kind))


def all_rules() -> list[Rule]:
    return [rule for kind in KINDS for rule in rules_of(kind)]


@functools.cache
def _by_code() -> dict[str, Rule]:
    # Looked up once per warning when the lists are written: built once.
    return {r.code: r for r in all_rules()}


def rule(code: str) -> Rule:
    return _by_code()[code]
