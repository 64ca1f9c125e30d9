"""OUT/<Q>/report.html: the quarter's comparison report for county analysts.

One self-contained file (inline CSS and SVG, no scripts, no network) that says how many
warnings each rule raised in each county this quarter against last, how many are new,
persisting and resolved, which are overdue, and what the ingest and linkage did. It
contains counts only: no names, no ID numbers. It also shows what caseworkers found when
they checked earlier warnings (the share found 属实: the precision they observed).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

import duckdb

from pipelines.exports.charts import grouped_bars
from pipelines.quarters import Quarter

STYLE = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 24px auto; max-width: 1040px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 2px solid #4472C4; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; } th { background: #D9E1F2; }
td.t, th.t { text-align: left; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 10px 16px; min-width: 120px; }
.card b { display: block; font-size: 22px; } .note { color: #666; font-size: 12px; }
"""


def _table(headers: list[str], rows: list[list], text_columns: int = 1) -> str:
    head = "".join(f'<th class="{"t" if i < text_columns else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            shown = f"{value:,}" if isinstance(value, int) else escape("" if value is None else str(value))
            cells.append(f'<td class="{"t" if i < text_columns else ""}">{shown}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _county_pivot(comparison: list, rule_codes: list[str]) -> str:
    """County rows, rule columns: this quarter's count and the change from last quarter."""
    counties = sorted({r[1] for r in comparison})
    cells = {(r[1], r[2]): (r[3], r[4]) for r in comparison}
    rows = []
    for county in counties:
        row = [county]
        for rule in rule_codes:
            now, before = cells.get((county, rule), (0, 0))
            row.append(f"{now}（{now - before:+d}）" if now or before else "")
        now_total = sum(cells.get((county, r), (0, 0))[0] for r in rule_codes)
        before_total = sum(cells.get((county, r), (0, 0))[1] for r in rule_codes)
        row.append(f"{now_total}（{now_total - before_total:+d}）")
        rows.append(row)
    return _table(["区县代码", *rule_codes, "合计"], rows)


def build_report(con: duckdb.DuckDBPyConnection, quarter: str) -> str:
    q = Quarter.parse(quarter)
    previous = str(q.previous)
    comparison = con.execute(
        "SELECT * FROM marts.quarterly_comparison WHERE quarter = ? ORDER BY county_code, rule_code", [quarter]
    ).fetchall()
    titles = dict(con.execute("SELECT DISTINCT rule_code, rule_title FROM marts.warnings WHERE quarter IN (?, ?)", [quarter, previous]).fetchall())
    by_rule = con.execute(
        """SELECT rule_code, sum(count_this_quarter), sum(count_last_quarter), sum(count_new), sum(count_persisting), sum(count_resolved)
           FROM marts.quarterly_comparison WHERE quarter = ? GROUP BY rule_code ORDER BY rule_code""",
        [quarter],
    ).fetchall()
    by_county = con.execute(
        """SELECT county_code, sum(count_this_quarter), sum(count_last_quarter) FROM marts.quarterly_comparison
           WHERE quarter = ? GROUP BY county_code ORDER BY county_code""",
        [quarter],
    ).fetchall()
    totals = con.execute(
        """SELECT count(*) FILTER (WHERE status IN ('new','persisting')),
                  count(*) FILTER (WHERE status = 'new'), count(*) FILTER (WHERE status = 'persisting'),
                  count(DISTINCT household_id) FILTER (WHERE status IN ('new','persisting')),
                  count(*) FILTER (WHERE status IN ('new','persisting') AND due_date <= ?),
                  count(*) FILTER (WHERE severity = 'red' AND status IN ('new','persisting'))
           FROM marts.warnings WHERE quarter = ?""",
        [q.end, quarter],
    ).fetchone()
    resolved = sum(r[5] for r in by_rule)
    last_total = sum(r[2] for r in by_rule)
    severity = con.execute(
        """SELECT rule_code, count(*) FILTER (WHERE severity='red'), count(*) FILTER (WHERE severity='orange'),
                  count(*) FILTER (WHERE severity='yellow'), count(*) FILTER (WHERE due_date <= ?)
           FROM marts.warnings WHERE quarter = ? AND status IN ('new','persisting') GROUP BY rule_code ORDER BY rule_code""",
        [q.end, quarter],
    ).fetchall()
    ingest = con.execute(
        """SELECT source, count(*) FILTER (WHERE outcome <> 'ignored'), sum(rows_read), sum(rows_loaded), sum(rows_quarantined)
           FROM audit.ingest_log WHERE quarter = ?
             AND run_id = (SELECT run_id FROM audit.publications WHERE quarter = ? ORDER BY published_at DESC LIMIT 1)
           GROUP BY source ORDER BY source""",
        [quarter, quarter],
    ).fetchall()
    links = con.execute(
        "SELECT source, match_method, count(*) FROM linked.matches WHERE quarter = ? GROUP BY ALL ORDER BY source, match_method", [quarter]
    ).fetchall()
    verified = con.execute(
        """WITH latest AS (
               SELECT * FROM marts.verification_results WHERE quarter <= ? AND matched
               QUALIFY row_number() OVER (PARTITION BY warning_id ORDER BY quarter DESC) = 1)
           SELECT rule_code, count(*) FILTER (WHERE result = '属实'), count(*) FILTER (WHERE result = '已处理'),
                  count(*) FILTER (WHERE result = '不属实'), count(*)
           FROM latest GROUP BY ALL ORDER BY 1""",
        [quarter],
    ).fetchall()
    unmatched = con.execute(
        "SELECT count(*) FROM marts.verification_results WHERE quarter = ? AND NOT matched", [quarter]
    ).fetchone()[0]

    rule_codes = [r[0] for r in by_rule]
    rule_chart = grouped_bars(
        "各类预警：本季度与上季度",
        rule_codes,
        {f"本季度 {quarter}": [r[1] for r in by_rule], f"上季度 {previous}": [r[2] for r in by_rule]},
    )
    status_chart = grouped_bars(
        "本季度预警构成（新增 / 持续）与上季度已解除",
        rule_codes,
        {"新增": [r[3] for r in by_rule], "持续": [r[4] for r in by_rule], "已解除": [r[5] for r in by_rule]},
    )
    county_chart = grouped_bars(
        "各区县预警数",
        [r[0] for r in by_county],
        {f"本季度 {quarter}": [r[1] for r in by_county], f"上季度 {previous}": [r[2] for r in by_county]},
    )
    cards = [
        ("本季度预警", totals[0]), ("上季度预警", last_total), ("新增", totals[1]), ("持续", totals[2]),
        ("已解除", resolved), ("涉及家庭", totals[3]), ("红色预警", totals[5]), ("已到期未办结", totals[4]),
    ]
    html = [
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>{escape(quarter)} 低收入人口动态监测预警季度报告</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(quarter)} 低收入人口动态监测预警季度报告</h1>",
        f"<p class='note'>统计期：{q.start:%Y年%m月%d日}至{q.end:%Y年%m月%d日}；生成时间：{dt.datetime.now():%Y-%m-%d %H:%M}。本报告只含统计数，不含姓名和身份证号。</p>",
        "<div class='cards'>" + "".join(f"<div class='card'>{escape(k)}<b>{v:,}</b></div>" for k, v in cards) + "</div>",
        "<h2>一、各类预警与上季度对比</h2>", rule_chart,
        _table(["规则", "名称", "本季度", "上季度", "新增", "持续", "已解除"],
               [[r[0], titles.get(r[0], ""), r[1], r[2], r[3], r[4], r[5]] for r in by_rule], text_columns=2),
        status_chart,
        "<h2>二、预警等级与办理期限</h2>",
        _table(["规则", "红色", "橙色", "黄色", "已到期"], [list(r) for r in severity]),
        "<h2>三、各区县情况</h2>", county_chart,
        _county_pivot(comparison, rule_codes),
        "<p class='note'>每格为本季度预警数，括号内为与上季度相比的增减。</p>",
        "<h2>四、核查反馈</h2>",
        (
            _table(
                ["规则", "名称", "已反馈", "属实", "已处理", "不属实", "核实准确率"],
                [[r[0], titles.get(r[0], ""), r[4], r[1], r[2], r[3], f"{(r[1] + r[2]) / r[4]:.1%}" if r[4] else "—"] for r in verified],
                text_columns=2,
            )
            + "<p class='note'>核实准确率 =（属实 + 已处理）/ 已反馈，即乡镇核查认为预警正确的比例；截至本季度收到的全部核查回执。</p>"
            if verified
            else "<p class='note'>截至本季度尚未收到核查回执（退回的清单放入收件箱 verifications/ 文件夹）。</p>"
        ),
        (
            f"<p class='note'>本季度有 {unmatched} 条核查结果的预警编号在对应季度的清单中找不到（编号被改动或季度填错），"
            "未能采用，明细见 marts.verification_results（matched = false）。</p>"
            if unmatched
            else ""
        ),
        "<h2>五、数据接收与比对</h2>",
        _table(["数据源", "文件数", "读取行数", "入库行数", "隔离行数"], [list(r) for r in ingest]),
        _table(["数据源", "比对方式", "比对成功记录数"], [list(r) for r in links], text_columns=2),
        "<p class='note'>比对方式：exact_id 身份证号一致；repaired_id 15位旧号升位后一致；derived_id 由残疾人证号或学籍号中的身份证号一致；exact_id_and_name 身份证号一致且姓名一致（号码存在被 Excel 截断的可能或校验位不符）。</p>",
        "</body></html>",
    ]
    return "\n".join(html)


def export_report(con: duckdb.DuckDBPyConnection, quarter: str, out_dir: Path) -> Path:
    path = out_dir / quarter / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(build_report(con, quarter), encoding="utf-8")
    tmp.replace(path)
    return path
