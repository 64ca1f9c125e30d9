"""Regions run apart, then the national step over their warehouses.

The generated country of three provinces (`country` fixture) is run as three regions, each
its own Dagster run of a (quarter, region) partition with its own inbox, warehouse and
output folder; then `doudi national` reads the three warehouses and finds what crosses
regions: people enrolled in two provinces (D03) and deaths registered in another province
(D01), on DuckDB and on Splink's Spark backend in local mode.

What the regions and the national step find together must be what one warehouse holding
the whole country finds (`country_in_one_warehouse`), and the two backends must agree.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pytest

from pipelines.cli import main
from pipelines.national.compare import LIST_NAME, NationalRefused, run_national
from pipelines.partitions import quarter_from_key
from pipelines.quarters import Quarter
from pipelines.run import EXIT_OK, EXIT_REFUSED, RunOutcome, run_national_quarter, run_quarter
from tests.helpers import REQUIRES_SPARK


@dataclass
class Regional:
    root: Path
    outcomes: dict[str, RunOutcome]

    def warehouse(self, region: str) -> Path:
        return self.root / region / "doudi.duckdb"

    def out(self, region: str) -> Path:
        return self.root / region / "out"

    @property
    def glob(self) -> str:
        return str(self.root / "*" / "doudi.duckdb")


@dataclass
class National:
    warehouse: Path
    out: Path
    exit_code: int
    printed: str


@pytest.fixture(scope="module")
def regional(country, dagster_instance) -> Regional:
    """Each province's quarter, run as its own region."""
    regional = Regional(country.root / "regions-run", {})
    for region in country.regions:
        regional.outcomes[region] = run_quarter(country.region_inbox(region), country.quarter, regional.warehouse(region),
                                                regional.out(region), instance=dagster_instance, region=region)
    return regional


def _national_command(regional: Regional, quarter: str, warehouse: Path, out: Path, home: Path, *extra: str) -> National:
    """`doudi national` as a user runs it (its own Dagster home), what it printed kept."""
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        mp.setenv("DAGSTER_HOME", str(home))
        code = main(["national", "--quarter", quarter, "--warehouse-glob", regional.glob, "--national-warehouse", str(warehouse),
                     "--out", str(out), *extra])
    return National(warehouse, out, code, printed.getvalue())


@pytest.fixture(scope="module")
def national_duckdb(regional, country) -> National:
    root = country.root / "national-duckdb"
    return _national_command(regional, country.quarter, root / "warehouse.duckdb", root / "out", root / "dagster_home",
                             "--link-backend", "duckdb")


@pytest.fixture(scope="module")
def national_spark(regional, country, dagster_instance, spark) -> National:
    """The same step through the national Dagster job, Splink on Spark (local mode)."""
    root = country.root / "national-spark"
    outcome = run_national_quarter(country.quarter, {r: regional.warehouse(r) for r in country.regions}, root / "warehouse.duckdb",
                                   root / "out", link_backend="spark", instance=dagster_instance)
    print(f"\nnational step on spark (local mode): {outcome.seconds:.1f} s")
    return National(root / "warehouse.duckdb", root / "out", outcome.exit_code, "\n".join(outcome.messages))


