"""The offline HTML page of `doudi whatif`: the warnings of published quarters replayed under
changed policy parameters, against the warnings as published.

One self-contained file in the quarterly report's style (its CSS, tables and inline SVG
charts: `pipelines/exports/report.py`, `pipelines/exports/charts.py`), no scripts, no network.
It shows what was changed and which quarters were replayed, the totals of each rule over all
of them (warnings now, after the change, gained, lost, and the money at stake where the rule
has a money figure), a chart of gained against lost per rule, and the same figures per
quarter × rule × county. Counts and sums only: the summary it is built from has no names and
no ID numbers. The same input gives the same page, byte for byte (nothing here reads a clock).
"""

from __future__ import annotations

from html import escape

from pipelines.exports.charts import horizontal_bars
from pipelines.exports.report import STYLE, _table, yuan
from sources.divisions import county_name

TITLE = "政策模拟：参数调整对预警的影响"
NO_CHANGE = "本次参数调整不改变任何预警"
COUNTS = ("warnings_now", "warnings_after", "gained", "lost", "changed")
COUNT_HEADERS = ["现有预警数", "调整后", "新增", "减少", "等级或金额变化"]
MONEY_HEADERS = ["金额项目", "涉及金额（现有）", "涉及金额（调整后）"]
MASKED = "名单已脱敏（身份证号部分隐藏、姓名仅保留姓氏）"
FULL = "名单含完整身份证号和姓名，仅限授权人员查看"


def _county_key(code: str | None) -> tuple[bool, str]:
    return code is None, code or ""


def _sort_key(row: dict) -> tuple:
    return str(row["quarter"]), str(row["rule_code"]), _county_key(row.get("county_code"))


def _sum_amount(values) -> float | None:
    """The sum of the amounts that are there; None when none is."""
    present = [float(v) for v in values if v is not None]
    return sum(present) if present else None


def _money(value: float | None) -> str:
    return "" if value is None else yuan(value)


def _count_cells(row: dict) -> list[int]:
    return [int(row.get(key) or 0) for key in COUNTS]


def _money_cells(row: dict) -> list[str]:
    if row.get("amount_label") is None:
        return ["", "", ""]
    return [row["amount_label"], _money(row.get("amount_now")), _money(row.get("amount_after"))]


def _rule_totals(rows: list[dict]) -> list[dict]:
    """One row per rule (sorted by code): its counts summed over every quarter and county, its
    amounts summed where present, its title and amount label those of its latest row."""
    by_rule: dict[str, list[dict]] = {}
    for row in rows:  # already sorted, so a rule's last row is its latest quarter's
        by_rule.setdefault(str(row["rule_code"]), []).append(row)
    totals = []
    for code in sorted(by_rule):
        group = by_rule[code]
        labels = [r["amount_label"] for r in group if r.get("amount_label")]
        total = {"rule_code": code, "rule_title": group[-1].get("rule_title") or "", "amount_label": labels[-1] if labels else None}
        total.update({key: sum(int(r.get(key) or 0) for r in group) for key in COUNTS})
        total["amount_now"] = _sum_amount(r.get("amount_now") for r in group)
        total["amount_after"] = _sum_amount(r.get("amount_after") for r in group)
        totals.append(total)
    return totals


def _shown(row: dict) -> bool:
    """A row of the detail table: something changed, or there are warnings."""
    return any(_count_cells(row)) or row.get("amount_now") != row.get("amount_after")


def _intro(meta: dict) -> str:
    changes = "".join(f"<li>{escape(str(c))}</li>" for c in meta.get("changes") or [])
    quarters = "、".join(str(q) for q in meta.get("quarters") or []) or "（无）"
    source = f"数据仓库：{meta.get('warehouse') or ''}"
    if meta.get("parameters_dir"):
        source += f"；参数目录：{meta['parameters_dir']}"
    return (
        "<div class='card'><b style='font-size:15px'>调整的参数</b>"
        f"<ul class='checks'>{changes or '<li>（无）</li>'}</ul>"
        f"<p>模拟的季度：{escape(quarters)}</p>"
        "<p>已发布的数据仓库未被修改：模拟在临时区进行。</p>"
        f"<p class='note'>{escape(source)}；生成时间：{escape(str(meta.get('generated_at') or ''))}。"
        "本页只含统计数和金额合计，不含姓名和身份证号。</p></div>"
    )


