"""The Chinese words a rule's evidence sentence is built from (each rule's `evidence_text`),
shared by every rule and by the exports that show links (`pipelines/exports`).

Here, below the rules, because a rule owns its sentence and must not import the exports.
A member warning that rests on extract records (evidence `records`,
pipelines/rules/records.py) ends with what it rests on and how each record was matched:
比对依据：死亡登记：公安 GA…（2025年3月1日），姓名 胡欣伟（花名册：胡欣玲），身份证号 …，
身份证号一致，姓名近似.
"""

from __future__ import annotations

import datetime as dt


def chinese_date(value) -> str:
    if value is None:
        return "日期不详"
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    return f"{day.year}年{day.month}月{day.day}日"


def yuan(value) -> str:
    amount = float(value or 0)
    return f"{amount:,.0f}元" if abs(amount - round(amount)) < 0.005 else f"{amount:,.2f}元"


# How the record's ID compares with the member's (linked.matches.id_agreement).
ID_AGREEMENT_TEXT = {
    "same": "身份证号一致",
    "upgraded_15": "15位身份证号升为18位后一致",
    "from_certificate": "残疾人证号所含身份证号一致",
    "from_student_no": "学籍号所含身份证号一致",
    "same_invalid": "身份证号一致但校验位不符",
    "one_digit": "身份证号有一位不同",
    "swapped": "身份证号有两位颠倒",
    "two_digits": "身份证号有两位不同",
    "excel_15": "身份证号前15位一致（Excel截断）",
    "member_missing": "花名册无可用身份证号，姓名、出生日期一致",
    "partial": "身份证号部分一致",
}
# How the record's name compares with the member's (linked.matches.name_agreement).
NAME_AGREEMENT_TEXT = {
    "same": "姓名一致",
    "normalised": "姓名写法不同（繁简体、空格或间隔号）",
    "variant": "姓名近似",
    "confirmed": "姓名不同，经核实为本人",
    "different": "姓名不同",
    "missing": "记录无姓名",
}
# How a record was linked (linked.matches.match_method), for tables of links (report, run summary).
MATCH_METHOD_TEXT = {
    "exact_id": "身份证号一致，姓名一致或近似",
    "exact_id_and_name": "身份证号部分一致或校验位不符（可能被 Excel 截断），姓名一致",
    "repaired_id": "15位旧身份证号升位后一致",
    "derived_id": "残疾人证号或学籍号所含身份证号一致",
    "confirmed_identity": "姓名不同，经乡镇核实为本人",
    "probabilistic": "概率比对",
    "roster_duplicate": "经花名册重复登记的成员比对",
}
# The methods a list's evidence names after the agreement words (the others say no more).
METHOD_TEXT = {method: MATCH_METHOD_TEXT[method] for method in ("probabilistic", "roster_duplicate")}


def matched_how(record: dict) -> str:
    """身份证号、姓名一致 / 身份证号一致，姓名近似 / 身份证号有一位不同，姓名一致（概率比对，匹配概率0.97）."""
    id_text = ID_AGREEMENT_TEXT.get(record.get("id_agreement"), "身份证号比对情况不详")
    name_text = NAME_AGREEMENT_TEXT.get(record.get("name_agreement"), "姓名比对情况不详")
    agreement = (record.get("id_agreement"), record.get("name_agreement"))
    text = "身份证号、姓名一致" if agreement == ("same", "same") else f"{id_text}，{name_text}"
    method = METHOD_TEXT.get(record.get("match_method"))
    if method:
        probability = record.get("match_probability")
        text += f"（{method}，匹配概率{float(probability):.2f}）" if probability is not None else f"（{method}）"
    return text


def record_line(record: dict) -> str:
    """One record as the department wrote it, and how it was matched to the member."""
    detail = f"{record['detail']} " if record.get("detail") else ""
    title = record.get("source_title") or record.get("source")
    text = f"{title}：{detail}{record.get('record_key')}"
    if record.get("record_date"):
        text += f"（{chinese_date(record['record_date'])}）"
    written, roster = record.get("name_as_written"), record.get("roster_name")
    text += f"，姓名 {written or '（空）'}"
    if roster and written != roster:
        text += f"（花名册：{roster}）"
    if record.get("id_number_as_written"):
        text += f"，身份证号 {record['id_number_as_written']}"
    return f"{text}，{matched_how(record)}"


def records_text(records: list[dict]) -> str:
    return "；".join(record_line(r) for r in records)


def certificates_text(e: dict) -> str:
    """The disability certificates of an evidence (N02, N03): 肢体二级（证号…，有效）；…"""
    return "；".join(
        f"{c.get('category')}{c.get('grade')}（证号{c.get('certificate_no')}，{c.get('status')}）" for c in e.get("certificates") or []
    )
