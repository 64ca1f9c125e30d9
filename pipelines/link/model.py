"""The probabilistic person-linkage model: comparisons and blocking rules, each a named
module-level object with the reason it exists.

Splink compares two identities built the same way (`warehouse/intermediate/
link_identities.sql` + `names.py`): an extract record's on one side, a roster member's on
the other (or two members, to find one person enrolled twice). The trained model — these
comparisons with their m and u probabilities — is committed as JSON in `model/` with a
version; a run reuses it and only re-estimates the prior (the share of pairs that match),
which depends on the quarter's data.

Only pairs where at least one side's ID is damaged, partial or missing reach Splink: two
valid IDs either agree (the deterministic pass linked them) or belong to two people.
"""

from __future__ import annotations

import json
from pathlib import Path

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on
from splink.internals.blocking_rule_library import CustomRule

MODEL_VERSION = "person_link_v1"
MODEL_DIR = Path(__file__).with_name("model")
MODEL_PATH = MODEL_DIR / f"{MODEL_VERSION}.json"
META_PATH = MODEL_DIR / f"{MODEL_VERSION}.meta.json"

# At least one of the two IDs cannot be trusted as it stands (typo, Excel, missing).
EITHER_DAMAGED = "(NOT coalesce(l.id_valid, false) OR NOT coalesce(r.id_valid, false))"

# ---- blocking rules -----------------------------------------------------------------------
# A single wrong digit, or two neighbouring digits swapped, leaves an 18-digit ID equal to
# the right one everywhere else. The ID has four parts (region 1-6, birth year 7-10, birth
# month-day 11-14, sequence and check 15-18): an error inside one part leaves the other
# three intact, and a swap across a boundary leaves everything outside the pair intact.
# Each key keeps at least 12 characters, so a block holds one or two people, and the
# number of pairs grows with the data, not its square.
ID_WITHOUT_REGION = CustomRule(f"l.k_no_region = r.k_no_region AND {EITHER_DAMAGED}", sql_dialect="duckdb")
ID_WITHOUT_BIRTH_YEAR = CustomRule(f"l.k_no_year = r.k_no_year AND {EITHER_DAMAGED}", sql_dialect="duckdb")
ID_WITHOUT_MONTH_DAY = CustomRule(f"l.k_no_month_day = r.k_no_month_day AND {EITHER_DAMAGED}", sql_dialect="duckdb")
ID_WITHOUT_SEQUENCE = CustomRule(f"l.k_no_sequence = r.k_no_sequence AND {EITHER_DAMAGED}", sql_dialect="duckdb")
ID_WITHOUT_DIGITS_6_7 = CustomRule(f"l.k_no_6_7 = r.k_no_6_7 AND {EITHER_DAMAGED}", sql_dialect="duckdb")
ID_WITHOUT_DIGITS_10_11 = CustomRule(f"l.k_no_10_11 = r.k_no_10_11 AND {EITHER_DAMAGED}", sql_dialect="duckdb")
ID_WITHOUT_DIGITS_14_15 = CustomRule(f"l.k_no_14_15 = r.k_no_14_15 AND {EITHER_DAMAGED}", sql_dialect="duckdb")
# An ID that went through Excel keeps 15 significant digits: the first 15 as Excel stores
# the number (cut off: 140502198001011000), or rounded where it was written out in
# scientific form. Compare both. (One rule per direction and form: an OR across columns
# would defeat the hash join and compare every pair.)
EXCEL_15_DIGITS_LEFT = CustomRule("l.partial15 = r.rounded15", sql_dialect="duckdb")
EXCEL_15_DIGITS_RIGHT = CustomRule("r.partial15 = l.rounded15", sql_dialect="duckdb")
EXCEL_15_DIGITS_CUT_LEFT = CustomRule("l.partial15 = substr(r.id18, 1, 15)", sql_dialect="duckdb")
EXCEL_15_DIGITS_CUT_RIGHT = CustomRule("r.partial15 = substr(l.id18, 1, 15)", sql_dialect="duckdb")
# A roster member without a usable ID is found by name and birth date (a record's birth
# date is read from its ID).
NAME_AND_BIRTH_DATE = CustomRule(
    "l.name_s = r.name_s AND l.birth_date = r.birth_date AND "
    "(l.id18 IS NULL OR r.id18 IS NULL OR NOT coalesce(l.id_valid, false) OR NOT coalesce(r.id_valid, false))",
    sql_dialect="duckdb",
)
# Not blocked on: an ID that Excel cut to six digits (only the region is left). A name and
# a county are not enough to say who a record is about, and pairing every such record
# with every namesake in the county would cost more than it could ever find.

BLOCKING_RULES = [
    ID_WITHOUT_REGION,
    ID_WITHOUT_BIRTH_YEAR,
    ID_WITHOUT_MONTH_DAY,
    ID_WITHOUT_SEQUENCE,
    ID_WITHOUT_DIGITS_6_7,
    ID_WITHOUT_DIGITS_10_11,
    ID_WITHOUT_DIGITS_14_15,
    EXCEL_15_DIGITS_LEFT,
    EXCEL_15_DIGITS_RIGHT,
    EXCEL_15_DIGITS_CUT_LEFT,
    EXCEL_15_DIGITS_CUT_RIGHT,
    NAME_AND_BIRTH_DATE,
]
# Two member rows of one household are never "the same person enrolled twice".
DEDUPE_BLOCKING_RULES = [
    CustomRule(f"({rule.blocking_rule_sql}) AND l.household_id <> r.household_id", sql_dialect="duckdb")
    for rule in (r.get_blocking_rule("duckdb") for r in BLOCKING_RULES)
]

