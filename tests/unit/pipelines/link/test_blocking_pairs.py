"""Hand-built record-member pairs, one or more per blocking rule, each naming the rule that
must catch it (`pipelines/link/blocking.py`).

The IDs are written as a department writes them and go the way a run takes them: the ID
cleaner (`sources.cleaning.clean_id_column`), the generated SQL of `link_identities` (its
ID keys) and of `link_candidate_records`, and Splink's own blocking with the rules of a
run. A pair is counted under the first rule that catches it (Splink's `match_key`), so
each case is built for its rule to be the first; changing a key's digits, a rule's
condition or their order fails here.

Synthetic IDs only (region 140502, made-up birth dates and sequence numbers).
"""

from __future__ import annotations

import datetime as dt
import logging

import duckdb
import polars as pl
import pytest

from pipelines.link import blocking, model
from pipelines.link.linker import surname_keys, with_name_keys
from pipelines.link.probabilistic import SPLINK_COLUMNS
from pipelines.link.sql_models import materialize_linkage
from sources.cleaning import ID_CHECK_CHARS, ID_WEIGHTS, clean_id_column


def valid(first17: str) -> str:
    """The ID with its GB 11643 check character."""
    return first17 + ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def mistyped(id18: str, position: int, digit: str) -> str:
    """One digit (counted from 1) written wrong: the check character no longer fits."""
    assert id18[position - 1] != digit
    return id18[: position - 1] + digit + id18[position:]


def swapped(id18: str, position: int) -> str:
    """Digits `position` and `position + 1` written the other way round."""
    i = position - 1
    assert id18[i] != id18[i + 1]
    return id18[:i] + id18[i + 1] + id18[i] + id18[i + 2 :]


ID = valid("14050219850612371")  # born 1985-06-12; digit 16 is 7, so Excel rounds digit 15 up
TWIN = valid("14050219850612373")  # born the same day, the next sequence number
assert ID[:15] == "140502198506123"


# case -> (record's ID as written, member's ID as written, the first rule that must catch it)
CASES = {
    "region_typo": (mistyped(ID, 3, "1"), ID, "ID_WITHOUT_REGION"),
    "birth_year_typo": (mistyped(ID, 9, "9"), ID, "ID_WITHOUT_BIRTH_YEAR"),
    "birth_day_typo": (mistyped(ID, 14, "7"), ID, "ID_WITHOUT_MONTH_DAY"),
    "sequence_typo": (mistyped(ID, 16, "1"), ID, "ID_WITHOUT_SEQUENCE"),
    "check_character_typo": (mistyped(ID, 18, "0" if ID[17] != "0" else "1"), ID, "ID_WITHOUT_SEQUENCE"),
    "swap_6_7": (swapped(ID, 6), ID, "ID_WITHOUT_DIGITS_6_7"),
    "swap_10_11": (swapped(ID, 10), ID, "ID_WITHOUT_DIGITS_10_11"),
    "swap_14_15": (swapped(ID, 14), ID, "ID_WITHOUT_DIGITS_14_15"),
    # the member's own ID is the mistyped one (the roster's typo): the same rules, the other way
    "member_region_typo": (ID, mistyped(ID, 5, "9"), "ID_WITHOUT_REGION"),
    "member_swap_10_11": (ID, swapped(ID, 10), "ID_WITHOUT_DIGITS_10_11"),
    # Excel showed the record's ID in scientific form: 15 digits, the last rounded up
    "excel_rounded_record": ("1.40502198506124E+17", ID, "EXCEL_15_DIGITS_LEFT"),
    # Excel stored the number: 15 digits cut off, read back as a float
    "excel_cut_record": ("140502198506123000.0", ID, "EXCEL_15_DIGITS_CUT_LEFT"),
    # The roster's ID gone through Excel: the roster keeps no partial ID (int_roster has no
    # id_number_partial), so the _RIGHT rules never see one; name and birth date find it.
    "excel_rounded_member": (ID, "1.40502198506124E+17", "NAME_AND_BIRTH_DATE"),
    "excel_cut_member": (ID, "140502198506123000.0", "NAME_AND_BIRTH_DATE"),
    # ... written out with its 000: the 18 characters keep the first 14 digits of the ID
    "excel_cut_written_out": ("140502198506123000", ID, "ID_WITHOUT_SEQUENCE"),
    # a member without an ID: found by name and birth date (the roster's 出生日期)
    "member_without_id": (ID, None, "NAME_AND_BIRTH_DATE"),
    # two valid IDs that differ: two people (twins), never compared, whatever the names
    "twins_both_valid": (TWIN, ID, None),
    # Excel left six digits: not enough to pair anyone on
    "excel_six_digits": ("1.40502E+17", ID, None),
    # two typos in two parts: no key survives, and the birth date read from the ID differs
    "two_parts_wrong": (mistyped(mistyped(ID, 3, "1"), 12, "7"), ID, None),
}
BIRTH = dt.date(1985, 6, 12)


