"""The `doudi whatif` page (`pipelines/whatif/page.py`): built from a summary by hand,
no warehouse."""

from __future__ import annotations

import copy

from pipelines.whatif.page import FULL, MASKED, NO_CHANGE, TITLE, render_page
from tests.helpers import HtmlTables

CHANGE = "expenditure_poverty.financial_asset_limit_months：36 → 48（自 2025-07-01）"
N01 = {"rule_code": "N01", "rule_title": "支出型贫困", "amount_label": "每月补差金额（元/月）"}
D02 = {"rule_code": "D02", "rule_title": "财产超标", "amount_label": None, "amount_now": None, "amount_after": None}


def _row(base: dict, quarter: str, county: str | None, now: int, after: int, gained: int, lost: int, **amounts) -> dict:
    return {**base, "quarter": quarter, "county_code": county, "warnings_now": now, "warnings_after": after, "gained": gained, "lost": lost, **amounts}


def _summary() -> list[dict]:
    # deliberately out of order: the page sorts
    return [
        _row(D02, "2025Q3", "140525", 5, 3, 0, 2),
        _row(N01, "2025Q3", "140525", 4, 7, 3, 0, amount_now=1000.0, amount_after=1750.0),
        _row(N01, "2025Q2", "140502", 2, 4, 2, 0, amount_now=300.0, amount_after=600.0),
        _row(N01, "2025Q3", "140502", 1, 2, 1, 0, amount_now=200.0, amount_after=400.0),
        _row(D02, "2025Q2", "140502", 0, 0, 0, 0),  # nothing at all: not in the detail table
    ]


def _meta(**changes) -> dict:
    meta = {
        "changes": [CHANGE],
        "quarters": ["2025Q2", "2025Q3"],
        "warehouse": "warehouse.duckdb",
        "generated_at": "2025-10-08 09:30",
        "parameters_dir": None,
        "households_file": "受影响家庭名单.xlsx",
        "masked": True,
    }
    return {**meta, **changes}


def _parse(html: str) -> HtmlTables:
    parser = HtmlTables()
    parser.feed(html)
    return parser


def test_title_changes_quarters_and_warehouse_untouched():
    html = render_page(_summary(), _meta())
    assert f"<h1>{TITLE}</h1>" in html and f"<title>{TITLE}</title>" in html
    assert "expenditure_poverty.financial_asset_limit_months：36 → 48（自 2025-07-01）" in html
    assert "2025Q2、2025Q3" in html
    assert "已发布的数据仓库未被修改：模拟在临时区进行" in html
    assert NO_CHANGE not in html


def test_rule_totals_sum_counties_and_quarters():
    totals = _parse(render_page(_summary(), _meta())).table("规则")
    assert totals[0] == ["规则", "名称", "现有预警数", "调整后", "新增", "减少", "等级或金额变化", "金额项目", "涉及金额（现有）", "涉及金额（调整后）"]
    by_code = {row[0]: row for row in totals[1:]}
    assert list(by_code) == ["D02", "N01"]
    # N01: 140502 in two quarters and 140525: 2+1+4 now, 4+2+7 after, 2+1+3 gained
    assert by_code["N01"] == ["N01", "支出型贫困", "7", "13", "6", "0", "0", "每月补差金额（元/月）", "1,500元", "2,750元"]
    assert by_code["D02"] == ["D02", "财产超标", "5", "3", "0", "2", "0", "", "", ""]


def test_detail_rows_sorted_named_and_filtered():
    detail = _parse(render_page(_summary(), _meta())).table("季度")
    assert [row[:5] for row in detail[1:]] == [
        ["2025Q2", "N01", "支出型贫困", "晋城市城区", "140502"],
        ["2025Q3", "D02", "财产超标", "泽州县", "140525"],
        ["2025Q3", "N01", "支出型贫困", "晋城市城区", "140502"],
        ["2025Q3", "N01", "支出型贫困", "泽州县", "140525"],
    ]
    assert detail[1][5:] == ["2", "4", "2", "0", "0", "每月补差金额（元/月）", "300元", "600元"]


def test_unknown_and_missing_county_fall_back():
    summary = [_row(N01, "2025Q3", "999999", 1, 1, 0, 0), _row(N01, "2025Q3", None, 1, 1, 0, 0)]
    detail = _parse(render_page(summary, _meta())).table("季度")
    assert [row[3:5] for row in detail[1:]] == [["999999", "999999"], ["区县不详", ""]]


def test_chart_of_gained_and_lost():
    page = _parse(render_page(_summary(), _meta()))
    assert "各规则新增与减少的预警（全部模拟季度合计）" in page.svg_text
    assert {"新增", "减少", "N01 支出型贫困", "D02 财产超标", "6", "2"} <= set(page.svg_text)


def test_no_change_sentence():
    summary = [_row(N01, "2025Q3", "140502", 4, 4, 0, 0, amount_now=100.0, amount_after=100.0), _row(D02, "2025Q3", "140525", 2, 2, 0, 0)]
    html = render_page(summary, _meta())
    assert NO_CHANGE in html
    assert "<svg" not in html
    assert NO_CHANGE in render_page([], _meta())


def test_change_string_and_meta_escaped():
    html = render_page(_summary(), _meta(changes=["a.b：<script>alert(1)</script> & 36 → 48"], households_file="名单<1>.xlsx"))
    assert "<script>" not in html
    assert "a.b：&lt;script&gt;alert(1)&lt;/script&gt; &amp; 36 → 48" in html
    assert "名单&lt;1&gt;.xlsx" in html


def test_households_note_masked_or_full():
    masked = render_page(_summary(), _meta())
    full = render_page(_summary(), _meta(masked=False))
    assert MASKED in masked and FULL not in masked
    assert FULL in full and MASKED not in full
    assert "受影响家庭名单.xlsx" in masked


def test_no_external_resources():
    html = render_page(_summary(), _meta(parameters_dir="参数"))
    for attr in ('src="http', "src='http", 'href="http', "href='http", "<script", "<link", "@import", "url("):
        assert attr not in html


def test_deterministic_and_independent_of_input_order():
    summary = _summary()
    before = copy.deepcopy(summary)
    html = render_page(summary, _meta())
    assert summary == before  # the input is not changed
    assert render_page(copy.deepcopy(summary), _meta()) == html
    assert render_page(list(reversed(summary)), _meta()) == html


def test_a_change_of_severity_or_amount_only_is_not_called_no_change():
    row = {"quarter": "2025Q3", "rule_code": "N05", "rule_title": "医疗救助未落实", "county_code": "140502", "warnings_now": 3,
           "warnings_after": 3, "gained": 0, "lost": 0, "changed": 2, "amount_now": 3000.0, "amount_after": 2400.0,
           "amount_label": "应予住院医疗救助"}
    page = render_page([row], {"changes": ["x：1 → 2"], "quarters": ["2025Q3"], "warehouse": "w.duckdb", "generated_at": "t",
                               "parameters_dir": None, "households_file": "households.csv", "masked": True})
    assert NO_CHANGE not in page and "有2条预警的等级或涉及金额有变化" in page
