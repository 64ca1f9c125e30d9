"""Hand-built record-member pairs scored against the committed model: which level of each
comparison fires, and whether the pair would link."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from pipelines.link import model, thresholds
from pipelines.link.names import name_keys
from pipelines.link.probabilistic import SPLINK_COLUMNS, score_pairs_directly

ID = "140502198001014736"      # valid
TYPO = "140502198001014936"    # one digit wrong: fails the check digit
OTHER = "140502198001013459"   # another valid ID, same region and birth date
PRIOR = 2e-5                   # about what a county's quarter gives
NAME_FREQUENCY = 1e-4          # one person in ten thousand bears the name


def gamma_of(comparison: str, label: str) -> int:
    """Splink's gamma for a level: -1 for the null level, then counting up from the last."""
    levels = next(c for c in json.loads(model.MODEL_PATH.read_text())["comparisons"] if c["output_column_name"] == comparison)["comparison_levels"]
    non_null = [lv for lv in levels if not lv.get("is_null_level")]
    if any(lv.get("is_null_level") and lv["label_for_charts"] == label for lv in levels):
        return -1
    return len(non_null) - 1 - [lv["label_for_charts"] for lv in non_null].index(label)


def identity(uid: str, name: str, id18: str | None = None, partial15: str | None = None, birth: dt.date | None = None, sex: str | None = None) -> dict:
    valid = id18 in (ID, OTHER)
    row = {"unique_id": uid, "household_id": None, "name": name, "id18": id18, "id_valid": valid, "partial15": partial15, "partial6": None}
    if id18 and id18.isdigit():
        row["rounded15"] = str(int(id18[:15]) + (int(id18[15]) >= 5))
        row["rounded6"] = str(int(id18[:6]) + (int(id18[6]) >= 5))
        row["birth_date"] = birth or dt.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
        row["birth_from_id"] = birth is None
        row["sex"] = sex or ("男" if int(id18[16]) % 2 else "女")
    else:
        row.update(rounded15=None, rounded6=None, birth_date=birth, sex=sex, birth_from_id=False)
    for key, (a, b) in {"k_no_region": (6, 18), "k_no_sequence": (0, 14)}.items():
        row[key] = id18[a:b] if id18 else None
    return row


def frame(rows: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema_overrides={"birth_date": pl.Date})
    df = pl.concat([df.drop("name"), name_keys(df["name"])], how="horizontal")
    for col in SPLINK_COLUMNS:
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(col))
    # How common the name is among the people compared (a run computes this from its data).
    return df.with_columns(pl.lit(NAME_FREQUENCY).alias("tf_name_s"))


def score_one(record: dict, member: dict) -> dict:
    return score_pairs_directly(frame([record]), frame([member]), PRIOR).row(0, named=True)


@pytest.mark.parametrize(
    "record,member,id_level,name_level,links",
    [
        # one digit wrong in the extract, same name: found, strongly enough to stop a benefit
        (identity("r", "王丽", TYPO), identity("m", "王丽", ID), "one digit wrong or two swapped", "Exact match on name_s", "ineligibility"),
        # the same, written in traditional characters: the simplified forms agree
        (identity("r", "張偉", TYPO), identity("m", "张伟", ID), "one digit wrong or two swapped", "Exact match on name_s", "ineligibility"),
        # a homophone typed for the right character: pinyin agrees
        (identity("r", "王莉", TYPO), identity("m", "王丽", ID), "one digit wrong or two swapped", "Exact match on name_py", "need"),
        # Excel kept 15 digits (rounded) of the ID
        (identity("r", "王丽", partial15="140502198001015"), identity("m", "王丽", ID),
         "Excel's 15 digits (rounded or cut) and the name agree", "Exact match on name_s", "ineligibility"),
        # the same number as Excel stores it: the first 15 digits cut off, not rounded
        (identity("r", "王丽", partial15="140502198001014"), identity("m", "王丽", ID),
         "Excel's 15 digits (rounded or cut) and the name agree", "Exact match on name_s", "ineligibility"),
        # Excel's 15 digits of the member's ID on a record bearing another name: not linked
        (identity("r", "李强", partial15="140502198001014"), identity("m", "王丽", ID), "All other comparisons", "All other comparisons", None),
        # two people with valid IDs, same name and birth date: never one person
        (identity("r", "王丽", OTHER), identity("m", "王丽", ID), "two different valid IDs", "Exact match on name_s", None),
        # a typo and a different name: not enough
        (identity("r", "李强", TYPO), identity("m", "王丽", ID), "one digit wrong or two swapped", "All other comparisons", None),
    ],
)
def test_hand_built_pairs(record, member, id_level, name_level, links):
    scored = score_one(record, member)
    assert scored["gamma_id18"] == gamma_of("id18", id_level)
    assert scored["gamma_name"] == gamma_of("name", name_level)
    p = scored["match_probability"]
    if links == "ineligibility":
        assert p >= thresholds.INELIGIBILITY, scored["match_weight"]
    elif links == "need":
        assert p >= thresholds.NEED, scored["match_weight"]
    else:
        assert p < 0.05, scored["match_weight"]  # far below any threshold


def test_a_member_without_an_id_is_found_by_name_birth_date_and_sex():
    record = identity("r", "赵敏", ID)
    member = identity("m", "赵敏", None, birth=dt.date(1980, 1, 1), sex="男")
    scored = score_one(record, member)
    assert scored["gamma_id18"] == -1  # no ID digits on the member's side
    assert scored["gamma_birth_date"] == gamma_of("birth_date", "Exact match on birth_date")
    assert scored["match_probability"] >= thresholds.NEED
    # ... and a different birth date is evidence against
    member["birth_date"] = dt.date(1975, 6, 1)
    assert score_one(record, member)["match_probability"] < 0.01


def test_birth_date_is_not_counted_twice_when_both_sides_have_an_id():
    scored = score_one(identity("r", "王丽", TYPO), identity("m", "王丽", ID))
    assert scored["gamma_birth_date"] == -1 and scored["gamma_sex"] == -1


def test_the_committed_model_has_a_version_and_every_level_trained():
    meta = json.loads(model.META_PATH.read_text())
    assert meta["version"] == model.MODEL_VERSION
    trained = json.loads(model.MODEL_PATH.read_text())
    for comparison in trained["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                assert level.get("m_probability") is not None and level.get("u_probability") is not None, level["label_for_charts"]
