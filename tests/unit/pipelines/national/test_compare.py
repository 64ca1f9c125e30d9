"""Naming the regions' warehouses for the national step, and what it refuses before reading any."""

from __future__ import annotations

import pytest

from pipelines.national.compare import NationalRefused, run_national, warehouses_from_glob
from pipelines.quarters import Quarter
from pipelines.run import EXIT_REFUSED, run_national_quarter

QUARTER = Quarter.parse("2025Q3")


def test_the_star_is_the_region(tmp_path):
    for region in ("14", "41", "晋城市"):
        (tmp_path / "regions" / region).mkdir(parents=True)
        (tmp_path / "regions" / region / "doudi.duckdb").write_bytes(b"")
    (tmp_path / "regions" / "13").mkdir()  # no warehouse in it
    found = warehouses_from_glob(str(tmp_path / "regions" / "*" / "doudi.duckdb"))
    assert found == {r: tmp_path / "regions" / r / "doudi.duckdb" for r in ("14", "41", "晋城市")}
    (tmp_path / "flat").mkdir()
    for region in ("14", "41"):
        (tmp_path / "flat" / f"wh_{region}.duckdb").write_bytes(b"")
    assert sorted(warehouses_from_glob(str(tmp_path / "flat" / "wh_*.duckdb"))) == ["14", "41"]


@pytest.mark.parametrize("pattern", ["var/regions/doudi.duckdb", "var/*/*/doudi.duckdb", "var/regions/?/doudi.duckdb"])
def test_a_pattern_needs_exactly_one_star(pattern):
    with pytest.raises(NationalRefused, match="恰好含一个 \\*"):
        warehouses_from_glob(pattern)


def test_nothing_matching_is_refused(tmp_path):
    with pytest.raises(NationalRefused, match="没有与"):
        warehouses_from_glob(str(tmp_path / "*" / "doudi.duckdb"))


def test_inputs_refused_before_anything_is_read_or_written(tmp_path):
    shared = tmp_path / "one.duckdb"
    shared.write_bytes(b"")
    with pytest.raises(NationalRefused) as refused:
        run_national(QUARTER, {"14": shared, "41": shared, "a b": tmp_path / "x.duckdb", "13": tmp_path / "none.duckdb"},
                     tmp_path / "national" / "warehouse.duckdb", tmp_path / "national" / "out")
    problems = "\n".join(refused.value.problems)
    assert "地区代码 'a b'" in problems and "地区 13：没有数据仓库" in problems and "14、41 的数据仓库是同一个文件" in problems
    with pytest.raises(NationalRefused, match="至少需要两个地区"):
        run_national(QUARTER, {"14": shared}, tmp_path / "national" / "warehouse.duckdb", tmp_path / "national" / "out")
    assert not (tmp_path / "national").exists()


def test_a_mistyped_quarter_is_refused_by_the_run_service_before_anything_is_written(tmp_path):
    # The operator's text becomes a Quarter once, in the run service; run_national takes one.
    outcome = run_national_quarter("2025Q5", {"14": tmp_path / "a.duckdb", "41": tmp_path / "b.duckdb"},
                                   tmp_path / "national" / "warehouse.duckdb", tmp_path / "national" / "out")
    assert outcome.exit_code == EXIT_REFUSED and "写法不对" in outcome.messages[0]
    assert not (tmp_path / "national").exists()
