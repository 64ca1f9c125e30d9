"""Hand-built pairs, one per hazard of real registers, through the two rules of identity
corroboration (pipelines/link/corroboration.py): the NAME RULE decides whether an ID
match is the member, the SIBLING RULE keeps a twin's record off the member."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from pipelines.link.corroboration import PAIR_COLUMNS, judge_pairs, name_agreement

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def with_check(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, W)) % 11]


MEMBER_ID = with_check("14050220010304002")     # 王欣怡, born 2001-03-04
TWIN_ID = with_check("14050220010304004")       # her twin: the sequence one apart, valid
MISTYPED = MEMBER_ID[:10] + "9" + MEMBER_ID[11:]  # her ID with a digit mistyped: fails the check
BORN = dt.date(2001, 3, 4)


@pytest.mark.parametrize(
    ("hazard", "record_name", "member_name", "expected"),
    [
        ("the same name", "王欣怡", "王欣怡", "same"),
        ("the traditional form", "張國華", "张国华", "normalised"),
        ("a minority name without its dot", "艾力吐尔洪", "艾力·吐尔洪", "normalised"),
        ("a same-sounding character (a clerk's typo)", "胡欣伟", "胡欣玲", "variant"),
        ("a character dropped", "王秀", "王秀英", "variant"),
        ("a character added", "李建国华", "李建国", "variant"),
        ("an ID copied from the row above: another person's name", "欧阳娜娜", "杨文博", "different"),
        ("a newborn's bill under the mother's ID", "李芳之女", "李芳", "different"),
        ("a newborn named by the father's surname", "张子涵", "李芳", "different"),
        ("a changed name: another given name", "王佳怡", "王秀英", "different"),
        ("a twin's name, one character from the member's", "王欣悦", "王欣怡", "variant"),
        ("no name on the record", None, "王欣怡", "missing"),
    ],
)
def test_name_rule(hazard, record_name, member_name, expected):
    assert name_agreement(record_name, member_name) == expected, hazard


def identity(uid: str, name: str, id18: str | None, birth: dt.date = BORN, partial15: str | None = None) -> dict:
    valid = id18 is not None and id18 == with_check(id18[:17])
    return {"unique_id": uid, "name": name, "id18": id18, "id_valid": valid, "birth_date": birth, "partial15": partial15}


def judged(record: dict, member: dict, symmetric: bool = False) -> list[dict]:
    pairs = pl.DataFrame({"left_id": [record["unique_id"]], "right_id": [member["unique_id"]], "match_probability": [0.999]})
    side = lambda row: pl.DataFrame([row], schema_overrides={"birth_date": pl.Date, "partial15": pl.Utf8}).select(PAIR_COLUMNS)  # noqa: E731
    with duckdb.connect() as con:
        return judge_pairs(con, pairs, side(record), side(member), symmetric=symmetric).to_dicts()


def test_a_twins_record_never_links_to_the_member():
    # valid ID one digit (and the check digit) away, same birth date, a twin's name
    assert judged(identity("r", "王欣悦", TWIN_ID), identity("m", "王欣怡", MEMBER_ID)) == []


def test_a_twins_record_never_links_to_a_member_whose_roster_id_is_mistyped():
    # the roster holds the member's ID with a typo that makes it one digit from the twin's
    roster_id = TWIN_ID[:15] + str((int(TWIN_ID[15]) + 3) % 10) + TWIN_ID[16:]
    assert roster_id != with_check(roster_id[:17])
    assert judged(identity("r", "王欣悦", TWIN_ID), identity("m", "王欣怡", roster_id)) == []


def test_a_sibling_with_another_given_name_never_links():
    assert judged(identity("r", "王建军", TWIN_ID), identity("m", "王欣怡", MEMBER_ID)) == []


def test_the_members_own_record_with_a_mistyped_id_links():
    # the record's ID fails its check digit: a typo, not a twin's number
    [pair] = judged(identity("r", "王欣怡", MISTYPED), identity("m", "王欣怡", MEMBER_ID))
    assert (pair["name_agreement"], pair["id_agreement"]) == ("same", "one_digit")


def test_a_valid_id_one_digit_off_with_the_members_own_name_links():
    # same name, same birth date: the member with a mistyped ID that happens to pass the check
    [pair] = judged(identity("r", "王欣怡", TWIN_ID), identity("m", "王欣怡", MEMBER_ID))
    assert pair["name_agreement"] == "same"


def test_another_birth_date_is_not_a_twin():
    # one digit off but born on another day: the sibling rule does not apply; the name decides
    other_born = dt.date(2001, 3, 5)
    [pair] = judged(identity("r", "胡欣伟", TWIN_ID, birth=other_born), identity("m", "胡欣玲", MEMBER_ID))
    assert pair["name_agreement"] == "variant"


def test_two_roster_rows_of_twins_are_not_one_person_either_way_round():
    # roster duplicates are judged symmetrically: whichever row holds the valid ID
    roster_id = TWIN_ID[:15] + str((int(TWIN_ID[15]) + 3) % 10) + TWIN_ID[16:]  # fails its check digit
    assert judged(identity("a", "王欣怡", roster_id), identity("b", "王欣悦", TWIN_ID), symmetric=True) == []
    assert judged(identity("a", "王欣怡", roster_id), identity("b", "王欣悦", TWIN_ID)) != []  # the left row's ID is not the valid one


def test_a_copied_id_in_a_probabilistic_pair_is_rejected():
    assert judged(identity("r", "欧阳娜娜", MEMBER_ID), identity("m", "杨文博", MEMBER_ID)) == []
