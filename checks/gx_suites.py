"""Great Expectations suites per source: the key checks that follow from the department's
spec (`sources/departments/<source>.yaml`; `key_checks` below), and the value expectations
written in `checks/suites/<source>.yaml`.

Each suite has blocking expectations (a failure refuses the quarter) and warning ones
(recorded with their counts). The blocking ones are the key checks — the delivery not
empty (a required folder), the key unique in the quarter and, a one-column key, never
null (GX's uniqueness check passes over nulls) — and any a suite file adds; a source with
no suite file still gets its key checks. A suite file may word a key check for the
caseworkers (`key_checks:`); else the wording follows from the spec's title and headers.
They run on GX's pandas engine over the quarter's staged rows, with only the columns they
need:
  - table-wide expectations (row count, uniqueness, the key never null) see every row;
  - the others see every row up to SAMPLE_ROWS, beyond that a repeatable random sample
    (GX's pandas path is slow on tens of millions of rows; the checks say how many rows
    they read).
Results carry counts only: GX's lists of unexpected values are dropped, since they could
hold ID numbers or names.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from sources.registry import SourceSpec
from sources.registry import source as source_spec

SUITE_DIR = Path(__file__).with_name("suites")
SAMPLE_ROWS = int(os.environ.get("DOUDI_GX_SAMPLE_ROWS", "500000"))
TABLE_WIDE = {
    "expect_table_row_count_to_be_between",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
}


SCALARS = (int, float, str, type(None))  # observed values kept as they are in the metadata


@dataclass(frozen=True)
class Declared:
    type: str
    kwargs: dict
    blocking: bool
    why: str

    @property
    def columns(self) -> list[str]:
        found = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        return found + list(self.kwargs.get("column_list", []))

    @property
    def table_wide(self) -> bool:
        return self.type in TABLE_WIDE or (self.blocking and self.type == "expect_column_values_to_not_be_null")

    @property
    def label(self) -> str:
        target = ",".join(self.columns) or "table"
        return f"{self.type}({target})"


@dataclass
class ExpectationOutcome:
    declared: Declared
    success: bool
    evaluated_rows: int
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: object | None

    def as_metadata(self) -> dict:
        return {
            "expectation": self.declared.label,
            "why": self.declared.why,
            "success": self.success,
            "evaluated_rows": self.evaluated_rows,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": None if self.unexpected_percent is None else round(self.unexpected_percent, 3),
            "observed_value": self.observed_value if isinstance(self.observed_value, SCALARS) else str(self.observed_value),
        }


# The key checks a spec implies, by the name a suite file words them under (`key_checks:`).
KEY_CHECKS = ("not_empty", "key_unique", "key_not_null")


def key_checks(spec: SourceSpec, wording: dict[str, str] | None = None) -> list[Declared]:
    """The blocking expectations that follow from the spec: not empty (a required folder),
    the key unique in the quarter (unless the spec says a key may repeat), a one-column key
    never null. `wording`: the caseworkers' words for some of them, by KEY_CHECKS name."""
    wording = wording or {}
    headers = [spec.column(k).headers[0] for k in spec.key]
    checks = []
    if spec.required_folder:
        checks.append(("not_empty", "expect_table_row_count_to_be_between", {"min_value": 1}, f"{spec.title}数据不能为空"))
    if spec.key_unique and len(spec.key) == 1:
        checks.append(("key_unique", "expect_column_values_to_be_unique", {"column": spec.key[0]}, f"{headers[0]}唯一"))
        checks.append(("key_not_null", "expect_column_values_to_not_be_null", {"column": spec.key[0]}, f"每条记录都有{headers[0]}"))
    elif spec.key_unique:
        compound = {"column_list": list(spec.key)}
        checks.append(("key_unique", "expect_compound_columns_to_be_unique", compound, f"{'、'.join(headers)}的组合唯一"))
    return [Declared(type_, kwargs, True, wording.get(name, why)) for name, type_, kwargs, why in checks]


def _suite_file(source: str) -> dict:
    path = SUITE_DIR / f"{source}.yaml"
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}
    unknown = set(data.get("key_checks") or {}) - set(KEY_CHECKS)
    if unknown:
        raise ValueError(f"{path}: key_checks: unknown check(s) {sorted(unknown)} (known: {list(KEY_CHECKS)})")
    return data


@functools.cache
def declared_suite(source: str) -> tuple[Declared, ...]:
    """The source's key checks, then the suite file's blocking and warning expectations."""
    data = _suite_file(source)
    out = key_checks(source_spec(source), data.get("key_checks"))
    for severity in ("blocking", "warning"):
        for entry in data.get(severity) or []:
            entry = dict(entry)
            why = entry.pop("why", "")
            (expectation_type, kwargs), = entry.items()
            out.append(Declared(expectation_type, dict(kwargs or {}), severity == "blocking", why))
    return tuple(out)


