"""A warning's evidence (JSON in the warehouse) as one plain Chinese sentence for the
caseworker list. Each rule owns its sentence (`Rule.evidence`, beside its SQL in
`pipelines/rules/<kind>/<code>_*.py`); the words they share, and those of the tables of
links, live in `pipelines/rules/texts.py` and are re-exported here for the exports. A
member warning that rests on extract records (evidence `records`,
pipelines/rules/records.py) ends with what it rests on and how each record was matched:
比对依据：死亡登记：公安 GA…（2025年3月1日），姓名 胡欣伟（花名册：胡欣玲），身份证号 …，
身份证号一致，姓名近似."""

from __future__ import annotations

import json

from pipelines.rules.catalog import rule
from pipelines.rules.texts import (  # noqa: F401  (re-exported: the exports' names for them)
    ID_AGREEMENT_TEXT,
    MATCH_METHOD_TEXT,
    METHOD_TEXT,
    NAME_AGREEMENT_TEXT,
    chinese_date,
    matched_how,
    record_line,
    records_text,
    yuan,
)


def render(rule_code: str, evidence) -> str:
    data = json.loads(evidence) if isinstance(evidence, str) else (evidence or {})
    found = rule(rule_code)
    text = found.evidence(data)
    if data.get("records") and not found.evidence_shows_records:
        text += "。比对依据：" + records_text(data["records"])
    return text