def _cleaned(rows: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"uid": pl.Utf8, "name": pl.Utf8, "id_number": pl.Utf8, "household_id": pl.Utf8})
    return clean_id_column(frame, "id_number")


def _load_identities(con: duckdb.DuckDBPyConnection, records: list[dict], members: list[dict],
                     member_partials: dict[str, str] | None = None) -> None:
    """int_roster and link_record_identities as the run builds them, then link_identities
    (with `member_partials`: member uid -> partial15, as if the roster kept one)."""
    con.register("__members", _cleaned(members).with_columns(pl.lit(BIRTH).alias("birth_date"), pl.lit("男").alias("sex")).to_arrow())
    con.execute("""CREATE TEMP TABLE int_roster AS
                   SELECT uid AS member_id, household_id, name, id_number, id_number_valid, id_number_flag, id_number_raw,
                          birth_date, sex FROM __members""")
    con.register("__records", _cleaned(records).to_arrow())
    con.execute("""CREATE TEMP TABLE link_record_identities AS
                   SELECT uid AS identity_key, name, id_number, id_number_valid, id_number_partial, id_number_raw, id_number_flag,
                          1 AS records FROM __records""")
    materialize_linkage(con, "intermediate/link_identities", {})
    for uid, partial15 in (member_partials or {}).items():
        con.execute("UPDATE link_identities SET partial15 = ? WHERE unique_id = ? AND side = 'member'", [partial15, uid])


def _splink_input(con: duckdb.DuckDBPyConnection, side: str) -> pl.DataFrame:
    return with_name_keys(con.execute("SELECT * FROM link_identities WHERE side = ?", [side]).pl()).select(SPLINK_COLUMNS)


def blocked_pairs(records: list[dict], members: list[dict], link_type: str = "link_only",
                  member_partials: dict[str, str] | None = None) -> dict[tuple[str, str], str]:
    """(left unique_id, right unique_id) -> the name of the rule that caught the pair, as
    Splink blocks for a run (records against members; or, `dedupe_only`, the members)."""
    from splink import Linker
    from splink.internals.duckdb.database_api import DuckDBAPI

    con = duckdb.connect()
    _load_identities(con, records, members, member_partials)
    inputs = {"a_records": _splink_input(con, "record"), "b_members": _splink_input(con, "member")}
    if link_type == "dedupe_only":
        inputs.pop("a_records")
    db = DuckDBAPI(con)
    tables = []
    for name, frame in inputs.items():
        con.register(f"__{name}", frame.to_arrow())
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM __{name}")
        tables.append(db.register(name, dataset_display_name=name))
    linker = Linker(tables if len(tables) > 1 else tables[0], model.trained_settings(1e-4, link_type), log_level=logging.WARNING)
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    rows = con.execute(f"SELECT join_key_l, join_key_r, match_key FROM {blocked.physical_name}").fetchall()
    # a join key is `source_dataset-__-unique_id` (link_only) or the unique_id
    return {(left.split("-__-")[-1], right.split("-__-")[-1]): blocking.RULE_NAMES[int(key)] for left, right, key in rows}


@pytest.fixture(scope="module")
def record_member_pairs() -> dict[tuple[str, str], str]:
    records = [{"uid": f"{case}.r", "name": "王丽", "id_number": r, "household_id": None} for case, (r, _, _) in CASES.items()]
    members = [{"uid": f"{case}.m", "name": "王丽", "id_number": m, "household_id": f"H.{case}"} for case, (_, m, _) in CASES.items()]
    return blocked_pairs(records, members)


@pytest.mark.parametrize("case", list(CASES))
def test_each_pair_is_caught_by_its_rule(record_member_pairs, case):
    expected = CASES[case][2]
    assert record_member_pairs.get((f"{case}.r", f"{case}.m")) == expected


# Were a member's partial ID kept (it is not: see above), the rules for it would pair it.
MEMBER_PARTIAL_CASES = {
    "excel_rounded_member": ("140502198506124", "EXCEL_15_DIGITS_RIGHT"),
    "excel_cut_member": ("140502198506123", "EXCEL_15_DIGITS_CUT_RIGHT"),
}


def test_a_partial_id_on_the_member_side_is_paired_by_the_right_hand_excel_rules():
    cases = {case: CASES[case] for case in MEMBER_PARTIAL_CASES}
    records = [{"uid": f"{case}.r", "name": "王丽", "id_number": r, "household_id": None} for case, (r, _, _) in cases.items()]
    members = [{"uid": f"{case}.m", "name": "王丽", "id_number": m, "household_id": case} for case, (_, m, _) in cases.items()]
    partials = {f"{case}.m": partial for case, (partial, _) in MEMBER_PARTIAL_CASES.items()}
    pairs = blocked_pairs(records, members, member_partials=partials)
    for case, (_, rule) in MEMBER_PARTIAL_CASES.items():
        assert pairs.get((f"{case}.r", f"{case}.m")) == rule, case


