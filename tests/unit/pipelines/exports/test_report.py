"""The quarter's report on a small hand-built warehouse (the real DDL, only the rows the
report reads; synthetic people): counties by name, the money the evidence holds, every
quarter in the trend, overdue per county, failed data checks of the published run in
Chinese, no English source or method names, nobody's name or ID."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import duckdb
import pytest

from pipelines.exports.report import build_report
from pipelines.quarters import Quarter
from tests.helpers import HtmlTables
from warehouse.connection import apply_schema

QUARTER = "2025Q3"
# Synthetic people: the report must never show them.
NAME, ID_NUMBER = "测试甲", "140502199001010011"
OPEN_D01 = [("140502", "1234.50"), ("140502", "800.25"), ("140302", "0.00"), ("999999", "310.00")]
# county, monthly gap per person, persons, monthly standard (the last one: full relief, gap above the standard)
OPEN_N01 = [("140502", "120.40", 3, "650.00"), ("140302", "55.55", 2, "620.00"), ("140302", "900.10", 2, "620.00")]
OPEN_N05 = [("140525", "700.00"), ("140525", "1400.35"), ("140502", "90.10")]


def _warning(con, quarter, n, rule, kind, county, evidence, status="new", due=None, severity="orange"):
    con.execute(
        """INSERT INTO marts.warnings (quarter, warning_id, rule_code, rule_title, rule_kind, severity, household_id, member_id,
                                       county_code, township, village, name, id_number, evidence, due_date, status)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '东关街道', '东关社区', ?, ?, ?, ?, ?)""",
        [quarter, f"W{quarter}{rule}{n:04d}", rule, {"D01": "保障对象死亡", "N01": "支出型贫困", "N05": "医疗救助未落实", "Q01": "身份证号异常"}[rule],
         kind, severity, f"H{n:05d}", f"M{n:05d}", county, NAME, ID_NUMBER, json.dumps(evidence), due, status],
    )


@pytest.fixture(scope="module")
def warehouse():
    con = duckdb.connect()
    apply_schema(con)
    runs = {"2025Q1": "run-q1", "2025Q2": "run-q2", "2025Q3": "run-q3b", "2025Q4": "run-q4"}
    for quarter, run in runs.items():
        con.execute("INSERT INTO audit.publications VALUES (?, ?, ?, 0, 0)", [run, quarter, dt.datetime(2026, 1, int(quarter[-1]))])
    # Q3 was run twice; the second run published it
    con.execute("INSERT INTO audit.publications VALUES ('run-q3a', '2025Q3', '2025-12-01', 0, 0)")
    n = 0
    for quarter, count in (("2025Q1", 2), ("2025Q4", 7)):  # 2025Q2 was published with no warning at all
        for _ in range(count):
            n += 1
            _warning(con, quarter, n, "Q01", "data_quality", "140502", {"issues": ["身份证号不是15位或18位"]})
    for county, amount in OPEN_D01:
        n += 1
        _warning(con, QUARTER, n, "D01", "ineligibility", county, {"estimated_overpayment_yuan": float(amount)},
                 status="persisting", due=dt.date(2025, 9, 1), severity="red")
    n += 1  # dismissed by the caseworker: not open, not counted
    _warning(con, QUARTER, n, "D01", "ineligibility", "140502", {"estimated_overpayment_yuan": 99999.0}, status="resolved_by_verification")
    for county, gap, persons, standard in OPEN_N01:
        n += 1
        _warning(con, QUARTER, n, "N01", "need", county,
                 {"monthly_gap_per_person": float(gap), "household_size": persons, "monthly_standard_yuan": float(standard)},
                 due=dt.date(2025, 10, 30))
    for county, amount in OPEN_N05:
        n += 1
        _warning(con, QUARTER, n, "N05", "need", county, {"expected_assistance_yuan": float(amount)}, due=dt.date(2025, 9, 30))
    for rule, per_county in (("D01", {"140502": 2, "140302": 1, "999999": 1}), ("N01", {"140502": 1, "140302": 2}), ("N05", {"140525": 2, "140502": 1})):
        for county, count in per_county.items():
            con.execute("INSERT INTO marts.quarterly_comparison VALUES (?, ?, ?, ?, 1, ?, 0, 0)", [QUARTER, county, rule, count, count])
    # detention's IDs failed their check in every published run; a check that failed only
    # in the unpublished run of Q3 is not the report's
    detention = {
        "rows": 57,
        "expectations": [
            {"expectation": "expect_column_values_to_not_be_null(id_number)", "why": "九成以上记录应有可用的身份证号", "success": False,
             "evaluated_rows": 57, "unexpected_count": 55, "unexpected_percent": 96.491, "observed_value": None},
            {"expectation": "expect_column_values_to_be_between(admission_date)", "why": "入所日期不晚于季度末", "success": True,
             "evaluated_rows": 57, "unexpected_count": 0, "unexpected_percent": 0.0, "observed_value": None},
        ],
        "flags": {"id_number": {"excel_rounded": 55, "ok": 2}},
    }
    for quarter in ("2025Q1", "2025Q2", "2025Q3"):
        con.execute(
            "INSERT INTO audit.check_results VALUES (?, ?, 'staging/detention', 'value_quality', false, false, ?, ?, now())",
            [runs[quarter], quarter, "九成以上记录应有可用的身份证号，55/57行不符", json.dumps(detention, ensure_ascii=False)],
        )
    con.execute(
        "INSERT INTO audit.check_results VALUES ('run-q3a', '2025Q3', 'staging/medical', 'value_quality', false, false, '结算日期不应出现', '{}', now())"
    )
    con.execute(
        "INSERT INTO audit.check_results VALUES ('run-q3b', '2025Q3', 'staging/medical', 'value_quality', true, false, '各项期望均满足', '{}', now())"
    )
    for run, source in (("run-q3b", "households"), ("run-q3b", "medical"), ("run-q3b", "detention"), ("run-q3a", "death")):
        con.execute(
            "INSERT INTO audit.ingest_log (run_id, quarter, source, file, rows_read, rows_loaded, rows_quarantined, outcome) "
            "VALUES (?, ?, ?, 'a.csv', 10, 9, 1, 'loaded')",
            [run, QUARTER, source],
        )
    for method, id_agreement, name_agreement in (
        ("exact_id", "same", "same"), ("exact_id", "same", "variant"), ("repaired_id", "upgraded_15", "same"),
        ("derived_id", "from_certificate", "same"), ("exact_id_and_name", "same_invalid", "same"),
        ("probabilistic", "one_digit", "same"), ("confirmed_identity", "same", "confirmed"), ("roster_duplicate", "same", "same"),
    ):
        con.execute(
            "INSERT INTO linked.matches VALUES (?, 'medical', ?, 'M00001', 1.0, ?, ?, ?)",
            [QUARTER, f"{method}-{name_agreement}", method, id_agreement, name_agreement],
        )
    yield con
    con.close()


@pytest.fixture(scope="module")
def report(warehouse) -> str:
    return build_report(warehouse, Quarter.parse(QUARTER))


@pytest.fixture(scope="module")
def parsed(report) -> HtmlTables:
    parser = HtmlTables()
    parser.feed(report)
    return parser


def yuan(amount: Decimal) -> str:
    return f"{amount:,.0f}元"


def test_counties_are_named_with_their_city_where_ambiguous_and_an_unknown_code_as_itself(parsed):
    county_rows = {row[1]: row[0] for row in parsed.table("区县", "合计")[1:]}
    assert county_rows == {"140302": "阳泉市城区", "140502": "晋城市城区", "140525": "泽州县", "999999": "999999"}
    for name in ("阳泉市城区", "晋城市城区", "泽州县"):
        assert name in parsed.svg_text  # the charts' labels too
    assert not any(re.fullmatch(r"\d{6}", t) and t != "999999" for t in parsed.svg_text)


def test_money_at_stake_is_what_the_open_warnings_evidence_holds(parsed, report):
    table = parsed.table("区县", "死亡后多发放保障金")
    header, rows = table[0], {row[1]: row for row in table[1:]}

    def cell(county: str, heading: str) -> str:
        return rows[county][header.index(heading)]

    d01 = {c: sum(Decimal(a) for cc, a in OPEN_D01 if cc == c) for c, _ in OPEN_D01}
    n01 = {c: sum(min(Decimal(g), Decimal(s)) * p for cc, g, p, s in OPEN_N01 if cc == c) for c, *_ in OPEN_N01}
    n05 = {c: sum(Decimal(a) for cc, a in OPEN_N05 if cc == c) for c, _ in OPEN_N05}
    for county, amount in d01.items():
        assert cell(county, "死亡后多发放保障金") == yuan(amount)
    for county, amount in n01.items():
        assert cell(county, "支出型贫困每月救助差额") == yuan(amount)
    for county, amount in n05.items():
        assert cell(county, "应予住院医疗救助") == yuan(amount)
    total = rows[""]
    assert total[0] == "合计"
    assert total[header.index("死亡后多发放保障金")] == yuan(sum(d01.values()))  # the dismissed 99,999 is not in it
    assert total[header.index("支出型贫困每月救助差额")] == yuan(sum(n01.values()))
    assert total[header.index("应予住院医疗救助")] == yuan(sum(n05.values()))
    assert total[header.index("D01 件数")] == str(len(OPEN_D01))
    assert "估算" in report and "不能把各季度相加" in report and "全额救助" in report  # the note says what each sum is


def test_the_trend_has_every_quarter_up_to_this_one(parsed):
    trend = parsed.table("规则", "2025Q1")
    assert trend[0] == ["规则", "2025Q1", "2025Q2", "2025Q3"]  # 2025Q4 is later than the report
    counts = {row[0]: row[1:] for row in trend[1:]}
    assert counts["Q01 身份证号异常"] == ["2", "0", "0"]
    assert counts["合计"] == ["2", "0", str(len(OPEN_D01) + len(OPEN_N01) + len(OPEN_N05))]
    for quarter in ("2025Q1", "2025Q2", "2025Q3"):
        assert quarter in parsed.svg_text
    assert "2025Q4" not in parsed.svg_text


def test_overdue_per_county_uses_due_date_on_or_before_the_quarter_end(parsed):
    table = parsed.table("区县", "合计")
    header = table[0]
    overdue = {row[1]: row[header.index("已到期")] for row in table[1:]}
    # D01 due 2025-09-01 and N05 due 2025-09-30 (the quarter's last day) are overdue; N01 due 2025-10-30 is not
    assert overdue == {"140502": "3", "140302": "1", "140525": "2", "999999": "1"}
    per_rule = {row[0]: row[-1] for row in parsed.table("规则", "已到期")[1:]}
    assert per_rule == {"D01": "4", "N01": "0", "N05": "3"}


def test_failed_checks_of_the_published_run_are_said_in_chinese(parsed):
    assert parsed.items == [
        "羁押服刑：九成以上记录应有可用的身份证号，本季度57行中有55行不符（96.5%），其中身份证号55个经Excel存为数字、后几位丢失（已连续3个季度未通过）。"
    ]


def test_no_english_source_or_method_names(parsed):
    cells = {c for t in parsed.tables for row in t for c in row} | set(parsed.items) | set(parsed.svg_text)
    english = {"households", "members", "medical", "disability", "education", "death", "detention", "standards", "verifications",
               "exact_id", "repaired_id", "derived_id", "exact_id_and_name", "probabilistic", "confirmed_identity", "roster_duplicate"}
    assert not [c for c in cells if set(re.findall(r"[a-z_]+", c)) & english]
    sources = [row[0] for row in parsed.table("数据源", "文件数")[1:]]
    assert sources == ["低收入人口家庭", "医保结算", "羁押服刑"]  # the published run's, in the sources' order
    methods = {row[1] for row in parsed.table("数据源", "比对情况")[1:]}
    assert "15位身份证号升为18位后一致，姓名一致" in methods
    assert "身份证号有一位不同，姓名一致（概率比对）" in methods
    assert "身份证号一致，姓名不同，经核实为本人" in methods
    assert not any("不详" in m for m in methods)


def test_the_report_names_no_one_and_loads_nothing(report):
    assert NAME not in report and ID_NUMBER not in report
    assert "<script" not in report and "http://" not in report.replace("http://www.w3.org/2000/svg", "") and "https://" not in report
