"""The linker on a generated province, against the generator's truth: precision and
recall floors, duplicate enrolments found, and pairs compared that grow with the data."""

from __future__ import annotations

import duckdb
import polars as pl

from devtools.evaluate import LINK_KEY, load_truth
from pipelines.link import thresholds

# The person-bearing extracts the generator links to roster members.
LINKED_SOURCES = {"medical", "death", "detention", "disability", "education"}


def _links(run_province) -> tuple[pl.DataFrame, pl.DataFrame]:
    _, truth = load_truth(run_province.truth)
    with duckdb.connect(str(run_province.warehouse), read_only=True) as con:
        found = con.execute("SELECT quarter, source, record_key, member_id, match_probability, match_method FROM linked.matches").pl()
    truth = truth.filter(pl.col("quarter").is_in(run_province.quarters))
    # every quarter run has links, and a truth to score them against
    assert set(found["quarter"].unique()) == set(run_province.quarters), found["quarter"].unique().to_list()
    assert set(truth["quarter"].unique()) == set(run_province.quarters), truth["quarter"].unique().to_list()
    return found, truth


def test_links_strong_enough_for_ineligibility_are_right(run_province):
    found, truth = _links(run_province)
    strong = found.filter(pl.col("match_probability") >= thresholds.INELIGIBILITY).select(LINK_KEY).unique()
    assert strong.height > 0
    correct = strong.join(truth.select(LINK_KEY), on=LINK_KEY, how="semi").height
    assert correct / strong.height >= 0.999, strong.join(truth.select(LINK_KEY), on=LINK_KEY, how="anti")


def test_every_link_is_mostly_right_and_recoverable_links_are_found(run_province):
    found, truth = _links(run_province)
    found = found.select(LINK_KEY).unique()
    assert found.join(truth.select(LINK_KEY), on=LINK_KEY, how="semi").height / found.height >= 0.998
    recoverable = truth.filter(pl.col("link_class") != "unrecoverable")
    assert set(recoverable["source"].unique()) == LINKED_SOURCES  # no source skipped for want of truth
    for source in sorted(LINKED_SOURCES):
        expected = recoverable.filter(pl.col("source") == source).select(LINK_KEY)
        got = expected.join(found, on=LINK_KEY, how="semi").height
        assert got / expected.height >= 0.99, (source, got, expected.height)
    fuzzy = recoverable.filter(pl.col("link_class") == "fuzzy").select(LINK_KEY)
    assert fuzzy.height > 0
    assert fuzzy.join(found, on=LINK_KEY, how="semi").height / fuzzy.height >= 0.95  # the links an exact join misses


def test_links_name_their_method_and_probability(run_province):
    found, _ = _links(run_province)
    methods = {"exact_id", "repaired_id", "derived_id", "exact_id_and_name", "probabilistic", "roster_duplicate"}
    assert set(found["match_method"].unique().to_list()) <= methods
    assert set(found["source"].unique()) >= LINKED_SOURCES - {"detention"}  # (a small province may have no detention link)
    assert found.filter(pl.col("match_method") == "probabilistic").height > 0
    assert found["match_probability"].is_between(thresholds.NEED, 1.0).all()


def test_one_person_in_two_households_is_found(run_province):
    persons = pl.read_csv(run_province.truth / "roster_persons.csv", schema_overrides={"member_id": pl.Utf8, "person_id": pl.Utf8})
    with duckdb.connect(str(run_province.warehouse), read_only=True) as con:
        found = con.execute("SELECT quarter, member_id, person_key FROM linked.roster_persons").pl()
        households = con.execute("SELECT quarter, member_id, household_id FROM staging.members").pl()
    persons = persons.join(households, on=["quarter", "member_id"])
    twice = persons.filter(pl.col("household_id").n_unique().over(["quarter", "person_id"]) > 1)
    assert twice.height > 0
    joined = twice.join(found, on=["quarter", "member_id"], how="left")
    # every row of a person enrolled twice carries one person key, shared by the person's rows
    assert joined["person_key"].null_count() / joined.height <= 0.05
    same = joined.drop_nulls("person_key").group_by(["quarter", "person_id"]).agg(pl.col("person_key").n_unique().alias("keys"))
    assert (same["keys"] == 1).all()
    wrongly_joined = found.join(persons, on=["quarter", "member_id"]).group_by(["quarter", "person_key"]).agg(
        pl.col("person_id").n_unique().alias("people"))
    assert wrongly_joined.height > 0 and (wrongly_joined["people"] == 1).all()


def test_pairs_compared_grow_with_the_data_not_its_square(run_province):
    with duckdb.connect(str(run_province.warehouse), read_only=True) as con:
        runs = con.execute("SELECT quarter, step, records_left, records_right, pairs_compared FROM audit.link_runs").fetchall()
    # both steps of every quarter run are recorded; the records step compared pairs (the
    # roster step compares only when a roster ID is damaged, so it may compare none)
    expected = sorted((quarter, step) for quarter in run_province.quarters for step in ("records", "roster"))
    assert sorted((quarter, step) for quarter, step, *_ in runs) == expected
    for quarter, step, left, right, pairs in runs:
        assert left > 0 and right > 0 and (pairs > 0 or step == "roster"), (quarter, step, left, right, pairs)
        assert pairs <= 5 * (left + right), (quarter, step, left, right, pairs)
