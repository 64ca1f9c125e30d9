"""The committed model (pipelines/link/model/*.json) and the code agree, and the settings
Splink gets on DuckDB and on Spark are generated from the same objects (`model`,
`blocking`): the same levels, labels and rules, each in its dialect."""

from __future__ import annotations

import json

import pytest

from pipelines.link import blocking, model, spark
from pipelines.link.sql_models import linkage_sql, render

LEARNED = ("m_probability", "u_probability")


def _levels(comparisons: list[dict]) -> dict[str, list[dict]]:
    """comparison -> its levels, without what training learned."""
    return {c["output_column_name"]: [{k: v for k, v in lv.items() if k not in LEARNED} for lv in c["comparison_levels"]]
            for c in comparisons}


def _code_levels(dialect: str) -> dict[str, list[dict]]:
    return _levels([c.get_comparison(dialect).as_dict() for c in model.COMPARISONS])


def test_the_committed_json_is_the_code_s_comparisons_and_holds_no_blocking_rules():
    committed = json.loads(model.MODEL_PATH.read_text(encoding="utf-8"))
    # a copy of the rules in the file could only go stale: they are generated on every run
    assert "blocking_rules_to_generate_predictions" not in committed
    assert _levels(committed["comparisons"]) == _code_levels("duckdb")
    assert committed["linker_uid"] == model.MODEL_VERSION


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
@pytest.mark.parametrize("link_type", ["link_only", "dedupe_only"])
def test_the_settings_of_each_backend_come_from_the_code(dialect, link_type):
    settings = model.trained_settings(2e-5, link_type, dialect=dialect)
    assert settings["sql_dialect"] == dialect and settings["link_type"] == link_type
    assert settings["probability_two_random_records_match"] == 2e-5
    assert _levels(settings["comparisons"]) == _code_levels(dialect)
    rules = settings["blocking_rules_to_generate_predictions"]
    assert rules == blocking.splink_rules(link_type, dialect) and len(rules) == len(blocking.RULE_NAMES)
    assert all(("household_id" in r["blocking_rule"]) == (link_type == "dedupe_only") for r in rules)
    # m and u are the committed model's, level by level
    committed = json.loads(model.MODEL_PATH.read_text(encoding="utf-8"))["comparisons"]
    learned = [[(lv.get("m_probability"), lv.get("u_probability")) for lv in c["comparison_levels"]] for c in settings["comparisons"]]
    assert learned == [[(lv.get("m_probability"), lv.get("u_probability")) for lv in c["comparison_levels"]] for c in committed]


def test_spark_gets_the_same_settings_written_for_spark():
    assert spark.spark_settings(2e-5, "link_only") == model.trained_settings(2e-5, "link_only", dialect="spark")
    duck, on_spark = (model.trained_settings(2e-5, "link_only", dialect=d) for d in ("duckdb", "spark"))
    assert [lv["label_for_charts"] for c in duck["comparisons"] for lv in c["comparison_levels"]] == [
        lv["label_for_charts"] for c in on_spark["comparisons"] for lv in c["comparison_levels"]]


def test_a_model_file_that_no_longer_fits_the_code_is_refused(tmp_path):
    stale = json.loads(model.MODEL_PATH.read_text(encoding="utf-8"))
    stale["comparisons"][0]["comparison_levels"][1]["label_for_charts"] = "a level the code no longer has"
    path = tmp_path / "stale.json"
    path.write_text(json.dumps(stale), encoding="utf-8")
    with pytest.raises(ValueError, match="does not fit the code"):
        model.trained_settings(2e-5, "link_only", path)


def test_training_writes_the_committed_form():
    """devtools/train.py saves Splink's model through `learned_model`: no blocking rules, no
    training columns, as committed."""
    saved = dict(json.loads(model.MODEL_PATH.read_text(encoding="utf-8")))
    saved["blocking_rules_to_generate_predictions"] = blocking.splink_rules("link_only")
    saved["additional_columns_to_retain"] = ["person_label"]
    assert model.learned_model(saved) == json.loads(model.MODEL_PATH.read_text(encoding="utf-8"))


def test_the_linkage_models_are_filled_in_from_the_keys():
    identities = linkage_sql("intermediate/link_identities")
    candidates = linkage_sql("intermediate/link_candidate_records")
    for key in blocking.ID_KEYS:
        assert f"{key.sql} as {key.column}" in identities
        assert f"on r.{key.column} = m.{key.column}" in candidates
    assert "{{" not in identities + candidates


def test_a_placeholder_must_be_known_and_on_a_line_of_its_own():
    with pytest.raises(KeyError, match="unknown SQL fragment"):
        render("select\n    {{ no_such_fragment }}\nfrom t")
    with pytest.raises(ValueError, match="line of its own"):
        render("select {{ id_key_columns }} from t")
