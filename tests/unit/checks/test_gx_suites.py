"""The GX suites run on a quarter's staged rows, and without fingerprinting the batch."""

import datetime as dt

import duckdb
import pytest

from checks import gx_suites
from sources.registry import source


@pytest.fixture
def death_staging():
    spec = source("death")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute(spec.staging_ddl())
    columns = [name for name, _ in spec.staged_columns()]
    rows = [
        {"quarter": "2025Q2", "record_id": "D1", "death_date": dt.date(2025, 5, 1)},
        {"quarter": "2025Q2", "record_id": "D1", "death_date": dt.date(2025, 5, 2)},  # the key twice
        {"quarter": "2025Q2", "record_id": "D2", "death_date": dt.date(2025, 5, 3)},
        {"quarter": "2025Q1", "record_id": "D1", "death_date": dt.date(2025, 2, 1)},  # another quarter
    ]
    for row in rows:
        con.execute(
            f"INSERT INTO {spec.staging_table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
    assert set(rows[0]) <= set(columns)
    yield con, spec
    con.close()


def test_blocking_suite_counts_a_duplicate_key_in_the_quarter_only(death_staging):
    con, spec = death_staging
    outcomes = gx_suites.validate_source(con, "death", spec.staging_table, "2025Q2", {"q_end": "2025-06-30"}, blocking=True)
    by_type = {o.declared.type: o for o in outcomes}
    unique = by_type["expect_column_values_to_be_unique"]
    assert not unique.success and unique.unexpected_count == 2 and unique.evaluated_rows == 3
    assert by_type["expect_table_row_count_to_be_between"].observed_value == 3
    assert by_type["expect_column_values_to_not_be_null"].success


def test_batches_are_not_fingerprinted(death_staging, monkeypatch):
    """GX hashes every row of a pandas batch under 1 GB for a marker doudi never reads;
    on a province that hashing was most of the checks stage."""
    from great_expectations.execution_engine import pandas_execution_engine

    def refuse(_frame):
        raise AssertionError("the batch was hashed")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    con, spec = death_staging
    outcomes = gx_suites.validate_source(con, "death", spec.staging_table, "2025Q2", {"q_end": "2025-06-30"}, blocking=False)
    assert {o.declared.type for o in outcomes} >= {"expect_column_values_to_be_between"}


# ---- the key checks follow from the department spec ------------------------------------

def test_the_key_checks_come_from_the_spec_in_the_suite_files_words():
    blocking = [(d.label, d.why) for d in gx_suites.declared_suite("households") if d.blocking]
    assert blocking == [
        ("expect_table_row_count_to_be_between(table)", "花名册不能为空"),
        ("expect_column_values_to_be_unique(household_id)", "户编号在一个季度内唯一"),
        ("expect_column_values_to_not_be_null(household_id)", "每户都有户编号"),
    ]
    # words the suite file does not give follow from the spec's title and key header
    detention = [d.why for d in gx_suites.declared_suite("detention") if d.blocking]
    assert detention == ["羁押服刑数据不能为空", "记录编号唯一", "每条记录都有记录编号"]


def test_a_compound_key_an_optional_folder_and_a_repeating_key():
    standards = [d for d in gx_suites.declared_suite("standards") if d.blocking]
    assert [(d.type, d.kwargs) for d in standards] == [
        ("expect_compound_columns_to_be_unique", {"column_list": ["county_code", "urban_rural", "effective_date"]})
    ]  # an optional folder may be empty
    assert not [d for d in gx_suites.declared_suite("verifications") if d.blocking]  # a list may come back twice


def test_a_source_without_a_suite_file_gets_its_key_checks(monkeypatch, tmp_path):
    monkeypatch.setattr(gx_suites, "SUITE_DIR", tmp_path)
    checks = gx_suites.key_checks(source("death"), gx_suites._suite_file("death").get("key_checks"))
    assert [(d.label, d.why) for d in checks] == [
        ("expect_table_row_count_to_be_between(table)", "死亡信息数据不能为空"),
        ("expect_column_values_to_be_unique(record_id)", "记录编号唯一"),
        ("expect_column_values_to_not_be_null(record_id)", "每条记录都有记录编号"),
    ]


def test_a_suite_file_may_only_word_the_key_checks_there_are(monkeypatch, tmp_path):
    (tmp_path / "death.yaml").write_text("key_checks:\n  key_unqiue: 记录编号唯一\n", encoding="utf-8")
    monkeypatch.setattr(gx_suites, "SUITE_DIR", tmp_path)
    with pytest.raises(ValueError, match="key_unqiue"):
        gx_suites._suite_file("death")
