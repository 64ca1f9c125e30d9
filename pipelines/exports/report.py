"""OUT/<Q>/report.html: the quarter's comparison report, for the bureau chief and the
county analysts.

One self-contained file (inline CSS and SVG, no scripts, no network) that says how many
warnings each rule raised in each county this quarter against last, how many are new,
persisting and resolved, which are overdue (in each rule and each county), the money at
stake as the warnings' evidence estimates it, the trend over every quarter the warehouse
holds up to this one, what caseworkers found when they checked earlier warnings (the share
found 属实: the precision they observed), and what the ingest, the data checks and the
linkage did. Counties are named (`sources.divisions`), sources by their specs' Chinese
titles, link methods in the township lists' words (`evidence.matched_how`). It contains
counts and sums only: no names, no ID numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from decimal import Decimal
from html import escape
from pathlib import Path

import duckdb

from pipelines.exports.charts import horizontal_bars, line_chart
from pipelines.exports.evidence import matched_how
from pipelines.exports.lists import SHEETS
from pipelines.quarters import Quarter
from pipelines.rules.catalog import all_rules
from sources.cleaning import BAD_BIRTH_DATE, BAD_CHECKSUM, EXCEL_ROUNDED, INVALID_FORMAT, MISSING
from sources.divisions import county_name, province_name
from sources.registry import all_sources, source_title

STYLE = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 24px auto; max-width: 1040px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 2px solid #4472C4; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; white-space: nowrap; } th { background: #D9E1F2; }
.scroll { overflow-x: auto; } .scroll table { font-size: 12px; } .scroll td, .scroll th { padding: 3px 5px; }
td.t, th.t { text-align: left; } tr.sum td { font-weight: bold; background: #F2F2F2; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 10px 16px; min-width: 120px; }
.card b { display: block; font-size: 22px; } .card.money b { color: #C55A11; }
.note { color: #666; font-size: 12px; } ul.checks { font-size: 14px; } ul.checks li { margin: 4px 0; }
svg { display: block; margin: 8px 0; max-width: 100%; height: auto; }
"""

OPEN = "status IN ('new', 'persisting')"
# Overdue: the due date is on or before the quarter's last day (the lists' 已逾期,
# pipelines/exports/lists.py `overdue`). Every overdue count in the report uses this.
OVERDUE = "due_date <= $q_end"
# The run that published each quarter (the latest): its ingest log and its data checks are
# the report's.
PUBLISHED_RUNS = "(SELECT quarter, arg_max(run_id, published_at) AS run_id FROM audit.publications GROUP BY quarter)"
KIND_TITLES = dict(SHEETS)

# The money at stake, summed from the open warnings' evidence (the keys each rule's SQL
# writes: pipelines/rules/ineligibility/d01_*.py, pipelines/rules/need/n01_*.py, n05_*.py).
# (rule, SQL amount of one warning, column heading, what the sum means)
# The money each rule puts at stake (code, SQL over evidence, heading, note): declared with
# the rule (`Rule.amount`), shared with the policy replay.
MONEY = [(r.code, r.amount.sql, r.amount.label, r.amount.note) for r in all_rules() if r.amount is not None]
# Why an ID number could not be used (the cleaning flags of sources/cleaning.py), for a
# failed check on a source's ID numbers.
ID_FLAG_TEXT = {
    EXCEL_ROUNDED: "经Excel存为数字、后几位丢失",
    INVALID_FORMAT: "位数或格式不对",
    BAD_CHECKSUM: "校验位不符",
    BAD_BIRTH_DATE: "所含出生日期不合理",
    MISSING: "空缺",
}


def _query(con: duckdb.DuckDBPyConnection, sql: str, **params) -> list[tuple]:
    """Run `sql` with the named parameters it uses ($quarter, $q_end …) out of `params`."""
    used = set(re.findall(r"\$(\w+)", sql))
    return con.execute(sql, {k: v for k, v in params.items() if k in used}).fetchall()


def yuan(amount) -> str:
    return f"{Decimal(amount or 0):,.0f}元"