# ---- comparisons ------------------------------------------------------------------------------
# The ID number, from strongest agreement to strongest disagreement. Two valid IDs that
# differ belong to two people (a typo almost never yields another valid number: the check
# digit catches every single substitution and every swap of neighbours).
ID_NUMBER = cl.CustomComparison(
    output_column_name="id18",
    comparison_description="身份证号：完全一致、同一无效号码、一位之差、Excel 截断后一致、出生地与生日一致",
    comparison_levels=[
        cll.CustomLevel(
            "(id18_l IS NULL AND partial15_l IS NULL AND partial6_l IS NULL) OR "
            "(id18_r IS NULL AND partial15_r IS NULL AND partial6_r IS NULL)",
            "no ID digits on one side",
        ).configure(is_null_level=True),
        cll.CustomLevel("id18_l = id18_r AND id_valid_l AND id_valid_r", "same valid ID"),
        cll.CustomLevel("id18_l = id18_r", "same ID, check digit wrong on both"),
        cll.CustomLevel("id_valid_l AND id_valid_r", "two different valid IDs"),
        cll.CustomLevel("damerau_levenshtein(id18_l, id18_r) <= 1", "one digit wrong or two swapped"),
        # Excel keeps 15 significant digits of an 18-digit number: cut off when it stores it
        # (140502198001011000), rounded when it shows it in scientific form; accept either.
        # Never a full ID, at most a partial key that needs the name to agree (CONTRACT §2):
        # with another name the pair falls to the weaker levels below.
        cll.CustomLevel(
            "(partial15_l = rounded15_r OR partial15_r = rounded15_l OR "
            "partial15_l = substr(id18_r, 1, 15) OR partial15_r = substr(id18_l, 1, 15)) "
            "AND (name_s_l = name_s_r OR name_py_l = name_py_r)",
            "Excel's 15 digits (rounded or cut) and the name agree",
        ),
        cll.CustomLevel("substr(id18_l, 1, 14) = substr(id18_r, 1, 14)", "region and birth date agree"),
        cll.CustomLevel("damerau_levenshtein(id18_l, id18_r) <= 2", "two digits wrong"),
        cll.CustomLevel("partial6_l = rounded6_r OR partial6_r = rounded6_l", "only Excel's six digits agree"),
        cll.ElseLevel(),
    ],
)

# Names: the same characters (common names count for less: term frequencies), the same
# after traditional-to-simplified conversion, the same pinyin (a homophone typed for the
# right character), the same surname and a close pinyin, or different.
NAME = cl.CustomComparison(
    output_column_name="name",
    comparison_description="姓名：一致、繁简一致、同音、同姓且拼音相近",
    comparison_levels=[
        cll.NullLevel("name_s"),
        cll.ExactMatchLevel("name_s").configure(tf_adjustment_column="name_s", tf_adjustment_weight=1.0),
        cll.ExactMatchLevel("name_py"),
        cll.And(cll.ExactMatchLevel("surname"), cll.JaroWinklerLevel("name_py", 0.88)),
        cll.ElseLevel(),
    ],
)

# Birth date and sex say something of their own only when one side has no full ID, or
# when an ID is damaged and both birth dates come from somewhere else than an ID (two
# roster rows' 出生日期 and 性别 fields). A record's are read from its own ID: counting them
# beside the ID would count the ID twice.
ONE_SIDE_WITHOUT_ID = (
    "id18_l IS NULL OR id18_r IS NULL OR "
    "((NOT id_valid_l OR NOT id_valid_r) AND NOT birth_from_id_l AND NOT birth_from_id_r)"
)
BIRTH_DATE = cl.CustomComparison(
    output_column_name="birth_date",
    comparison_description="出生日期（一方没有完整身份证号，或两条花名册记录的出生日期栏）",
    comparison_levels=[
        cll.CustomLevel(f"birth_date_l IS NULL OR birth_date_r IS NULL OR NOT ({ONE_SIDE_WITHOUT_ID})", "not informative").configure(
            is_null_level=True
        ),
        cll.ExactMatchLevel("birth_date"),
        cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False, threshold=31, metric="day"),
        cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False, threshold=366, metric="day"),
        cll.ElseLevel(),
    ],
)
SEX = cl.CustomComparison(
    output_column_name="sex",
    comparison_description="性别（一方没有完整身份证号，或两条花名册记录的性别栏）",
    comparison_levels=[
        cll.CustomLevel(f"sex_l IS NULL OR sex_r IS NULL OR NOT ({ONE_SIDE_WITHOUT_ID})", "not informative").configure(
            is_null_level=True
        ),
        cll.ExactMatchLevel("sex"),
        cll.ElseLevel(),
    ],
)

COMPARISONS = [ID_NUMBER, NAME, BIRTH_DATE, SEX]


def untrained_settings(link_type: str = "link_only") -> SettingsCreator:
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        comparisons=COMPARISONS,
        blocking_rules_to_generate_predictions=BLOCKING_RULES if link_type == "link_only" else DEDUPE_BLOCKING_RULES,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        linker_uid=MODEL_VERSION,
    )


def trained_settings(prior: float, link_type: str = "link_only", path: Path = MODEL_PATH) -> dict:
    """The committed model with this run's prior and the blocking rules for the job."""
    model = json.loads(path.read_text(encoding="utf-8"))
    model["probability_two_random_records_match"] = prior
    model["link_type"] = link_type
    rules = BLOCKING_RULES if link_type == "link_only" else DEDUPE_BLOCKING_RULES
    model["blocking_rules_to_generate_predictions"] = [r.get_blocking_rule("duckdb").as_dict() for r in rules]
    return model
