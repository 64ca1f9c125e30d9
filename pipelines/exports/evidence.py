"""A warning's evidence (JSON in the warehouse) as one plain Chinese sentence for the
caseworker list. One renderer per rule; every rule in the catalog has one (a test holds
the two lists together). A member warning that rests on extract records (evidence
`records`, pipelines/rules/records.py) ends with what it rests on and how each record
was matched: 比对依据：死亡登记：公安 GA…（2025年3月1日），姓名 胡欣伟（花名册：胡欣玲），
身份证号 …，身份证号一致，姓名近似."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable


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
    text = "身份证号、姓名一致" if (record.get("id_agreement"), record.get("name_agreement")) == ("same", "same") else f"{id_text}，{name_text}"
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


def _d01(e: dict) -> str:
    sources = "、".join(e.get("sources") or []) or "死亡信息"
    text = f"{sources}记录：{chinese_date(e.get('death_date'))}死亡"
    months = int(e.get("months_paid_after_death") or 0)
    if months > 0:
        text += f"；死亡后已发放{months}个月，约多发放{yuan(e.get('estimated_overpayment_yuan'))}"
    else:
        text += "；尚无死亡后多发放的月份"
    if e.get("living_beneficiaries") == 0:
        text += "；该户已无在世保障对象"
    return text


def _d02(e: dict) -> str:
    parts = []
    for d in e.get("detentions") or []:
        until = f"，预计{chinese_date(d.get('release_date'))}出所" if d.get("release_date") else "，尚未出所"
        place = f"（{d.get('facility')}）" if d.get("facility") else ""
        parts.append(f"{d.get('type')}{place}：{chinese_date(d.get('admission_date'))}入所{until}")
    return "羁押服刑记录：" + "；".join(parts)


def _d03(e: dict) -> str:
    others = e.get("other_enrolments") or []
    where = "；".join(
        f"户编号{o.get('household_id')}（区县{o.get('county_code')}，{o.get('category')}）" for o in others
    )
    return f"同一人同时在{len(others) + 1}个家庭中作为保障对象：另见{where}"


def _d04(e: dict) -> str:
    ends = chinese_date(e.get("validity_end"))
    how = "（认定日期加一年）" if e.get("validity_end_computed") else ""
    if e.get("expired"):
        return f"支出型低保{chinese_date(e.get('approval_date'))}认定，有效期至{ends}{how}，已到期"
    return f"支出型低保{chinese_date(e.get('approval_date'))}认定，有效期至{ends}{how}，将于下季度到期"


def _n01(e: dict) -> str:
    parts = []
    if float(e.get("medical_yuan") or 0):
        parts.append(f"医疗个人负担{yuan(e.get('medical_yuan'))}")
    if float(e.get("education_yuan") or 0):
        parts.append(f"教育费用{yuan(e.get('education_yuan'))}")
    detail = "（" + "、".join(parts) + "）" if parts else ""
    months = e.get("medical_history_months")
    history = f"（系统中有近{months}个月的医保结算数据）" if months is not None and int(months) < 12 else ""
    text = (
        f"近12个月刚性支出{yuan(e.get('rigid_expenditure_yuan'))}{detail}{history}，"
        f"上年家庭总收入{yuan(e.get('annual_income_yuan'))}，{e.get('household_size')}人；"
        f"扣除后月人均{yuan(e.get('monthly_income_per_person_after_expenditure'))}，"
        f"低于低保标准{yuan(e.get('monthly_standard_yuan'))}"
    )
    if e.get("relief") == "全额救助":
        return text + "；刚性支出超过家庭总收入，可全额救助"
    return text + f"，每人每月差额{yuan(e.get('monthly_gap_per_person'))}；家庭金融资产{yuan(e.get('financial_assets_yuan'))}，未超过上限{yuan(e.get('asset_limit_yuan'))}"


def _certificates(e: dict) -> str:
    return "；".join(
        f"{c.get('category')}{c.get('grade')}（证号{c.get('certificate_no')}，{c.get('status')}）" for c in e.get("certificates") or []
    )


def _n02(e: dict) -> str:
    return f"低保边缘家庭成员持有残疾人证：{_certificates(e)}，可单独申请低保"


def _n03(e: dict) -> str:
    return f"单人户低保对象持有残疾人证：{_certificates(e)}，可能符合特困人员认定条件"


def _n04(e: dict) -> str:
    parts = [f"{s.get('school') or '学校不详'}（{s.get('stage')}，学籍号{s.get('student_no')}）" for s in e.get("students") or []]
    return "在读学生未获资助：" + "；".join(parts)


def _n05(e: dict) -> str:
    stays = "；".join(
        f"{chinese_date(s.get('settlement_date'))}{s.get('institution') or ''}住院，个人负担{yuan(s.get('out_of_pocket_yuan'))}"
        for s in e.get("settlements") or []
    )
    rate = float(e.get("assistance_rate") or 0)
    return f"{stays}；医疗救助支付为0，按{rate:.0%}应救助约{yuan(e.get('expected_assistance_yuan'))}"


def _n06(e: dict) -> str:
    return (
        f"本季度医疗个人负担{yuan(e.get('out_of_pocket_yuan'))}，超过上年家庭总收入{yuan(e.get('annual_income_yuan'))}的"
        f"{float(e.get('burden_share_limit') or 0):.0%}；人均收入{yuan(e.get('income_per_person_yuan'))}，"
        f"低于当地上年人均可支配收入{yuan(e.get('disposable_income_yuan'))}；"
        f"建议临时救助约{yuan(e.get('suggested_amount_yuan'))}（城市低保标准{yuan(e.get('urban_standard_yuan'))}×{e.get('household_size')}人×{e.get('months')}个月）"
    )


def _q01(e: dict) -> str:
    written = e.get("id_number_as_written")
    shown = f"（花名册中为“{written}”）" if written else ""
    return "；".join(e.get("issues") or []) + shown


def _q02(e: dict) -> str:
    return "部门记录使用了该成员的身份证号，但姓名不同：" + records_text(e.get("records") or [])


RENDERERS: dict[str, Callable[[dict], str]] = {
    "D01": _d01,
    "D02": _d02,
    "D03": _d03,
    "D04": _d04,
    "N01": _n01,
    "N02": _n02,
    "N03": _n03,
    "N04": _n04,
    "N05": _n05,
    "N06": _n06,
    "Q01": _q01,
    "Q02": _q02,
}


def render(rule_code: str, evidence) -> str:
    data = json.loads(evidence) if isinstance(evidence, str) else (evidence or {})
    text = RENDERERS[rule_code](data)
    if data.get("records") and rule_code != "Q02":  # Q02's sentence is its records
        text += "。比对依据：" + records_text(data["records"])
    return text