def _cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return escape("" if value is None else str(value))
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _table(headers: list[str], rows: list[list], text_columns: int = 1, total: list | None = None) -> str:
    def row_html(row: list, css: str = "") -> str:
        cells = "".join(f'<td class="{"t" if i < text_columns else ""}">{_cell(v)}</td>' for i, v in enumerate(row))
        return f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>"

    head = "".join(f'<th class="{"t" if i < text_columns else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = [row_html(r) for r in rows] + ([row_html(total, "sum")] if total else [])
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _change(now: int, before: int) -> str:
    return f"{now}（{now - before:+d}）" if now or before else ""


def _streak(quarters: list[str], failed_in: set[str], quarter: str) -> int:
    """How many quarters in a row, ending with `quarter`, the check failed."""
    run = 0
    for q in reversed([q for q in quarters if q <= quarter]):
        if q not in failed_in:
            break
        run += 1
    return run


def _check_items(description: str, metadata: dict) -> list[tuple[str, str]]:
    """(key, sentence) for each way a check failed: each failed expectation with its row
    counts, or the check's own description (the accounting of a delivery)."""
    items = []
    for e in metadata.get("expectations") or []:
        if e.get("success"):
            continue
        what = e.get("why") or e.get("expectation") or ""
        text = what
        if e.get("unexpected_count") is not None:
            share = f"（{e['unexpected_percent']:.1f}%）" if e.get("unexpected_percent") is not None else ""
            text += f"，本季度{e.get('evaluated_rows', 0):,}行中有{e['unexpected_count']:,}行不符{share}"
        elif e.get("observed_value") is not None:
            text += f"，本季度实际为{e['observed_value']}"
        column = re.search(r"\(([^),]+)\)", e.get("expectation") or "")
        if column and column.group(1) == "id_number":
            flags = (metadata.get("flags") or {}).get("id_number") or {}
            why = [f"{n:,}个{ID_FLAG_TEXT[f]}" for f, n in sorted(flags.items(), key=lambda kv: -kv[1]) if f in ID_FLAG_TEXT and n]
            if why:
                text += "，其中身份证号" + "、".join(why)
        items.append((what, text))
    if not items:
        items = [(part, part) for part in description.split("；") if part]
    return items


def _failed_checks(con: duckdb.DuckDBPyConnection, q: Quarter, quarters: list[str]) -> list[str]:
    """One Chinese sentence per way a data check of the published run failed, naming the
    source, and how many quarters in a row it has failed (`quarters`: the labels of the trend)."""
    quarter = str(q)  # the label, as the warehouse's rows name quarters
    failed = _query(
        con,
        f"""SELECT c.quarter, c.asset, c.check_name, c.description, c.metadata::VARCHAR
           FROM audit.check_results AS c JOIN {PUBLISHED_RUNS} AS p USING (quarter, run_id)
           WHERE c.quarter <= $quarter AND NOT c.passed
           ORDER BY c.asset, c.check_name, c.quarter""",
        quarter=quarter,
    )
    seen: dict[tuple, set[str]] = defaultdict(set)
    now = []
    for q, asset, check, description, metadata in failed:
        for key, text in _check_items(description or "", json.loads(metadata or "{}")):
            seen[(asset, check, key)].add(q)
            if q == quarter:
                now.append((asset, check, key, text))
    lines = []
    for asset, check, key, text in now:
        source = asset.split("/")[-1]
        line = f"{source_title(source)}：{text}"
        run = _streak(quarters, seen[(asset, check, key)], quarter)
        if run > 1:
            line += f"（已连续{run}个季度未通过）"
        lines.append(line + "。")
    return lines


def build_report(con: duckdb.DuckDBPyConnection, q: Quarter) -> str:
    quarter = str(q)  # the label, as the warehouse's rows and the report's text name quarters
    previous = str(q.previous)
    p = {"quarter": quarter, "previous": previous, "q_end": q.end}
    source_rank = {spec.source: i for i, spec in enumerate(all_sources())}

    quarters = [
        r[0]
        for r in _query(
            con,
            """SELECT quarter FROM audit.publications WHERE quarter <= $quarter
               UNION SELECT quarter FROM marts.warnings WHERE quarter <= $quarter
               UNION SELECT $quarter ORDER BY 1""",
            **p,
        )
    ]
    rules = {
        r[0]: (r[1], r[2])
        for r in _query(
            con,
            "SELECT rule_code, arg_max(rule_title, quarter), arg_max(rule_kind, quarter) FROM marts.warnings WHERE quarter <= $quarter GROUP BY 1",
            **p,
        )
    }

    def rule_label(code: str) -> str:
        return f"{code} {rules.get(code, ('', ''))[0]}".strip()

    comparison = _query(
        con,
        """SELECT county_code, rule_code, count_this_quarter, count_last_quarter, count_new, count_persisting, count_resolved
           FROM marts.quarterly_comparison WHERE quarter = $quarter ORDER BY county_code, rule_code""",
        **p,
    )
    rule_codes = sorted({r[1] for r in comparison})
    by_rule = {
        code: [sum(r[i] for r in comparison if r[1] == code) for i in range(2, 7)] for code in rule_codes
    }  # this, last, new, persisting, resolved
    open_by = _query(
        con,
        f"""SELECT county_code, rule_code, count(*) FILTER (WHERE severity = 'red'), count(*) FILTER (WHERE severity = 'orange'),
                   count(*) FILTER (WHERE severity = 'yellow'), count(*) FILTER (WHERE {OVERDUE})
            FROM marts.warnings WHERE quarter = $quarter AND {OPEN} GROUP BY ALL""",
        **p,
    )
    totals = _query(
        con,
        f"""SELECT count(*) FILTER (WHERE {OPEN}), count(*) FILTER (WHERE status = 'new'), count(*) FILTER (WHERE status = 'persisting'),
                   count(DISTINCT household_id) FILTER (WHERE {OPEN}), count(*) FILTER (WHERE {OPEN} AND {OVERDUE}),
                   count(*) FILTER (WHERE severity = 'red' AND {OPEN})
            FROM marts.warnings WHERE quarter = $quarter""",
        **p,
    )[0]
    counties = sorted({r[0] for r in comparison} | {r[0] for r in open_by}, key=lambda c: (c is None, c or ""))
    names = {c: county_name(c) for c in counties}

    # ---- money --------------------------------------------------------------------------
    money_sql = " UNION ALL ".join(
        f"SELECT quarter, county_code, rule_code, count(*) AS n, sum({amount}) AS amount FROM marts.warnings "
        f"WHERE quarter <= $quarter AND {OPEN} AND rule_code = '{code}' GROUP BY ALL"
        for code, amount, _, _ in MONEY
    )
    money = {(r[0], r[1], r[2]): (r[3], r[4] or Decimal(0)) for r in _query(con, money_sql, **p)}

    def money_of(qtr: str, code: str, counties: set | None = None) -> tuple[int, Decimal]:
        """Warnings and amount of one rule in one quarter, in `counties` (all when None)."""
        found = [v for (mq, mc, mr), v in money.items() if mq == qtr and mr == code and (counties is None or mc in counties)]
        return sum(n for n, _ in found), sum((a for _, a in found), Decimal(0))

    money_counties = sorted({c for (mq, c, _) in money if mq == quarter}, key=lambda c: (c is None, c or ""))
    money_rows = []
    for county in money_counties:
        row = [names.get(county) or county_name(county), county or ""]
        for code, *_ in MONEY:
            n, amount = money_of(quarter, code, {county})
            row += [n, yuan(amount) if n else ""]
        money_rows.append(row)
    money_total = ["合计", ""]
    for code, *_ in MONEY:
        n, amount = money_of(quarter, code)
        money_total += [n, yuan(amount)]
    money_chart = horizontal_bars(
        "各区县涉及金额（估算，元）",
        [r[0] for r in money_rows],
        {f"{code} {heading}": [float(money_of(quarter, code, {c})[1]) for c in money_counties] for code, _, heading, _ in MONEY},
        fmt=lambda v: f"{v:,.0f}",
    )

    # ---- trend --------------------------------------------------------------------------
    trend = _query(
        con,
        f"SELECT quarter, rule_code, count(*) FROM marts.warnings WHERE quarter <= $quarter AND {OPEN} GROUP BY ALL",
        **p,
    )
    trend_counts = {(r[0], r[1]): r[2] for r in trend}
    trend_rules = sorted({r[1] for r in trend})
    kinds = [k for k, _ in SHEETS if any(rules.get(code, ("", ""))[1] == k for code in trend_rules)]
    kind_series = {
        KIND_TITLES[k]: [sum(n for (tq, code), n in trend_counts.items() if tq == qq and rules.get(code, ("", ""))[1] == k) for qq in quarters]
        for k in kinds
    }
    kind_series["合计"] = [sum(n for (tq, _), n in trend_counts.items() if tq == qq) for qq in quarters]
    trend_chart = line_chart("历季度预警数（按预警类别）", quarters, kind_series)
    trend_rows = [[rule_label(code), *[trend_counts.get((qq, code), 0) for qq in quarters]] for code in trend_rules]
    trend_total = ["合计", *kind_series["合计"]]
    money_trend_rows = [
        [f"{code} {heading}", *[yuan(money_of(qq, code)[1]) for qq in quarters]] for code, _, heading, _ in MONEY
    ]

    # ---- counties -----------------------------------------------------------------------
    cells = {(r[0], r[1]): (r[2], r[3]) for r in comparison}
    county_open = defaultdict(lambda: [0, 0, 0, 0])
    for county, _, red, orange, yellow, overdue in open_by:
        for i, v in enumerate((red, orange, yellow, overdue)):
            county_open[county][i] += v
    county_rows = []
    for county in counties:
        row = [names[county], county or ""]
        row += [_change(*cells.get((county, code), (0, 0))) for code in rule_codes]
        now_total = sum(cells.get((county, c), (0, 0))[0] for c in rule_codes)
        before_total = sum(cells.get((county, c), (0, 0))[1] for c in rule_codes)
        row += [f"{now_total}（{now_total - before_total:+d}）", county_open[county][0], county_open[county][3]]
        county_rows.append(row)
    county_chart = horizontal_bars(
        "各区县预警数",
        [names[c] for c in counties],
        {
            f"本季度 {quarter}": [sum(cells.get((c, r), (0, 0))[0] for r in rule_codes) for c in counties],
            f"上季度 {previous}": [sum(cells.get((c, r), (0, 0))[1] for r in rule_codes) for c in counties],
            "已到期未办结": [county_open[c][3] for c in counties],
        },
    )

    # ---- rules --------------------------------------------------------------------------
    rule_open = defaultdict(lambda: [0, 0, 0, 0])
    for _, code, red, orange, yellow, overdue in open_by:
        for i, v in enumerate((red, orange, yellow, overdue)):
            rule_open[code][i] += v
    rule_chart = horizontal_bars(
        "各类预警：本季度与上季度",
        [rule_label(c) for c in rule_codes],
        {f"本季度 {quarter}": [by_rule[c][0] for c in rule_codes], f"上季度 {previous}": [by_rule[c][1] for c in rule_codes]},
    )
    status_chart = horizontal_bars(
        "本季度预警构成（新增 / 持续）与上季度已解除",
        [rule_label(c) for c in rule_codes],
        {"新增": [by_rule[c][2] for c in rule_codes], "持续": [by_rule[c][3] for c in rule_codes], "已解除": [by_rule[c][4] for c in rule_codes]},
    )

    # ---- verification, ingest, checks, links -------------------------------------------
    verified = _query(
        con,
        """WITH latest AS (
               SELECT * FROM marts.verification_results WHERE quarter <= $quarter AND matched
               QUALIFY row_number() OVER (PARTITION BY warning_id ORDER BY quarter DESC) = 1)
           SELECT rule_code, count(*) FILTER (WHERE result = '属实'), count(*) FILTER (WHERE result = '已处理'),
                  count(*) FILTER (WHERE result = '不属实'), count(*)
           FROM latest GROUP BY ALL ORDER BY 1""",
        **p,
    )
    unmatched = _query(con, "SELECT count(*) FROM marts.verification_results WHERE quarter = $quarter AND NOT matched", **p)[0][0]
    ingest = sorted(
        _query(
            con,
            f"""SELECT source, count(*) FILTER (WHERE outcome <> 'ignored'), sum(rows_read), sum(rows_loaded), sum(rows_quarantined)
                FROM audit.ingest_log JOIN {PUBLISHED_RUNS} USING (quarter, run_id) WHERE quarter = $quarter GROUP BY source""",
            **p,
        ),
        key=lambda r: (source_rank.get(r[0], len(source_rank)), r[0]),
    )
    ingest_rows = [[source_title(r[0]), *[int(v or 0) for v in r[1:]]] for r in ingest]
    checks = _failed_checks(con, q, quarters)
    link_counts: dict[tuple[str, str], int] = defaultdict(int)
    for source, method, id_agreement, name_agreement, n in _query(
        con,
        "SELECT source, match_method, id_agreement, name_agreement, count(*) FROM linked.matches WHERE quarter = $quarter GROUP BY ALL",
        **p,
    ):
        how = matched_how({"match_method": method, "id_agreement": id_agreement, "name_agreement": name_agreement})
        link_counts[(source, how)] += n
    link_rows = [
        [source_title(s), how, n]
        for (s, how), n in sorted(link_counts.items(), key=lambda kv: (source_rank.get(kv[0][0], len(source_rank)), kv[0][0], -kv[1], kv[0][1]))
    ]

    provinces = sorted({name for c in counties if (name := province_name(c))})
    last_total = sum(v[1] for v in by_rule.values())
    resolved = sum(v[4] for v in by_rule.values())
    cards = [
        ("本季度预警", f"{totals[0]:,}"), ("上季度预警", f"{last_total:,}"), ("新增", f"{totals[1]:,}"), ("持续", f"{totals[2]:,}"),
        ("已解除", f"{resolved:,}"), ("涉及家庭", f"{totals[3]:,}"), ("红色预警", f"{totals[5]:,}"), ("已到期未办结", f"{totals[4]:,}"),
    ]
    money_cards = [(f"{heading}（估算）", yuan(money_of(quarter, code)[1])) for code, _, heading, _ in MONEY]
    html = [
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>{escape(quarter)} 低收入人口动态监测预警季度报告</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(quarter)} 低收入人口动态监测预警季度报告</h1>",
        f"<p class='note'>{escape('、'.join(provinces) + '；' if provinces else '')}统计期：{q.start:%Y年%m月%d日}至{q.end:%Y年%m月%d日}；"
        f"生成时间：{dt.datetime.now():%Y-%m-%d %H:%M}。本报告只含统计数和金额合计，不含姓名和身份证号。</p>",
        "<div class='cards'>" + "".join(f"<div class='card'>{escape(k)}<b>{escape(v)}</b></div>" for k, v in cards) + "</div>",
        "<div class='cards' style='margin-top:12px'>"
        + "".join(f"<div class='card money'>{escape(k)}<b>{escape(v)}</b></div>" for k, v in money_cards)
        + "</div>",
        "<h2>一、各类预警与上季度对比</h2>", rule_chart,
        _table(["规则", "名称", "本季度", "上季度", "新增", "持续", "已解除"],
               [[c, rules.get(c, ("", ""))[0], *by_rule[c]] for c in rule_codes], text_columns=2),
        status_chart,
        "<h2>二、历季度趋势</h2>", trend_chart,
        _table(["规则", *quarters], trend_rows, total=trend_total),
        "<h3>涉及金额（估算）历季度</h3>",
        _table(["项目", *quarters], money_trend_rows),
        f"<p class='note'>仓库中截至本季度的全部季度（{escape(quarters[0])}至{escape(quarters[-1])}，共{len(quarters)}个季度）；"
        "每格为该季度末未办结（新增和持续）的预警数。</p>",
        "<h2>三、涉及金额（估算）</h2>", money_chart,
        _table(["区县", "区县代码", *[h for code, _, heading, _ in MONEY for h in (f"{code} 件数", heading)]], money_rows,
               text_columns=2, total=money_total),
        "<p class='note'>金额均为按预警依据中的数据估算的合计，只作工作量和资金规模的参考，实际金额以入户核查和审批为准：</p>",
        "<ul class='note'>" + "".join(f"<li>{escape(text)}</li>" for *_, text in MONEY) + "</ul>",
        "<h2>四、预警等级与办理期限</h2>",
        _table(["规则", "名称", "红色", "橙色", "黄色", "已到期"],
               [[c, rules.get(c, ("", ""))[0], *rule_open[c]] for c in sorted(rule_open)], text_columns=2),
        "<p class='note'>已到期：办理期限在本季度末或之前、仍未办结的预警（与核查清单中的“已逾期”相同）。</p>",
        "<h2>五、各区县情况</h2>", county_chart,
        "<div class='scroll'>" + _table(["区县", "区县代码", *rule_codes, "合计", "红色", "已到期"], county_rows, text_columns=2) + "</div>",
        "<p class='note'>规则各列为本季度预警数，括号内为与上季度相比的增减；区县代码即核查清单文件夹名（lists/区县代码/）。</p>",
        "<h2>六、核查反馈</h2>",
        (
            _table(
                ["规则", "名称", "已反馈", "属实", "已处理", "不属实", "核实准确率"],
                [[r[0], rules.get(r[0], ("", ""))[0], r[4], r[1], r[2], r[3], f"{(r[1] + r[2]) / r[4]:.1%}" if r[4] else "—"] for r in verified],
                text_columns=2,
            )
            + "<p class='note'>核实准确率 =（属实 + 已处理）/ 已反馈，即乡镇核查认为预警正确的比例；截至本季度收到的全部核查回执。</p>"
            if verified
            else "<p class='note'>截至本季度尚未收到核查回执（退回的清单放入收件箱“核查结果回执”文件夹 verifications/）。</p>"
        ),
        (
            f"<p class='note'>本季度有 {unmatched} 条核查结果的预警编号在对应季度的清单中找不到（编号被改动或季度填错），未能采用。</p>"
            if unmatched
            else ""
        ),
        "<h2>七、数据接收、检查与比对</h2>",
        _table(["数据源", "文件数", "读取行数", "入库行数", "隔离行数"], ingest_rows),
        "<h3>未通过的数据检查</h3>",
        (
            "<ul class='checks'>" + "".join(f"<li>{escape(line)}</li>" for line in checks) + "</ul>"
            "<p class='note'>这些是警示性检查，不阻止本季度发布（阻断性检查未通过的季度不会发布），"
            "但说明该数据源有部分记录不完整或不合理，依赖这些记录的预警可能遗漏，"
            "请提供数据的部门核实后在下季度重新报送。</p>"
            if checks
            else "<p class='note'>本季度各数据源的数据检查全部通过。</p>"
        ),
        _table(["数据源", "比对情况", "比对成功记录数"], link_rows, text_columns=2),
        "<p class='note'>比对情况与核查清单“预警依据”中的写法相同。身份证号有误的记录经概率比对、且姓名相符才比对成功；"
        "死亡、羁押服刑预警所依据的记录若身份证号或姓名不完全一致，预警最高为橙色，须先核实身份。</p>",
        *_policy_section(con, p, rules),
        "</body></html>",
    ]
    return "\n".join(html)


