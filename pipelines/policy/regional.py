"""The parameters in force for each county of a quarter, and how a rule is run under them.

A value may be keyed by region (`pipelines.policy.params`), so two counties of one quarter
can be under different values. Running a rule once per county would multiply the rules
stage by the number of counties; instead the counties are grouped by what the rule's SQL
would actually be bound to (`RegionalParameters.bindings`): with the built-in parameters
every county shares one binding and the rule runs once, as before; a region with a value
of its own adds one run, whose findings are kept for that region's households only.

What a warning cites (its `parameters` and `policy_ref`) is per county even when the
binding is shared: the same 36 months is 晋市民〔2023〕2号 in a Jincheng county and
`参照 晋市民〔2023〕2号` in a Yuncheng one (`RegionalParameters.citation`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb

from pipelines.policy.params import Parameters, ParameterSet

# The county a household of the quarter is in: what regional values and citations key on.
HOUSEHOLD_COUNTY_SQL = "SELECT DISTINCT household_id, county_code FROM staging.households WHERE quarter = $quarter"


def sql_value(value):
    """Parameters as DuckDB binds them: a mapping of lists becomes `key|item` strings
    (tested with list_contains), a mapping of numbers a JSON object, lists stay lists."""
    if isinstance(value, dict):
        if all(isinstance(v, list) for v in value.values()):
            return [f"{k}|{item}" for k, items in value.items() for item in items]
        return json.dumps(value, ensure_ascii=False)
    return value


@dataclass(frozen=True)
class Binding:
    """One way a rule's SQL is bound, and the counties it holds for."""

    values: dict  # {parameter name: value as DuckDB binds it}
    counties: tuple[str, ...]  # the counties under it
    includes_unknown: bool  # households without a county take the defaults: this binding


@dataclass(frozen=True)
class RegionalParameters:
    day: dt.date
    default: ParameterSet  # for a household whose county is not known
    by_county: dict[str, ParameterSet]
    # Whether any household of the quarter has no county (it then takes the defaults); True
    # when not known, so that the defaults' run is never skipped for want of knowing.
    unknown_county: bool = True

    @classmethod
    def of(cls, parameters: Parameters, day: dt.date, counties: list, unknown_county: bool = True) -> "RegionalParameters":
        return cls(day, parameters.at(day), {c: parameters.at(day, c) for c in sorted(set(counties))}, unknown_county)

    @classmethod
    def for_quarter(cls, con: duckdb.DuckDBPyConnection, parameters: Parameters, quarter) -> "RegionalParameters":
        rows = con.execute("SELECT DISTINCT county_code FROM staging.households WHERE quarter = ?", [str(quarter)]).fetchall()
        counties = [r[0] for r in rows]
        return cls.of(parameters, quarter.end, [c for c in counties if c is not None], unknown_county=None in counties)

    def bindings(self, names: tuple[str, ...] | list[str]) -> list[Binding]:
        """The distinct bindings of `names` over the counties, the defaults' first."""
        def key(params: ParameterSet) -> str:
            return json.dumps({n: sql_value(params[n]) for n in names}, ensure_ascii=False, sort_keys=True, default=str)

        default_key = key(self.default)
        groups: dict[str, list[str]] = {default_key: []}
        for county, params in self.by_county.items():
            groups.setdefault(key(params), []).append(county)
        # The defaults' binding runs when a county is under it or a household has no county;
        # a quarter in which every county has a value of its own skips it. At least one runs.
        kept = [Binding(json.loads(k), tuple(c), k == default_key) for k, c in groups.items()
                if c or (k == default_key and self.unknown_county)]
        return kept or [Binding(json.loads(default_key), (), True)]

    def citation(self, params: ParameterSet, rule) -> tuple[str, str]:
        """(parameters JSON, policy_ref) of `rule`'s warnings under `params`: the values
        applied with their references, and the rule's clause, each document of another
        region marked 参照, followed by the document of any regional value applied that the
        clause does not already name."""
        documents = params.documents
        parts = [documents.cite(rule.policy_ref, params.county)]
        for name in rule.parameters:
            entry = params.entry(name)
            cited = params.reference(name)
            if entry.region and cited not in parts and not any(d.number in rule.policy_ref for d in documents.named_in(entry.reference)):
                parts.append(cited)
        policy_ref = "；".join(parts)
        cited = json.dumps(params.cited(list(rule.parameters)), ensure_ascii=False, default=str)
        return cited, policy_ref

    def citations(self, rule) -> tuple[tuple[str, str], list[tuple[str, str, str]]]:
        """The default citation, and (county, parameters, policy_ref) for each county
        whose citation differs from it."""
        default = self.citation(self.default, rule)
        per_county = []
        for county, params in self.by_county.items():
            cited = self.citation(params, rule)
            if cited != default:
                per_county.append((county, *cited))
        return default, per_county
