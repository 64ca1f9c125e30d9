"""The records a warning rests on, as the caseworker reads them in the township list."""

from __future__ import annotations

import json

import pytest

from pipelines.exports.evidence import ID_AGREEMENT_TEXT, NAME_AGREEMENT_TEXT, matched_how, record_line, render
from pipelines.link.corroboration import ID_AGREEMENTS, NAME_AGREEMENTS
from pipelines.rules.catalog import Rule, all_rules, rule

DEATH = {
    "source": "death", "source_title": "死亡信息", "record_key": "GA0003", "name_as_written": "胡欣伟",
    "id_number_as_written": "140502200103040046", "roster_name": "胡欣玲", "record_date": "2025-06-01",
    "detail": "公安户籍注销", "match_method": "exact_id", "match_probability": 1.0,
    "id_agreement": "same", "name_agreement": "variant",
}


def test_a_record_shows_its_source_key_date_name_id_and_how_it_was_matched():
    assert record_line(DEATH) == (
        "死亡信息：公安户籍注销 GA0003（2025年6月1日），姓名 胡欣伟（花名册：胡欣玲），"
        "身份证号 140502200103040046，身份证号一致，姓名近似"
    )


def test_how_a_record_was_matched():
    assert matched_how({"id_agreement": "same", "name_agreement": "same", "match_method": "exact_id"}) == "身份证号、姓名一致"
    assert matched_how({"id_agreement": "one_digit", "name_agreement": "same", "match_method": "probabilistic",
                        "match_probability": 0.9731}) == "身份证号有一位不同，姓名一致（概率比对，匹配概率0.97）"
    assert matched_how({"id_agreement": "upgraded_15", "name_agreement": "normalised"}).startswith("15位身份证号升为18位后一致")
    assert matched_how({"id_agreement": "same", "name_agreement": "confirmed"}) == "身份证号一致，姓名不同，经核实为本人"


def test_the_rule_sentence_ends_with_the_records():
    evidence = {"death_date": "2025-06-01", "sources": ["公安户籍注销"], "months_paid_after_death": 0,
                "living_beneficiaries": 0, "records": [DEATH]}
    text = render("D01", json.dumps(evidence, ensure_ascii=False))
    assert text.startswith("公安户籍注销记录：2025年6月1日死亡")
    assert text.endswith("。比对依据：" + record_line(DEATH))


def test_an_identity_conflict_lists_each_record_under_another_name():
    other = DEATH | {"record_key": "GA0001", "name_as_written": "欧阳娜娜", "roster_name": "杨文博",
                     "match_method": "identity_conflict", "match_probability": None, "name_agreement": "different"}
    text = render("Q02", {"sources": ["death"], "records": [other]})
    assert text == "部门记录使用了该成员的身份证号，但姓名不同：" + record_line(other)
    assert "姓名 欧阳娜娜（花名册：杨文博）" in text and text.endswith("身份证号一致，姓名不同")


def test_every_way_the_linker_compares_an_id_or_a_name_has_its_chinese_words():
    assert set(ID_AGREEMENT_TEXT) == set(ID_AGREEMENTS)
    assert set(NAME_AGREEMENT_TEXT) == set(NAME_AGREEMENTS)


def test_every_rule_has_its_sentence_and_the_records_follow_it():
    for r in all_rules():
        assert callable(r.evidence), r.code
        alone = render(r.code, {})  # a renderer copes with an evidence that lacks its fields
        assert isinstance(alone, str), r.code
        with_records = render(r.code, {"records": [DEATH]})
        if r.evidence_shows_records:
            assert "。比对依据：" not in with_records and record_line(DEATH) in with_records, r.code
        else:
            assert with_records.endswith("。比对依据：" + record_line(DEATH)), r.code


def test_the_sentence_is_the_rules_own():
    assert render("D04", {"expired": True, "approval_date": "2024-09-01", "validity_end": "2025-08-31"}) == (
        rule("D04").evidence({"expired": True, "approval_date": "2024-09-01", "validity_end": "2025-08-31"})
    )
    with pytest.raises(KeyError):
        render("X99", {})
    with pytest.raises(TypeError):  # a rule cannot be declared without its sentence
        Rule(code="X99", title="t", kind="need", scope="member", policy_ref="p", action="a", parameters=(), inputs=(), sql="")
