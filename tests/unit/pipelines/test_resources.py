"""Where a region's inbox, warehouse and output folder are."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.resources import DoudiResource, resource_from_environment


def test_paths_without_region_are_used_as_they_are():
    doudi = DoudiResource(inbox="in", warehouse="w.duckdb", out="o")
    assert doudi.regions_in_inbox() == (["all"], [])
    assert doudi.quarter_dir("all", "2025Q3") == Path("in/2025Q3")
    assert doudi.warehouse_path("all") == Path("w.duckdb")
    assert doudi.out_dir("all") == Path("o")


def test_region_templates(tmp_path):
    for name in ("14", "41", "a b"):
        (tmp_path / "inbox" / name / "deliveries").mkdir(parents=True)
    (tmp_path / "inbox" / "13").mkdir()  # no deliveries/ folder inside: not a region
    doudi = DoudiResource(inbox=str(tmp_path / "inbox" / "{region}" / "deliveries"),
                          warehouse=str(tmp_path / "{region}" / "doudi.duckdb"), out=str(tmp_path / "{region}" / "out"))
    found, problems = doudi.regions_in_inbox()
    assert found == ["14", "41"]
    assert len(problems) == 1 and "'a b'" in problems[0]
    assert doudi.quarter_dir("41", "2025Q3") == tmp_path / "inbox" / "41" / "deliveries" / "2025Q3"
    assert doudi.warehouse_path("41") == tmp_path / "41" / "doudi.duckdb"
    assert doudi.out_dir("14") == tmp_path / "14" / "out"


def test_regions_may_not_share_a_warehouse():
    doudi = DoudiResource(inbox="inbox/{region}", warehouse="var/doudi.duckdb", out="var/{region}/out")
    with pytest.raises(ValueError, match="DOUDI_WAREHOUSE"):
        doudi.warehouse_path("14")
    with pytest.raises(ValueError, match="地区代码"):
        doudi.out_dir("../14")


def test_region_placeholder_must_be_a_whole_folder():
    found, problems = DoudiResource(inbox="inbox/r{region}").regions_in_inbox()
    assert found == [] and "单独成为一级目录" in problems[0]


def test_environment_defaults_per_region(monkeypatch):
    monkeypatch.setenv("DOUDI_INBOX", "/data/inbox/{region}")
    monkeypatch.delenv("DOUDI_WAREHOUSE", raising=False)
    monkeypatch.delenv("DOUDI_OUT", raising=False)
    doudi = resource_from_environment()
    assert doudi.warehouse_path("14") == Path("var/regions/14/doudi.duckdb")
    assert doudi.out_dir("14") == Path("var/regions/14/out")
    monkeypatch.setenv("DOUDI_INBOX", "inbox")
    assert resource_from_environment().warehouse_path("all") == Path("var/doudi.duckdb")
