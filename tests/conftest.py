"""Shared fixtures: a small synthetic province and a warehouse with its quarters run.

Generated once per test session into a temporary folder (never committed); the quarters
are run through the real Dagster job on an ephemeral Dagster instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.quarters import quarter_range
from tests.helpers import synthetic_inbox

SMALL_QUARTERS = "2025Q1:2025Q2"


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
    from pipelines.cli import run_quarter

    root = tmp_path_factory.mktemp("run")
    warehouse, out = root / "warehouse.duckdb", root / "out"
    outcomes = {}
    for quarter in quarter_range(SMALL_QUARTERS):
        outcomes[str(quarter)] = run_quarter(small_province, str(quarter), warehouse, out, instance=dagster_instance)
    return RunProvince(small_province, small_province / "truth", warehouse, out, [str(q) for q in quarter_range(SMALL_QUARTERS)], outcomes)


@pytest.fixture(autouse=True)
def _no_warehouse_key(monkeypatch):
    """Tests run on plain warehouses unless they set a key themselves."""
    monkeypatch.delenv("DOUDI_WAREHOUSE_KEY", raising=False)
    monkeypatch.delenv("DOUDI_WAREHOUSE_KEY_FILE", raising=False)
    yield


