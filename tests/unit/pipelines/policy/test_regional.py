"""Parameters by region: the most specific region in force applies, a document of another
region is cited as 参照, a deployment's folder adds its own values without editing ours."""

import datetime as dt
import json
from pathlib import Path

import pytest

from pipelines.policy.params import PARAMETER_DIR, ParameterError, Parameters
from pipelines.policy.regional import RegionalParameters
from pipelines.rules.catalog import rule

DAY = dt.date(2025, 9, 30)

BASE = """
limit:
  description: 资产上限月数
  unit: month
  values:
    2024-01-01: {value: 36, reference: 晋民发〔2022〕38号 一、1}
  regions:
    "1405":
      2024-01-01: {value: 30, reference: 晋市民〔2023〕2号 二（一）1（2）}
    "140581":
      2025-07-01: {value: 24, reference: 晋市民〔2023〕2号 二（一）1（2）}
window:
  description: 回看月数
  unit: month
  by_region: false
  values:
    2024-01-01: {value: 12, reference: 晋市民〔2023〕2号 二（一）1（1）}
"""


def yuncheng_folder(folder: Path, parameter: str, value: int) -> Path:
    """A deployment's own folder: a Yuncheng (1408) document and its value of `parameter`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "documents.yaml").write_text('运民发〔2025〕9号:\n  region: "1408"\n  title: 运城的新文件\n', encoding="utf-8")
    (folder / "yuncheng.yaml").write_text(
        f'{parameter}:\n  regions:\n    "1408":\n      2025-01-01: {{value: {value}, reference: 运民发〔2025〕9号 二}}\n', encoding="utf-8"
    )
    return folder


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "documents.yaml").write_text((PARAMETER_DIR / "documents.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "x.yaml").write_text(BASE, encoding="utf-8")
    return tmp_path


def test_a_city_value_overrides_the_province_default_for_that_citys_counties_only(folder):
    params = Parameters.load(folder)
    assert params.at(DAY, "140502")["limit"] == 30  # a county of 晋城 (1405)
    assert params.at(DAY, "140802")["limit"] == 36  # a county of 运城: the default
    assert params.at(DAY)["limit"] == 36  # a household whose county is not known


def test_the_most_specific_region_in_force_applies(folder):
    params = Parameters.load(folder)
    assert params.at(DAY, "140581")["limit"] == 24  # the county's own value
    assert params.at(dt.date(2025, 6, 30), "140581")["limit"] == 30  # not yet in force: the city's


def test_a_document_of_another_region_is_cited_as_referred(folder):
    params = Parameters.load(folder)
    assert params.at(DAY, "140802").reference("limit") == "晋民发〔2022〕38号 一、1"  # the province's own
    assert params.at(DAY, "410802").reference("limit") == "参照 晋民发〔2022〕38号 一、1"  # Henan
    assert params.at(DAY, "140502").reference("window") == "晋市民〔2023〕2号 二（一）1（1）"
    assert params.at(DAY, "140302").reference("window") == "参照 晋市民〔2023〕2号 二（一）1（1）"


def test_citing_twice_does_not_double_the_mark():
    documents = Parameters.load().documents
    once = documents.cite("焦民〔2024〕8号 二（三）", "140502")
    assert documents.cite(once, "140502") == once == "参照 焦民〔2024〕8号 二（三）"


def test_a_deployment_folder_adds_regions_without_editing_the_built_in_files(folder, tmp_path_factory):
    own = yuncheng_folder(tmp_path_factory.mktemp("own"), "limit", 48)
    params = Parameters.load(folder, own)
    assert params.at(DAY, "140802")["limit"] == 48
    assert params.at(DAY, "140802").reference("limit") == "运民发〔2025〕9号 二"
    assert params.at(DAY, "140502")["limit"] == 30
    assert params.at(DAY, "140502").reference("limit").startswith("晋市民")


def test_a_deployment_folder_cannot_redefine_a_value_or_a_region_date(folder, tmp_path_factory):
    own = tmp_path_factory.mktemp("own")
    (own / "a.yaml").write_text("limit:\n  description: 改\n  values:\n    2025-01-01: {value: 1, reference: 甲}\n", encoding="utf-8")
    with pytest.raises(ParameterError, match="defined twice"):
        Parameters.load(folder, own)
    (own / "a.yaml").write_text('limit:\n  regions:\n    "1405":\n      2024-01-01: {value: 1, reference: 甲}\n', encoding="utf-8")
    with pytest.raises(ParameterError, match="region 1405 at 2024-01-01 is defined twice"):
        Parameters.load(folder, own)


def test_a_warehouse_wide_value_refuses_regions(folder, tmp_path_factory):
    own = tmp_path_factory.mktemp("own")
    (own / "a.yaml").write_text('window:\n  regions:\n    "1405":\n      2025-01-01: {value: 24, reference: 甲}\n', encoding="utf-8")
    with pytest.raises(ParameterError, match="by_region: false"):
        Parameters.load(folder, own)


def test_a_region_that_is_not_a_code_is_refused(folder):
    (folder / "x.yaml").write_text(BASE.replace('"140581"', "晋城"), encoding="utf-8")
    with pytest.raises(ParameterError, match="not a GB/T 2260 prefix"):
        Parameters.load(folder)


def test_the_built_in_lookback_is_one_for_the_whole_warehouse():
    assert not Parameters.load().parameters["rigid_expenditure_lookback_months"].by_region


def test_an_unknown_name_is_refused_with_the_nearest_names():
    params = Parameters.load()
    assert params.find("expenditure_poverty.financial_asset_limit_months").name == "financial_asset_limit_months"
    with pytest.raises(ParameterError, match="expenditure_poverty.financial_asset_limit_months"):
        params.find("expenditure_poverty.financial_asset_limits")


def test_counties_under_one_value_share_one_run_and_cite_their_own_documents(folder):
    params = Parameters.load()
    regional = RegionalParameters.of(params, DAY, ["140502", "140802", "410802"])
    n01 = rule("N01")
    assert len(regional.bindings(n01.parameters)) == 1  # one run of the SQL for all three
    (default_cited, default_ref), per_county = regional.citations(n01)
    refs = {county: ref for county, _, ref in per_county}
    assert default_ref == refs["140502"] == n01.policy_ref  # 晋城 is under 晋市民〔2023〕2号 itself
    assert refs["140802"] == refs["410802"] == "参照 晋市民〔2023〕2号 二（一）1–4、二（三）"
    cited = {county: json.loads(p) for county, p, _ in per_county}
    assert cited["140802"]["financial_asset_limit_months"]["reference"].startswith("参照 晋市民〔2023〕2号")
    assert cited["140502"]["financial_asset_limit_months"]["reference"].startswith("晋市民〔2023〕2号")
    assert "参照 运民发〔2023〕50号" in cited["140502"]["verification_days"]["reference"]  # Yuncheng's deadline


def test_a_regional_value_splits_the_run_and_names_its_document(folder, tmp_path_factory):
    own = yuncheng_folder(tmp_path_factory.mktemp("own"), "financial_asset_limit_months", 48)
    params = Parameters.load(PARAMETER_DIR, own)
    regional = RegionalParameters.of(params, DAY, ["140502", "140802", "140821"])
    bindings = regional.bindings(rule("N01").parameters)
    assert [(b.values["financial_asset_limit_months"], b.counties, b.includes_unknown) for b in bindings] == [
        (36, ("140502",), True),
        (48, ("140802", "140821"), False),
    ]
    _, per_county = regional.citations(rule("N01"))
    refs = {county: ref for county, _, ref in per_county}
    assert refs["140802"] == "参照 晋市民〔2023〕2号 二（一）1–4、二（三）；运民发〔2025〕9号 二"


def test_the_rules_page_shows_each_value_with_its_region(folder, tmp_path_factory):
    from pipelines.reference import rules_page

    own = yuncheng_folder(tmp_path_factory.mktemp("own"), "financial_asset_limit_months", 48)
    page = rules_page(Parameters.load(PARAMETER_DIR, own))
    section = page.split("### financial_asset_limit_months", 1)[1].split("\n### ", 1)[0]
    assert "| 1408 运城市 | 2025-01-01 | 48 | 运民发〔2025〕9号 二 | 运民发〔2025〕9号: 1408 运城市 |" in section
    assert "| default (every region without its own value) | 2023-01-05 | 36 |" in section
    assert "| 运民发〔2025〕9号 | 1408 运城市 |" in page  # the documents table


def test_a_regional_value_changes_the_warnings_of_that_region_only(tmp_path, monkeypatch):
    """Through the real engine: Yuncheng (1408) lowers the asset limit to 24 months; a
    Jincheng household at exactly 36 months is still warned, a Yuncheng one is not, and a
    Yuncheng household under both limits cites Yuncheng's document."""
    from tests.rules.runner import run_case
    from warehouse.connection import connect

    own = yuncheng_folder(tmp_path / "own", "financial_asset_limit_months", 24)
    monkeypatch.setenv("DOUDI_PARAMETERS_DIR", str(own))
    standard = {"urban_rural": "城市", "monthly_standard_yuan": 800, "effective_date": dt.date(2025, 1, 1), "disposable_income_yuan": 45000}
    household = {"category": "低保边缘", "household_size": 2, "annual_income_yuan": 24000}
    case = {
        "quarter": "2025Q3",
        "standards": [{"county_code": "140502", **standard}, {"county_code": "140802", **standard}],
        "households": [
            {"household_id": "H1", "county_code": "140502", "financial_assets_yuan": 57600, **household},
            {"household_id": "H2", "county_code": "140802", "financial_assets_yuan": 57600, **household},
            {"household_id": "H3", "county_code": "140802", "financial_assets_yuan": 20000, **household},
        ],
        "members": [{"member_id": f"M{i}", "household_id": f"H{i}", "name": name} for i, name in ((1, "包建华"), (2, "柯文杰"), (3, "乔志强"))],
        "medical": [{"member": f"M{i}", "settlement_date": dt.date(2025, 7, 3), "total_cost_yuan": 9000, "basic_insurance_yuan": 3000,
                     "out_of_pocket_yuan": 6000} for i in (1, 2, 3)],
    }
    findings = [f for f in run_case(case, tmp_path / "case", kinds=("need",)) if f["rule"] == "N01"]
    assert sorted(f["household"] for f in findings) == ["H1", "H3"]
    with connect(tmp_path / "case" / "warehouse.duckdb", read_only=True) as con:
        rows = dict(con.execute("SELECT household_id, policy_ref FROM rules.findings WHERE rule_code = 'N01'").fetchall())
        cited = dict(con.execute(
            "SELECT household_id, parameters->'financial_asset_limit_months' FROM rules.findings WHERE rule_code = 'N01'").fetchall())
    assert rows["H1"] == "晋市民〔2023〕2号 二（一）1–4、二（三）"
    assert rows["H3"] == "参照 晋市民〔2023〕2号 二（一）1–4、二（三）；运民发〔2025〕9号 二"
    assert json.loads(cited["H1"])["value"] == 36 and json.loads(cited["H3"]) == {
        "value": 24, "since": "2025-01-01", "reference": "运民发〔2025〕9号 二", "region": "1408"}
