"""The Spark backend of the linker agrees with the DuckDB one.

A small generated country of three provinces (households of one province with members and
records registered in the others, people enrolled twice across provinces; the `country`
fixture, all provinces' deliveries in one inbox) is run through the whole quarter twice:
Splink scoring in-process on DuckDB, and on Spark in local mode with the same committed
model. The links, the roster duplicates and the D03 warnings must be the same. Skipped,
saying why, where pyspark or Java is missing (`.ci/run` installs Java).
"""

from __future__ import annotations

import time

import duckdb
import pytest

from pipelines.run import EXIT_OK, run_quarter
from tests.helpers import REQUIRES_SPARK

pytestmark = REQUIRES_SPARK


@pytest.fixture(scope="module")
def both_backends(country, country_in_one_warehouse, dagster_instance, spark):
    """The country's quarter in one warehouse: on DuckDB (shared fixture) and on Spark."""
    started = time.time()
    outcome = run_quarter(country.inbox, country.quarter, country.root / "spark.duckdb", country.root / "out-spark",
                          instance=dagster_instance, link_backend="spark")
    assert outcome.exit_code == EXIT_OK, outcome.messages
    print(f"\nquarter run on spark (local mode): {time.time() - started:.1f} s")
    return country.root


def _rows(root, backend: str, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / f"{backend}.duckdb"), read_only=True) as con:
        return sorted(con.execute(sql).fetchall())


def test_the_links_are_the_same(both_backends):
    sql = "SELECT source, record_key, member_id, match_method, round(match_probability, 6) FROM linked.matches"
    duck, spark = _rows(both_backends, "duckdb", sql), _rows(both_backends, "spark", sql)
    assert duck and duck == spark
    probabilistic = [r for r in duck if r[3] == "probabilistic"]
    assert probabilistic, "no probabilistic link: the comparison would not test Splink"


def test_the_roster_duplicates_across_provinces_are_the_same(both_backends):
    sql = """SELECT d.member_id_l, d.member_id_r, d.match_method, round(d.match_probability, 6),
                    left(a.county_code, 2) <> left(b.county_code, 2) AS across_provinces
             FROM linked.roster_duplicates AS d
             JOIN staging.members AS ma ON ma.member_id = d.member_id_l AND ma.quarter = d.quarter
             JOIN staging.members AS mb ON mb.member_id = d.member_id_r AND mb.quarter = d.quarter
             JOIN staging.households AS a ON a.household_id = ma.household_id AND a.quarter = d.quarter
             JOIN staging.households AS b ON b.household_id = mb.household_id AND b.quarter = d.quarter"""
    duck, spark = _rows(both_backends, "duckdb", sql), _rows(both_backends, "spark", sql)
    assert duck == spark
    assert any(r[4] for r in duck), "no one is enrolled in two provinces: the data would not test the cross-region step"
    assert any(r[2] == "probabilistic" for r in duck)


def test_the_d03_warnings_are_the_same(both_backends):
    sql = "SELECT warning_id, household_id, member_id, severity, evidence::VARCHAR FROM marts.warnings WHERE rule_code = 'D03'"
    duck, spark = _rows(both_backends, "duckdb", sql), _rows(both_backends, "spark", sql)
    assert duck and duck == spark
