"""The probabilistic person-linkage model: the comparisons, each a named module-level object
with the reason it exists, and the settings Splink gets (with the blocking rules of
`blocking`).

Splink compares two identities built the same way (`warehouse/intermediate/
link_identities.sql` + `names.py`): an extract record's on one side, a roster member's on
the other (or two members, to find one person enrolled twice). The trained model — these
comparisons with their m and u probabilities — is committed as JSON in `model/` with a
version; a run reuses it and only re-estimates the prior (the share of pairs that match),
which depends on the quarter's data.

Only pairs where at least one side's ID is damaged, partial or missing reach Splink: two
valid IDs either agree (the deterministic pass linked them) or belong to two people.

The committed JSON holds what training learned (each level's m and u) and, for a reader,
each level's label and SQL; it holds no blocking rules, which are no part of what is
learned. The settings of a run, on DuckDB or Spark, are generated from the objects here
(`trained_settings`): the JSON gives m and u, the code the SQL; a JSON whose levels do not
fit the code (their number, their labels) is refused, and
tests/unit/pipelines/link/test_model_settings.py holds the JSON's SQL to the code's.
"""

from __future__ import annotations

import json
from pathlib import Path

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator

from pipelines.link import blocking

MODEL_VERSION = "person_link_v1"
MODEL_DIR = Path(__file__).with_name("model")
MODEL_PATH = MODEL_DIR / f"{MODEL_VERSION}.json"
META_PATH = MODEL_DIR / f"{MODEL_VERSION}.meta.json"

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
    dedupe = link_type != "link_only"
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        comparisons=COMPARISONS,
        blocking_rules_to_generate_predictions=[rule.splink(dedupe) for rule in blocking.BLOCKING_RULES],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        linker_uid=MODEL_VERSION,
    )


def trained_settings(prior: float, link_type: str = "link_only", path: Path = MODEL_PATH, dialect: str = "duckdb") -> dict:
    """The committed model for Splink on `dialect` (duckdb or spark): its m and u per level,
    with this run's prior, the job's link type and blocking rules, and each level's SQL
    generated from `COMPARISONS` for the dialect. The JSON's levels are matched to the
    code's one by one, by label: a model file that no longer fits the code is refused,
    never silently mixed."""
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["probability_two_random_records_match"] = prior
    settings["link_type"] = link_type
    settings["sql_dialect"] = dialect
    _fit_levels(settings["comparisons"], dialect)
    settings["blocking_rules_to_generate_predictions"] = blocking.splink_rules(link_type, dialect)
    return settings


def _fit_levels(stored_comparisons: list[dict], dialect: str) -> None:
    by_name = {c.get_comparison(dialect).output_column_name: c.get_comparison(dialect) for c in COMPARISONS}
    for comparison in stored_comparisons:
        levels = by_name[comparison["output_column_name"]].as_dict()["comparison_levels"]
        if len(levels) != len(comparison["comparison_levels"]):
            raise ValueError(f"model {MODEL_VERSION}: comparison {comparison['output_column_name']} does not fit the code")
        for stored, current in zip(comparison["comparison_levels"], levels):
            if stored.get("label_for_charts") != current.get("label_for_charts"):
                raise ValueError(f"model {MODEL_VERSION}: level {stored.get('label_for_charts')!r} does not fit the code")
            stored["sql_condition"] = current["sql_condition"]
            if stored.get("sql_dialect"):
                stored["sql_dialect"] = dialect


def learned_model(saved: dict) -> dict:
    """A model as Splink saves it, in the committed form: without the blocking rules (they
    are generated from `blocking` on every run, so a copy in the file could only go stale)
    and without the training's extra columns."""
    model = {k: v for k, v in saved.items() if k != "blocking_rules_to_generate_predictions"}
    model["additional_columns_to_retain"] = []
    return model
