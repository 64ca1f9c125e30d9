"""A warning's evidence (JSON in the warehouse) as one plain Chinese sentence for the
caseworker list. One renderer per rule; every rule in the catalog must have one (a test
holds the two lists together)."""

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
    return f"{float(value or 0):,.0f}元"


def _d01(e: dict) -> str:
    sources = "、".join(e.get("sources") or []) or "死亡信息"
    text = f"{sources}记录：{chinese_date(e.get('death_date'))}死亡"
    months = int(e.get("months_paid_after_death") or 0)
    if months > 0:
        text += f"；死亡后已发放{months}个月，约多发放{yuan(e.get('estimated_overpayment_yuan'))}"
    else:
        text += "；尚无死亡后多发放月份"
    if e.get("living_beneficiaries") == 0:
        text += "；该户已无在世保障对象"
    return text


def _n02(e: dict) -> str:
    certs = e.get("certificates") or []
    parts = [f"{c.get('category')}{c.get('grade')}（证号{c.get('certificate_no')}，{c.get('status')}）" for c in certs]
    return f"低保边缘家庭成员持有残疾人证：{'；'.join(parts)}，可单独申请低保"


RENDERERS: dict[str, Callable[[dict], str]] = {
    "D01": _d01,
    "N02": _n02,
}


def render(rule_code: str, evidence) -> str:
    data = json.loads(evidence) if isinstance(evidence, str) else (evidence or {})
    return RENDERERS[rule_code](data)
