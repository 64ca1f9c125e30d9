"""Shared fixtures: a small synthetic province and a warehouse with its quarters run.

Generated once per test session into a temporary folder (never committed); the quarters
are run through the real Dagster job on an ephemeral Dagster instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.quarters import quarter_range
from tests.helpers import synthetic_country, synthetic_inbox

SMALL_QUARTERS = "2025Q1:2025Q2"
COUNTRY_QUARTER = "2025Q1"


@dataclass
class RunProvince:
    inbox: Path
    truth: Path
    warehouse: Path
    out: Path
    quarters: list[str]
    outcomes: dict


@pytest.fixture(scope="session")
def small_province(tmp_path_factory) -> Path:
    """Inbox folders for two quarters of a ~600-household province, plus truth/."""
    return synthetic_inbox(tmp_path_factory, "province", SMALL_QUARTERS, households=600, seed=11)


@pytest.fixture(scope="session")
def dagster_instance():
    import dagster as dg

    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="session")
def run_province(small_province, tmp_path_factory, dagster_instance) -> RunProvince:
    """Both quarters of the small province run in order on a fresh warehouse."""
    from pipelines.run import run_quarter

    root = tmp_path_factory.mktemp("run")
    warehouse, out = root / "warehouse.duckdb", root / "out"
    outcomes = {}
    for quarter in quarter_range(SMALL_QUARTERS):
        outcomes[str(quarter)] = run_quarter(small_province, str(quarter), warehouse, out, instance=dagster_instance)
    return RunProvince(small_province, small_province / "truth", warehouse, out, [str(q) for q in quarter_range(SMALL_QUARTERS)], outcomes)


@dataclass
class Country:
    root: Path
    regions: list[str]
    quarter: str

    def region_inbox(self, region: str) -> Path:
        return self.root / "regions" / region

    @property
    def inbox(self) -> Path:  # every region's deliveries in one inbox
        return self.root / "inbox"


@pytest.fixture(scope="session")
def country(tmp_path_factory) -> Country:
    """A small generated country of three provinces (14, 41, 13), one inbox per province and
    the same deliveries merged into one; people enrolled in two provinces (a duplicate rate
    five times the default) and deaths registered away from home."""
    root = synthetic_country(tmp_path_factory, "country", COUNTRY_QUARTER, households=500, seed=23, duplicate_enrolment=0.02)
    regions = sorted(p.name for p in (root / "regions").iterdir() if p.is_dir() and p.name != "truth")
    return Country(root, regions, COUNTRY_QUARTER)


@pytest.fixture(scope="session")
def country_in_one_warehouse(country, dagster_instance) -> Path:
    """The whole country's quarter run in one warehouse (DuckDB linkage): the reference the
    regional runs with the national step, and the Spark backend, are compared with."""
    from pipelines.run import EXIT_OK, run_quarter

    warehouse = country.root / "duckdb.duckdb"
    outcome = run_quarter(country.inbox, country.quarter, warehouse, country.root / "out-duckdb", instance=dagster_instance)
    assert outcome.exit_code == EXIT_OK, outcome.messages
    return warehouse


@pytest.fixture(scope="session")
def spark():
    """Spark in local mode for the tests marked `spark` (started on first use by the linker),
    stopped once at the end of the session."""
    yield
    from pipelines.link.spark import stop_spark

    stop_spark()


@pytest.fixture(autouse=True)
def _no_warehouse_key(monkeypatch):
    """Tests run on plain warehouses unless they set a key themselves."""
    monkeypatch.delenv("DOUDI_WAREHOUSE_KEY", raising=False)
    monkeypatch.delenv("DOUDI_WAREHOUSE_KEY_FILE", raising=False)
    yield


