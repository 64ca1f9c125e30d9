"""County names from the GB/T 2260 table, and rebuilding the table from a code,name file
(as the Ministry of Civil Affairs publishes it)."""

from __future__ import annotations

import csv

from sources import divisions
from sources.divisions import county_name, province_name, rebuild


def test_a_county_is_named_with_its_city_only_where_the_name_is_ambiguous():
    assert county_name("140502") == "晋城市城区"
    assert county_name("140302") == "阳泉市城区"
    assert county_name("140525") == "泽州县"
    assert county_name("140581") == "高平市"
    assert county_name("130102") == "石家庄市长安区"  # 长安区 is also a district of 西安市
    assert county_name("610116") == "西安市长安区"


def test_without_a_named_city_the_province_disambiguates():
    assert county_name("110105") == "北京市朝阳区"  # 110100 is 市辖区, not in the table
    assert county_name("220104") == "长春市朝阳区"
    assert county_name("419001") == "济源市"  # 省直辖县级行政区划


def test_an_unknown_or_missing_code_never_fails():
    assert county_name("999999") == "999999"
    assert county_name(" 140599 ") == "140599"
    assert county_name(None) == county_name("") == divisions.UNKNOWN
    assert province_name("140502") == "山西省" and province_name("999999") is None and province_name(None) is None


def test_the_shipped_table_has_only_the_three_levels_and_no_placeholders():
    rows = list(csv.DictReader(divisions.TABLE.open(encoding="utf-8")))
    assert {r["level"] for r in rows} == {"province", "city", "county"}
    assert all(len(r["code"]) == 6 and r["code"].isdigit() for r in rows)
    assert not {r["name"] for r in rows} & divisions.PLACEHOLDERS
    assert len(rows) == len({r["code"] for r in rows}) < 4000


def test_rebuild_reads_the_ministrys_code_and_name_file(tmp_path):
    source = tmp_path / "县以上行政区划代码.csv"
    source.write_bytes(
        "行政区划代码,单位名称\n140000,山西省\n140100,太原市\n140101,市辖区\n140105, 小店区\n"
        "140105001000,坞城街道\n140500000000,晋城市\n,\n".encode("gb18030")
    )
    target = tmp_path / "divisions.csv"
    assert rebuild(source, target) == 4
    assert target.read_text(encoding="utf-8") == (
        "code,name,level\n140000,山西省,province\n140100,太原市,city\n140105,小店区,county\n140500,晋城市,city\n"
    )