def _cards(totals: list[dict]) -> str:
    cards = [(header, sum(t[key] for t in totals)) for header, key in zip(COUNT_HEADERS, COUNTS)]
    return "<div class='cards' style='margin-top:12px'>" + "".join(f"<div class='card'>{escape(k)}<b>{v:,}</b></div>" for k, v in cards) + "</div>"


def _verdict(rows: list[dict]) -> str:
    if any(int(r.get("gained") or 0) or int(r.get("lost") or 0) for r in rows):
        return ""
    changed = sum(int(r.get("changed") or 0) for r in rows)
    if changed:  # the same warnings, some with another severity or amount
        text = f"本次参数调整不新增、也不减少预警，但有{changed:,}条预警的等级或涉及金额有变化（见户名单）"
    else:
        text = NO_CHANGE + "：各季度、各规则、各区县的预警均与已发布的相同"
    return f"<p><b>{escape(text)}。</b></p>"


def _totals_section(totals: list[dict]) -> str:
    rows = [[t["rule_code"], t["rule_title"], *_count_cells(t), *_money_cells(t)] for t in totals]
    return (
        "<h2>一、各规则合计（全部模拟季度）</h2>"
        + _table(["规则", "名称", *COUNT_HEADERS, *MONEY_HEADERS], rows, text_columns=2)
        + "<p class='note'>新增：调整后才会出现的预警；减少：调整后不再出现的预警；等级或金额变化：调整前后都有、但预警等级或涉及金额不同的预警。"
        "金额为按预警依据中的数据估算的合计，只作资金规模的参考；本表的金额是各模拟季度相加，"
        "每月金额或截至季度末的累计金额相加后只表示规模，某一季度的金额见下方分季度表。</p>"
    )


def _chart(totals: list[dict]) -> str:
    changed = [t for t in totals if t["gained"] or t["lost"]]
    head = "<h2>二、各规则新增与减少的预警</h2>"
    if not changed:
        return head + "<p class='note'>没有规则新增或减少预警。</p>"
    return head + horizontal_bars(
        "各规则新增与减少的预警（全部模拟季度合计）",
        [f"{t['rule_code']} {t['rule_title']}".strip() for t in changed],
        {"新增": [float(t["gained"]) for t in changed], "减少": [float(t["lost"]) for t in changed]},
    )


def _detail_section(rows: list[dict]) -> str:
    shown = [r for r in rows if _shown(r)]
    head = "<h2>三、分季度、规则、区县</h2>"
    if not shown:
        return head + "<p class='note'>所模拟的季度中没有预警，调整后也没有。</p>"
    cells = [
        [
            str(r["quarter"]),
            str(r["rule_code"]),
            r.get("rule_title") or "",
            county_name(r.get("county_code")),
            r.get("county_code") or "",
            *_count_cells(r),
            *_money_cells(r),
        ]
        for r in shown
    ]
    headers = ["季度", "规则", "名称", "区县", "区县代码", *COUNT_HEADERS, *MONEY_HEADERS]
    return head + "<div class='scroll'>" + _table(headers, cells, text_columns=5) + "</div>" + "<p class='note'>只列出有预警或有变化的组合。</p>"


def _households_note(meta: dict) -> str:
    which = MASKED if meta.get("masked") else FULL
    return f"<h2>四、受影响家庭名单</h2><p>受影响家庭的名单另见文件 {escape(str(meta.get('households_file') or ''))}：{escape(which)}。</p>"


def render_page(summary: list[dict], meta: dict) -> str:
    """The replay's offline HTML page (no external resources, no scripts needed)."""
    rows = sorted(summary, key=_sort_key)
    totals = _rule_totals(rows)
    html = [
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>{escape(TITLE)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(TITLE)}</h1>",
        _intro(meta),
        _cards(totals),
        _verdict(rows),
        _totals_section(totals),
        _chart(totals),
        _detail_section(rows),
        _households_note(meta),
        "</body></html>",
    ]
    return "\n".join(part for part in html if part)
