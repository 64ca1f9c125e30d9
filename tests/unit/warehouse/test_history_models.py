"""History (RULES.md): deaths and settlements accumulate across deliveries, each record
counted once; full stocks count only the quarter's delivery; the roster is the quarter's."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.link.extract_identities import materialize_extract_identities
from pipelines.quarters import Quarter, add_months
from tests.helpers import insert_staging
from warehouse.connection import connect
from warehouse.models import materialize

ID = "140502198001014736"


@pytest.fixture()
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        yield con


def params(quarter: str) -> dict:
    q = Quarter.parse(quarter)
    return {"quarter": quarter, "q_end": q.end, "lookback_start": add_months(q.end, -12)}


def test_settlements_accumulate_and_count_once(con):
    insert_staging(con, "medical", [
        {"quarter": "2025Q1", "settlement_id": "JS1", "settlement_date": dt.date(2025, 2, 1), "out_of_pocket_yuan": 100.0},
        {"quarter": "2025Q1", "settlement_id": "JS2", "settlement_date": dt.date(2025, 3, 30), "out_of_pocket_yuan": 50.0},
        # JS2 delivered again (late correction), and JS3 from the quarter after.
        {"quarter": "2025Q2", "settlement_id": "JS2", "settlement_date": dt.date(2025, 3, 30), "out_of_pocket_yuan": 55.0},
        {"quarter": "2025Q2", "settlement_id": "JS3", "settlement_date": dt.date(2025, 5, 1), "out_of_pocket_yuan": 10.0},
        # Older than 12 months before 2025Q2's end: outside the window.
        {"quarter": "2025Q2", "settlement_id": "JS0", "settlement_date": dt.date(2024, 6, 30), "out_of_pocket_yuan": 999.0},
        # Someone off the roster: no member links to it, so no rule can read it.
        {"quarter": "2025Q2", "settlement_id": "JS9", "settlement_date": dt.date(2025, 5, 2), "out_of_pocket_yuan": 7.0},
    ])
    for quarter, keys in (("2025Q1", ["JS1", "JS2"]), ("2025Q2", ["JS0", "JS1", "JS2", "JS3"])):
        for key in keys:
            con.execute("INSERT INTO linked.matches (quarter, source, record_key, member_id, match_probability, match_method) "
                        "VALUES (?, 'medical', ?, 'M1', 1.0, 'exact_id')", [quarter, key])
    materialize(con, "intermediate/int_settlements", params("2025Q2"))
    rows = dict(con.execute("SELECT settlement_id, out_of_pocket_yuan FROM int_settlements").fetchall())
    assert set(rows) == {"JS1", "JS2", "JS3"}
    assert float(rows["JS2"]) == 55.0  # the latest delivery of a settlement wins
    materialize(con, "intermediate/int_settlements", params("2025Q1"))
    assert {r[0] for r in con.execute("SELECT settlement_id FROM int_settlements").fetchall()} == {"JS1", "JS2"}


def test_deaths_accumulate(con):
    insert_staging(con, "death", [
        {"quarter": "2025Q1", "record_id": "SW1", "id_number": ID, "death_date": dt.date(2025, 1, 5)},
        {"quarter": "2025Q2", "record_id": "SW2", "id_number": ID, "death_date": dt.date(2025, 1, 5)},
    ])
    materialize(con, "intermediate/int_death_records", params("2025Q2"))
    assert {r[0] for r in con.execute("SELECT record_id FROM int_death_records").fetchall()} == {"SW1", "SW2"}
    materialize(con, "intermediate/int_death_records", params("2025Q1"))
    assert {r[0] for r in con.execute("SELECT record_id FROM int_death_records").fetchall()} == {"SW1"}


def test_full_stocks_count_only_the_quarter(con):
    insert_staging(con, "disability", [
        {"quarter": "2025Q1", "certificate_no": ID + "42", "id_number": ID},
        {"quarter": "2025Q2", "certificate_no": ID + "43", "id_number": ID},
    ])
    insert_staging(con, "members", [{"quarter": "2025Q2", "member_id": "M1", "household_id": "H1", "id_number": ID}])
    insert_staging(con, "households", [{"quarter": "2025Q2", "household_id": "H1", "category": "低保", "household_size": 1}])
    materialize(con, "intermediate/int_roster", params("2025Q2"))
    materialize_extract_identities(con, params("2025Q2"))
    keys = [r[0] for r in con.execute("SELECT record_key FROM int_extract_identities WHERE source = 'disability'").fetchall()]
    assert keys == [ID + "43"]