def test_every_rule_has_a_pair():
    rules = {rule for _, _, rule in CASES.values()} | {rule for _, rule in MEMBER_PARTIAL_CASES.values()}
    assert rules - {None} == set(blocking.RULE_NAMES)


def test_the_fixtures_are_what_they_say():
    cleaned = {row["uid"]: row for row in _cleaned([{"uid": c, "name": None, "id_number": r, "household_id": None}
                                                     for c, (r, _, _) in CASES.items()]).to_dicts()}
    assert cleaned["twins_both_valid"]["id_number_valid"] and not cleaned["region_typo"]["id_number_valid"]
    assert cleaned["excel_rounded_record"]["id_number_partial"] == "140502198506124"
    assert cleaned["excel_cut_record"]["id_number_partial"] == "140502198506123"
    assert cleaned["excel_cut_record"]["id_number"] is None
    assert cleaned["excel_six_digits"]["id_number_partial"] == "140502"


def test_member_rows_pair_across_households_only():
    """The roster deduplication (one person enrolled twice): the same rules, never within a
    household."""
    members = [
        {"uid": "a", "name": "王丽", "id_number": ID, "household_id": "H1"},
        {"uid": "b", "name": "王丽", "id_number": mistyped(ID, 3, "1"), "household_id": "H2"},  # another household
        {"uid": "c", "name": "王丽", "id_number": swapped(ID, 14), "household_id": "H1"},  # a's household
    ]
    pairs = blocked_pairs([], members, "dedupe_only")
    # a and c (one household) are not paired, though their IDs share k_no_14_15; b and c
    # are, by the roster's name and 出生日期, both IDs being damaged
    assert pairs == {("a", "b"): "ID_WITHOUT_REGION", ("b", "c"): "NAME_AND_BIRTH_DATE"}


def test_records_near_a_member_with_a_damaged_id_are_sent_to_splink():
    """link_candidate_records: a record with a valid ID goes to Splink only when an ID key
    (or its surname's pinyin and birth date) ties it to a member whose own ID is damaged;
    one with a damaged ID always goes. One member per ID key, with the roster's typo where
    only that key survives it, and a record with the right ID: each base ID differs from
    the others in the region, the birth day and the sequence, so no other key ties them,
    and the record's surname differs from the member's, so only the key can."""
    damage = {"region": (mistyped, 5, "9"), "year": (mistyped, 9, "9"), "month_day": (mistyped, 12, "7"),
              "sequence": (mistyped, 16, "0"), "6_7": (swapped, 6), "10_11": (swapped, 10), "14_15": (swapped, 14)}
    members, records = [], []
    for i, (case, (damaged, *how)) in enumerate(damage.items()):
        right = valid(f"140{i}02198506{21 + i}3{i}{i}")
        members.append({"uid": f"{case}.m", "name": "李丽", "id_number": damaged(right, *how), "household_id": case})
        records.append({"uid": f"{case}.r", "name": "王丽", "id_number": right, "household_id": None})
    records += [{"uid": "valid_alone.r", "name": "王丽", "id_number": valid("14090219900101123"), "household_id": None},
                {"uid": "damaged_alone.r", "name": "王丽", "id_number": mistyped(valid("14090219900101456"), 2, "9"),
                 "household_id": None}]
    con = duckdb.connect()
    _load_identities(con, records, members)
    con.execute("CREATE TEMP TABLE link_exact_id (identity_key VARCHAR)")  # the deterministic pass linked none of them
    surname_keys(con, "link_identities")
    materialize_linkage(con, "intermediate/link_candidate_records", {}, table="candidates")
    chosen = {uid for (uid,) in con.execute("SELECT unique_id FROM candidates").fetchall()}
    assert chosen == {f"{case}.r" for case in damage} | {"damaged_alone.r"}
    assert {k.column for k in blocking.ID_KEYS} == {f"k_no_{case}" for case in damage}


def test_the_keys_drop_each_part_of_the_id_and_each_boundary_between_parts():
    """The four parts (region, birth year, month-day, sequence and check) and the three
    boundaries a swap of neighbours can straddle; each key is the ID without those digits."""
    parts, boundaries = [(1, 6), (7, 10), (11, 14), (15, 18)], [(6, 7), (10, 11), (14, 15)]
    assert sorted((k.first, k.last) for k in blocking.ID_KEYS) == sorted(parts + boundaries)
    con = duckdb.connect()
    for key in blocking.ID_KEYS:
        (value,) = con.execute(f"SELECT {key.sql} FROM (SELECT ? AS id18)", [ID]).fetchone()
        assert value == ID[: key.first - 1] + ID[key.last :] and len(value) >= 12, key.column
