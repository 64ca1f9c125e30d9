"""The linker's identities are built from the department specs (`person:`): each linked
source's window, the union's order, and a department added by its spec file alone."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.link.extract_identities import extract_identities_sql, materialize_extract_identities, union_order
from pipelines.quarters import Quarter, add_months
from sources import registry
from tests.helpers import insert_staging
from tests.unit.sources.test_registry import VEHICLES, extra_dir, write  # noqa: F401  (extra_dir is a fixture)
from warehouse.connection import connect

ID = "140502198001014736"


def params(quarter: str) -> dict:
    q = Quarter.parse(quarter)
    return {"quarter": quarter, "q_end": q.end, "lookback_start": add_months(q.end, -12)}


def test_the_union_keeps_the_order_of_the_hand_written_model():
    """medical (history), death (delivered so far), then the full stocks in source order:
    the linker takes any_value of an identity's rows, so the order is part of the output."""
    assert [s.source for s in union_order()] == ["medical", "death", "disability", "education", "detention"]
    sql = extract_identities_sql()
    assert sql.index("from staging.medical") < sql.index("from staging.death") < sql.index("from staging.disability")
    assert "settlement_date\" > $lookback_start" in sql


def test_each_window_brings_its_rows(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        insert_staging(con, "medical", [
            {"quarter": "2025Q1", "settlement_id": "S-old", "id_number": ID, "name": "甲", "settlement_date": dt.date(2024, 3, 1)},
            {"quarter": "2025Q1", "settlement_id": "S-in", "id_number": ID, "name": "甲", "settlement_date": dt.date(2025, 2, 1)},
            {"quarter": "2025Q3", "settlement_id": "S-later", "id_number": ID, "name": "甲", "settlement_date": dt.date(2025, 4, 1)},
        ])
        insert_staging(con, "death", [
            {"quarter": "2025Q1", "record_id": "D1", "id_number": ID, "name": "甲", "death_date": dt.date(2025, 1, 5)},
        ])
        insert_staging(con, "detention", [
            {"quarter": "2025Q1", "record_id": "J-old", "id_number": ID, "name": "甲"},
            {"quarter": "2025Q2", "record_id": "J-now", "id_number": ID, "name": "甲"},
        ])
        materialize_extract_identities(con, params("2025Q2"))
        rows = con.execute("SELECT source, record_key FROM int_extract_identities").fetchall()
        assert rows == [("medical", "S-in"), ("death", "D1"), ("detention", "J-now")]
        # one identity as written, whichever source writes it
        assert con.execute("SELECT count(DISTINCT identity_key) FROM int_extract_identities").fetchone()[0] == 1


def test_a_department_declared_by_its_spec_alone_is_linked(extra_dir, tmp_path):  # noqa: F811
    write(extra_dir, "vehicles.yaml", VEHICLES)
    assert [s.source for s in union_order()][-1] == "vehicles"
    with connect(tmp_path / "w.duckdb") as con:  # the staging table comes from the spec too
        insert_staging(con, "vehicles", [
            {"quarter": "2025Q1", "registration_no": "V-old", "id_number": ID, "name": "甲"},
            {"quarter": "2025Q2", "registration_no": "V-now", "id_number": ID, "name": "甲"},
        ])
        materialize_extract_identities(con, params("2025Q2"))
        rows = con.execute("SELECT source, record_key, delivered_quarter FROM int_extract_identities").fetchall()
    assert rows == [("vehicles", "V-now", "2025Q2")]


def test_no_linked_department_is_an_error(monkeypatch):
    monkeypatch.setattr(registry, "linked_sources", lambda: ())
    monkeypatch.setattr("pipelines.link.extract_identities.linked_sources", lambda: ())
    with pytest.raises(ValueError, match="nothing to link"):
        extract_identities_sql()