@functools.cache
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX fingerprints every pandas batch under 1 GB by hashing all of its rows (a batch
    # marker doudi never reads). On a province's 30 M settlements that hashing was most of
    # the checks stage (profiled with py-spy), so batches are never fingerprinted.
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@functools.cache
def _batch_definition(source: str, scope: str):
    datasource_name = "doudi_staging"
    context = _context()
    try:
        datasource = context.data_sources.get(datasource_name)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(name=datasource_name)
    asset = datasource.add_dataframe_asset(name=f"{source}_{scope}")
    return asset.add_batch_definition_whole_dataframe(f"{source}_{scope}_quarter")


def as_datetime(value):
    """Dates compared by GX must be datetimes on both sides (it refuses strings)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return dt.datetime.fromisoformat(value)
    return value


def _expectation(declared: Declared):
    import great_expectations as gx

    class_name = "".join(part.capitalize() for part in declared.type.split("_"))
    cls = getattr(gx.expectations, class_name)
    kwargs = {k: (as_datetime(v) if k in ("min_value", "max_value") else v) for k, v in declared.kwargs.items()}
    return cls(**kwargs)


def _frame(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], quarter: str, sample: int | None):
    """The quarter's rows, only `columns`, dates as timestamps, amounts as floats."""
    select = ", ".join(
        f'"{c}"::TIMESTAMP AS "{c}"' if typ == "DATE" else (f'"{c}"::DOUBLE AS "{c}"' if typ.startswith("DECIMAL") else f'"{c}"')
        for c, typ in columns
    ) or "1 AS _row"
    sampling = f" USING SAMPLE reservoir({sample} ROWS) REPEATABLE (7)" if sample else ""
    sql = f"SELECT {select} FROM (SELECT * FROM {table} WHERE quarter = ?){sampling}"
    return con.execute(sql, [quarter]).df()


def validate_source(
    con: duckdb.DuckDBPyConnection, source: str, table: str, quarter: str, parameters: dict, blocking: bool
) -> list[ExpectationOutcome]:
    """Run the blocking (or the warning) part of the source's suite on the quarter's
    staged rows."""
    import great_expectations as gx

    declared = [d for d in declared_suite(source) if d.blocking == blocking]
    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        table.split("."),
    ).fetchall())
    total = con.execute(f"SELECT count(*) FROM {table} WHERE quarter = ?", [quarter]).fetchone()[0]
    outcomes: list[ExpectationOutcome] = []
    for scope in ("all", "sample"):
        chosen = [d for d in declared if d.table_wide == (scope == "all")]
        if not chosen:
            continue
        names = sorted({c for d in chosen for c in d.columns})
        unknown = [c for c in names if c not in types]
        if unknown:
            raise ValueError(f"suite {source}: unknown columns {unknown}")
        sample = SAMPLE_ROWS if (scope == "sample" and total > SAMPLE_ROWS) else None
        frame = _frame(con, table, [(c, types[c]) for c in names], quarter, sample)
        batch_definition = _batch_definition(source, scope)  # creates the GX context first
        suite = gx.ExpectationSuite(name=f"{source}_{scope}")
        for d in chosen:
            suite.add_expectation(_expectation(d))
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            suite, result_format="SUMMARY", expectation_parameters={k: as_datetime(v) for k, v in parameters.items()}
        )
        by_label = {}
        for r in result.results:
            config = r.expectation_config
            by_label[(config.type, tuple(sorted(_columns_of(config.kwargs))))] = r
        for d in chosen:
            r = by_label[(d.type, tuple(sorted(d.columns)))]
            info = r.result or {}
            outcomes.append(
                ExpectationOutcome(
                    declared=d,
                    success=bool(r.success),
                    evaluated_rows=len(frame),
                    unexpected_count=info.get("unexpected_count"),
                    unexpected_percent=info.get("unexpected_percent"),
                    observed_value=info.get("observed_value") if d.type == "expect_table_row_count_to_be_between" else None,
                )
            )
    return outcomes


def _columns_of(kwargs: dict) -> list[str]:
    found = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    return found + list(kwargs.get("column_list") or [])


def describe_failures(outcomes: list[ExpectationOutcome]) -> list[str]:
    """Plain sentences for the failed expectations (no values, counts only)."""
    lines = []
    for o in outcomes:
        if o.success:
            continue
        count = "" if o.unexpected_count is None else f"，{o.unexpected_count}/{o.evaluated_rows}行不符"
        observed = "" if o.observed_value is None else f"（实际{o.observed_value}）"
        lines.append(f"{o.declared.why or o.declared.label}{observed}{count}")
    return lines