def _policy_section(con: duckdb.DuckDBPyConnection, p: dict, rules: dict) -> list[str]:
    """八、政策依据: the documents each rule's warnings cite, county by county: a county under a
    document of another region reads `参照 …` (pipelines/policy/params.py, Documents.cite)."""
    rows = _query(
        con,
        """SELECT rule_code, policy_ref, list(DISTINCT county_code ORDER BY county_code) FILTER (WHERE county_code IS NOT NULL)
           FROM marts.warnings WHERE quarter = $quarter GROUP BY ALL ORDER BY rule_code, policy_ref""",
        **p,
    )
    if not rows:
        return []
    table = _table(
        ["规则", "名称", "政策依据（按区县适用）", "区县"],
        [[code, rules.get(code, ("", ""))[0], ref or "", "、".join(f"{county_name(c)}（{c}）" for c in (counties or []))]
         for code, ref, counties in rows],
        text_columns=4,
    )
    return [
        "<h2>八、政策依据</h2>", table,
        "<p class='note'>各预警依据的文件和条款按家庭所在区县适用：文件不是本地区的，写作“参照 文号”（本地区没有自己的文件，"
        "参照该文件执行）；本地区有自己的参数值时，依据写其文件。所用参数值及其文件见核查清单和数据仓库 rules.findings 的 parameters 列。</p>",
    ]


def export_report(con: duckdb.DuckDBPyConnection, quarter: Quarter, out_dir: Path) -> Path:
    path = out_dir / str(quarter) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(build_report(con, quarter), encoding="utf-8")
    tmp.replace(path)
    return path