def _rows(path: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return sorted(con.execute(sql, list(params)).fetchall())


def _region_of_members(regional: Regional, regions: list[str], quarter: str) -> dict[str, str]:
    found = {}
    for region in regions:
        for (member_id,) in _rows(regional.warehouse(region), "SELECT member_id FROM staging.members WHERE quarter = ?", quarter):
            assert member_id not in found, "a generated member row in two regions' rosters"
            found[member_id] = region
    return found


# ---- the regions ------------------------------------------------------------------------------

def test_each_region_is_one_dagster_run_of_its_partition(country, regional, dagster_instance):
    for region in country.regions:
        outcome = regional.outcomes[region]
        assert outcome.exit_code == EXIT_OK, outcome.messages
        tags = dagster_instance.get_run_by_id(outcome.run_id).tags
        assert quarter_from_key(tags["dagster/partition/quarter"]) == Quarter.parse(country.quarter) and tags["dagster/partition/region"] == region
        counties = _rows(regional.warehouse(region), "SELECT DISTINCT county_code FROM staging.households WHERE quarter = ?", country.quarter)
        assert counties and all(code.startswith(region) for (code,) in counties)  # only its own households
        assert (regional.out(region) / country.quarter / "report.html").is_file()
    assert set(country.regions) <= set(dagster_instance.get_dynamic_partitions("region"))


# ---- the national step (DuckDB) ------------------------------------------------------------------

def test_the_national_command_succeeds_and_prints_counts_only(national_duckdb, regional, country):
    assert national_duckdb.exit_code == EXIT_OK, national_duckdb.printed
    assert "跨地区重复享受" in national_duckdb.printed
    assert not re.search(r"\d{15,18}", national_duckdb.printed.replace(str(country.root), ""))
    names = set()
    for region in country.regions:
        names |= {n for (n,) in _rows(regional.warehouse(region), "SELECT DISTINCT name FROM staging.members WHERE name IS NOT NULL")}
    assert not [n for n in names if len(n) >= 2 and n in national_duckdb.printed]


def test_regions_and_the_national_step_find_what_one_warehouse_finds(country, regional, national_duckdb, country_in_one_warehouse):
    """Roster duplicates: the single warehouse's pairs within a province are the regions'
    own, its pairs across provinces the national step's (same method and probability).
    D03 and D01 warnings: the members the single warehouse warns are those the regions and
    the national step warn together. Death links likewise."""
    q = country.quarter
    region_of = _region_of_members(regional, country.regions, q)

    def pairs(rows):
        return {tuple(sorted((a, b))): (method, round(p, 6)) for a, b, method, p in rows}

    sql = "SELECT member_id_l, member_id_r, match_method, match_probability FROM {} WHERE quarter = ?"
    single = pairs(_rows(country_in_one_warehouse, sql.format("linked.roster_duplicates"), q))
    within = {pair: v for pair, v in single.items() if region_of[pair[0]] == region_of[pair[1]]}
    across = {pair: v for pair, v in single.items() if region_of[pair[0]] != region_of[pair[1]]}
    own = {}
    for region in country.regions:
        own.update(pairs(_rows(regional.warehouse(region), sql.format("linked.roster_duplicates"), q)))
    national = pairs(_rows(national_duckdb.warehouse, sql.format("national.roster_duplicates"), q))
    assert across and within
    assert set(own) == set(within)
    assert national == across

    for rule in ("D03", "D01"):
        warned = "SELECT DISTINCT member_id FROM {} WHERE quarter = ? AND rule_code = ?"
        expected = {m for (m,) in _rows(country_in_one_warehouse, warned.format("marts.warnings"), q, rule)}
        found = {m for (m,) in _rows(national_duckdb.warehouse, warned.format("national.warnings"), q, rule)}
        for region in country.regions:
            found |= {m for (m,) in _rows(regional.warehouse(region), warned.format("marts.warnings"), q, rule)}
        assert expected and found == expected, rule

    links = "SELECT record_key, member_id FROM {} WHERE quarter = ? {}"
    expected = set(_rows(country_in_one_warehouse, links.format("linked.matches", "AND source = 'death'"), q))
    found = set(_rows(national_duckdb.warehouse, links.format("national.death_links", ""), q))
    for region in country.regions:
        found |= set(_rows(regional.warehouse(region), links.format("linked.matches", "AND source = 'death'"), q))
    assert found == expected


def test_the_national_step_keeps_only_what_crosses_regions(national_duckdb, country):
    q = country.quarter
    duplicates = _rows(national_duckdb.warehouse, "SELECT region_l, region_r, match_method FROM national.roster_duplicates WHERE quarter = ?", q)
    assert duplicates and all(left != right for left, right, _ in duplicates)
    assert any(method == "probabilistic" for *_, method in duplicates), "no probabilistic pair: Splink would not be tested"
    deaths = _rows(national_duckdb.warehouse, "SELECT death_region, member_region FROM national.death_links WHERE quarter = ?", q)
    assert deaths and all(a != b for a, b in deaths)
    warnings = _rows(national_duckdb.warehouse, "SELECT rule_code, region, other_regions, status, name IS NOT NULL, id_number IS NOT NULL "
                                                "FROM national.warnings WHERE quarter = ?", q)
    assert {w[0] for w in warnings} == {"D01", "D03"}
    for _rule_code, region, others, status, named, identified in warnings:
        assert others and region not in others and status == "new" and named and identified


def test_each_region_gets_a_list_of_its_cross_region_findings(national_duckdb, country):
    q = country.quarter
    for region in country.regions:
        path = national_duckdb.out / q / region / LIST_NAME
        assert path.is_file(), path
        sheet = openpyxl.load_workbook(path, read_only=True)["疑似不符合条件"]
        rows = list(sheet.iter_rows(values_only=True))
        header, body = rows[0], [r for r in rows[1:] if any(r)]
        ids = {r[header.index("预警编号")] for r in body}
        expected = {w for (w,) in _rows(national_duckdb.warehouse, "SELECT warning_id FROM national.warnings WHERE quarter = ? AND region = ?", q, region)}
        assert ids == expected
        assert all(str(r[header.index("预警依据")]).startswith("【跨地区】") for r in body)
        assert {"核查结果", "核查说明"} <= set(header)


def test_refused_inputs_publish_nothing(national_duckdb, regional, country, tmp_path):
    """A quarter no region has published, and a region without a warehouse: exit 2, each
    problem named, the national warehouse and lists as they were."""
    def snapshot():
        tables = ("roster_duplicates", "death_links", "warnings", "runs")
        return {t: _rows(national_duckdb.warehouse, f"SELECT * EXCLUDE (quarter) FROM national.{t}" if t != "runs" else
                         "SELECT run_id FROM national.runs") for t in tables}, sorted(p.name for p in national_duckdb.out.rglob("*"))

    before = snapshot()
    refused = _national_command(regional, "2025Q2", national_duckdb.warehouse, national_duckdb.out, tmp_path / "home")
    assert refused.exit_code == EXIT_REFUSED
    for region in country.regions:
        assert f"地区 {region}：2025Q2 尚未发布" in refused.printed
    missing = _national_command(regional, country.quarter, national_duckdb.warehouse, national_duckdb.out, tmp_path / "home",
                                "--region-warehouse", f"99={tmp_path / 'none.duckdb'}")
    assert missing.exit_code == EXIT_REFUSED and "地区 99：没有数据仓库" in missing.printed
    assert snapshot() == before


def test_a_region_whose_last_run_did_not_publish_is_refused(regional, country, tmp_path):
    """Roster rows of a run that did not publish the quarter (a later run that stopped after
    ingest): the national step does not read them, it names the region."""
    copies = {}
    for region in country.regions:
        copies[region] = tmp_path / region / "doudi.duckdb"
        copies[region].parent.mkdir()
        shutil.copyfile(regional.warehouse(region), copies[region])
    tampered = country.regions[0]
    with duckdb.connect(str(copies[tampered])) as con:
        con.execute("UPDATE staging.members SET run_id = 'a-run-that-stopped' WHERE quarter = ? AND rowid < 3", [country.quarter])
    with pytest.raises(NationalRefused, match=f"地区 {tampered}：{country.quarter} 的暂存数据来自一次未完成发布的运行"):
        run_national(Quarter.parse(country.quarter), copies, tmp_path / "national.duckdb", tmp_path / "out")
    assert not (tmp_path / "national.duckdb").exists() and not (tmp_path / "out").exists()


def test_running_the_national_step_again_replaces_its_quarter(national_duckdb, regional, country):
    table = "SELECT * EXCLUDE (status) FROM national.warnings WHERE quarter = ?"
    before = _rows(national_duckdb.warehouse, table, country.quarter)
    report = run_national(Quarter.parse(country.quarter), {r: regional.warehouse(r) for r in country.regions}, national_duckdb.warehouse,
                          national_duckdb.out)
    assert _rows(national_duckdb.warehouse, table, country.quarter) == before
    assert report.warnings["D03"] + report.warnings["D01"] == len(before)
    assert len(_rows(national_duckdb.warehouse, "SELECT run_id FROM national.runs WHERE quarter = ?", country.quarter)) >= 2


def test_the_national_sensor_starts_the_quarter_every_region_published(regional, country, dagster_instance, monkeypatch, tmp_path):
    from pipelines.definitions import defs

    monkeypatch.setenv("DOUDI_WAREHOUSE", str(regional.root / "{region}" / "doudi.duckdb"))
    sensor = defs.resolve_sensor_def("national_sensor")

    def tick():
        return sensor.evaluate_tick(dg.build_sensor_context(definitions=defs, instance=dagster_instance,
                                                            instance_ref=dagster_instance.get_ref()))

    requests = tick().run_requests
    assert [str(quarter_from_key(r.partition_key)) for r in requests] == [country.quarter] and requests[0].job_name in (None, "national_comparison")
    assert tick().run_requests[0].run_key == requests[0].run_key  # the same publications: the same run
    monkeypatch.setenv("DOUDI_WAREHOUSE", str(tmp_path / "{region}" / "doudi.duckdb"))  # regions not run there
    assert "还没有数据仓库" in tick().skip_message


# ---- Spark ---------------------------------------------------------------------------------------

def _requires_spark(test):
    for mark in REQUIRES_SPARK:
        test = mark(test)
    return test


@_requires_spark
@pytest.mark.parametrize("table, columns", [
    ("roster_duplicates", "region_l, member_id_l, household_id_l, region_r, member_id_r, household_id_r, match_method, round(match_probability, 6)"),
    ("death_links", "death_region, record_key, member_region, member_id, household_id, match_method, round(match_probability, 6)"),
    ("warnings", "region, warning_id, rule_code, severity, household_id, member_id, evidence::VARCHAR, other_regions, due_date"),
])
def test_spark_and_duckdb_find_the_same_across_regions(national_spark, national_duckdb, country, table, columns):
    assert national_spark.exit_code == EXIT_OK, national_spark.printed
    sql = f"SELECT {columns} FROM national.{table} WHERE quarter = ?"
    duck, spark = _rows(national_duckdb.warehouse, sql, country.quarter), _rows(national_spark.warehouse, sql, country.quarter)
    assert duck and duck == spark
    backend, compared = _rows(national_spark.warehouse, "SELECT link_backend, roster_pairs_compared FROM national.runs")[0]
    assert backend == "spark" and compared > 0

