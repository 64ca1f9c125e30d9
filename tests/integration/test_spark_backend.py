"""The Spark backend of the linker agrees with the DuckDB one.

A small generated country of three provinces (households of one province with members and
records registered in the others, people enrolled twice across provinces) is run through the
whole quarter twice: Splink scoring in-process on DuckDB, and on Spark in local mode with
the same committed model. The links, the roster duplicates and the D03 warnings must be the
same. Skipped, saying why, where pyspark or Java is missing (`.ci/run` installs Java).
"""

from __future__ import annotations

import importlib.util
import shutil
import time

import duckdb
import pytest

from pipelines.cli import EXIT_OK, run_quarter
from tests.helpers import synthetic_inbox

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pyspark is not installed"),
    pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed (.ci/run installs Debian's JRE)"),
]

QUARTER = "2025Q1"
# Three provinces: Shanxi, Henan, Hebei (real GB/T 2260 county codes).
COUNTRY = [
    ("140502", "城区", "晋城市", 0.85),
    ("140821", "临猗县", "运城市", 0.20),
    ("410802", "解放区", "焦作市", 0.80),
    ("410882", "沁阳市", "焦作市", 0.40),
    ("130102", "长安区", "石家庄市", 0.90),
]


@pytest.fixture(scope="module")
def both_backends(tmp_path_factory, dagster_instance):
    root = synthetic_inbox(tmp_path_factory, "country", QUARTER, households=500, seed=23, counties=COUNTRY).parent
    seconds = {}
    for backend in ("duckdb", "spark"):
        started = time.time()
        outcome = run_quarter(root / "inbox", QUARTER, root / f"{backend}.duckdb", root / f"out-{backend}",
                              instance=dagster_instance, link_backend=backend)
        seconds[backend] = time.time() - started
        assert outcome.exit_code == EXIT_OK, outcome.messages
    print(f"\nquarter run: duckdb {seconds['duckdb']:.1f} s, spark (local mode) {seconds['spark']:.1f} s")
    yield root
    from pipelines.link.spark import stop_spark

    stop_spark()


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
