"""Faults of the township workbooks and `doudi export`: townships whose names read alike
after sanitising (东/城镇, 东_城镇) get a workbook each, a 90-character township name is
written (no FileCreateError after the marts were published), file names are safe on any
file system and stable, a failed write leaves the old lists and says in Chinese which step
failed, and `doudi export` rewrites a published quarter's files idempotently and refuses an
unpublished one. On small hand-built warehouses (the real DDL); synthetic people only
(测试甲, ID numbers of zeros)."""

from __future__ import annotations

import errno
import json
import random
import stat
from pathlib import Path

import openpyxl
import pytest

from pipelines.cli import main
from pipelines.exports.assets import _log
from pipelines.exports.lists import export_lists
from pipelines.quarters import Quarter
from pipelines.run import EXIT_OK, EXIT_REFUSED
from warehouse.connection import connect

QUARTER = "2025Q1"
LONG = ("测试县城关镇东关街道办事处第一" * 7)[:90]  # 270 bytes of UTF-8: over the 255 a file name may have
ALIKE = [("000001", "东/城镇"), ("000001", "东_城镇"), ("000002", "东城镇")]
NAMES = "甲乙丙丁戊己庚辛壬癸"


def make_warehouse(path: Path, places: list[tuple[str, str]], published: tuple[str, ...] = (QUARTER,),
                   quarter: str = QUARTER) -> Path:
    """A warehouse with two open warnings per township (one per sheet) in `quarter`, and the
    publications of the quarters `published`."""
    with connect(path) as con:
        for q in published:
            con.execute("INSERT INTO audit.publications VALUES (?, ?, now(), 0, 0)", [f"run-{q}", q])
        n = 0
        for county, township in places:
            for kind, rule, title in (("ineligibility", "D01", "保障对象死亡"), ("need", "N05", "医疗救助未落实")):
                n += 1
                con.execute(
                    """INSERT INTO marts.warnings (quarter, warning_id, rule_code, rule_title, rule_kind, severity, household_id,
                           member_id, county_code, township, village, name, id_number, evidence, due_date, status, first_seen_quarter)
                       VALUES (?, ?, ?, ?, ?, 'red', ?, ?, ?, ?, '测试村', ?, ?, ?, DATE '2025-04-30', 'new', ?)""",
                    [quarter, f"W{n:016d}", rule, title, kind, f"H{n:013d}", f"M{n:013d}", county, township,
                     f"测试{NAMES[n % 10]}", f"000000{n:012d}", json.dumps({"expected_assistance_yuan": 100.0}), quarter],
                )
    return path


def book_rows(path: Path) -> list[dict]:
    rows = []
    for sheet in openpyxl.load_workbook(path).worksheets:
        header = [c.value for c in sheet[1]]
        rows += [dict(zip(header, [c.value for c in r])) for r in sheet.iter_rows(min_row=2)]
    return rows


def lists_of(out: Path, quarter: str = QUARTER) -> dict[str, list[dict]]:
    folder = out / quarter / "lists"
    return {p.relative_to(folder).as_posix(): book_rows(p) for p in sorted(folder.glob("*/*.xlsx"))}


def export(warehouse: Path, out: Path, quarter: str = QUARTER) -> list[dict]:
    with connect(warehouse) as con:
        written = export_lists(con, Quarter.parse(quarter), out)
        _log(con, "run-test", Quarter.parse(quarter), "township_list", written)
    return written


def logged(warehouse: Path, quarter: str = QUARTER) -> list[tuple]:
    with connect(warehouse, read_only=True) as con:
        return con.execute("SELECT kind, county_code, township, file FROM audit.exports WHERE quarter = ? ORDER BY ALL",
                           [quarter]).fetchall()


# ---- file names -------------------------------------------------------------------------


def test_townships_whose_names_read_alike_get_a_workbook_each(tmp_path):
    warehouse = make_warehouse(tmp_path / "w.duckdb", ALIKE)
    written = export(warehouse, tmp_path / "out")
    books = lists_of(tmp_path / "out")
    assert len(books) == len(written) == 3
    by_file = {w["file"]: (w["county_code"], w["township"]) for w in written}
    for file, rows in books.items():
        assert {(r["区县代码"], r["乡镇（街道）"]) for r in rows} == {by_file[file]}  # its own township only
        assert len(rows) == 2
    files = [f for *_, f in logged(warehouse)]
    assert len(files) == len(set(files)) == 3  # one row per file
    with connect(warehouse) as con:
        _log(con, "run-again", Quarter.parse(QUARTER), "township_list", written)
    assert len(logged(warehouse)) == 3  # a rerun replaces the quarter's rows, it does not add to them


def test_a_90_character_township_name_is_written_under_a_short_file_name(tmp_path):
    warehouse = make_warehouse(tmp_path / "w.duckdb", [("000001", LONG), ("000001", LONG[:-1] + "乙")])
    written = export(warehouse, tmp_path / "out")  # the old code: FileCreateError (name too long)
    books = lists_of(tmp_path / "out")
    assert len(books) == len(written) == 2
    for file, _rows in books.items():
        name = file.split("/")[-1]
        assert len(name.encode()) <= 160
        assert name.endswith(".xlsx") and LONG[:20] in name  # still readable
    assert {r["乡镇（街道）"] for rows in books.values() for r in rows} == {LONG, LONG[:-1] + "乙"}  # in full in the cells


AWKWARD = [None, "", " ", ".", "..", "CON", "nul", "com1.txt", "a:b*c?d", 'x"y<z>|', "东\\城镇", "东/城镇", "东_城镇", "东 城镇",
           "东\u3000城镇", "东\t城镇\n", "东\u200b城镇", "东\u202e城镇", "城关镇.", " 城关镇 ", "ＡＢＣ镇", "abc镇", "ABC镇",
           "e\u0301镇", "\u00e9镇", "a" * 300, "测" * 90, "测" * 85 + "a", "\U0001f3e0镇", "-", "_", "东城镇"]


def test_file_names_are_safe_unique_and_stable_whatever_the_township_is_called():
    from pipelines.exports.lists import FORBIDDEN_CHARS, Place, workbook_paths

    places = [Place(county, township) for county in ("000001", "000002", None) for township in AWKWARD]
    paths = workbook_paths(places)
    assert len(set(p.casefold() for p in paths.values())) == len(places)  # distinct, even where case is ignored
    for path in paths.values():
        for part in path.split("/"):
            assert 0 < len(part.encode()) <= 160
            assert not set(part) & FORBIDDEN_CHARS and part.isprintable()
            assert part[0] not in ". " and part[-1] not in ". "
            assert part.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT1"}
    shuffled = places[:]
    random.Random(7).shuffle(shuffled)
    assert workbook_paths(shuffled) == paths  # the same file for a township whatever else the quarter holds
    assert workbook_paths([Place("000001", "东城镇")]) == {Place("000001", "东城镇"): paths[Place("000001", "东城镇")]}


def test_a_code_that_two_townships_share_is_lengthened(monkeypatch):
    from pipelines.exports import lists

    real = lists.place_digest
    # every derived code begins alike: the first 10 hex digits cannot tell the townships apart
    monkeypatch.setattr(lists, "place_digest", lambda county, township: "0" * 10 + real(county, township)[10:])
    a, b, c = lists.Place("000001", "东/城镇"), lists.Place("000001", "东_城镇"), lists.Place("000001", "西城镇")
    paths = lists.workbook_paths([a, b, c])
    assert len(set(paths.values())) == 3
    assert paths[c] == "000001/000000_西城镇.xlsx"  # a name that clashes with nothing keeps the short code
    assert all(len(paths[p].split("/")[1].split("_")[0]) > 10 for p in (a, b))


def test_a_roster_township_code_names_the_file_when_there_is_one():
    from pipelines.exports.lists import Place, workbook_paths

    a, b = Place("140502", "东/城镇", "140502001"), Place("140502", "东_城镇", "140502001")  # one code twice: a data error
    c = Place("140502", "西城镇", "bad/code")
    paths = workbook_paths([a, b, c])
    assert len(set(paths.values())) == 3
    assert paths[a].startswith("140502/140502001-") and paths[b].startswith("140502/140502001-")
    assert workbook_paths([a])[a] == "140502/140502001_东_城镇.xlsx"
    assert "bad" not in paths[c]


# ---- the folder: private, swapped in whole ------------------------------------------------


def test_the_lists_are_private_and_a_failed_write_leaves_the_old_ones(tmp_path, monkeypatch):
    from pipelines.exports import lists
    from pipelines.exports.assets import ExportFailed, write_lists

    warehouse, out = make_warehouse(tmp_path / "w.duckdb", ALIKE), tmp_path / "out"
    export(warehouse, out)
    folder = out / QUARTER / "lists"
    before = lists_of(out)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()} == {0o600}
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_dir()} == {0o700}

    def full_disk(books, quarter):
        books[0].path.write_bytes(b"PK")  # half a workbook
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lists, "_write_all", full_disk)
    with connect(warehouse) as con, pytest.raises(ExportFailed) as failed:
        write_lists(con, "run-2", Quarter.parse(QUARTER), out)
    message = str(failed.value)
    assert "exports/township_lists" in message and "核查清单" in message and "磁盘空间不足" in message
    assert f"doudi export --quarter {QUARTER}" in message
    assert lists_of(out) == before  # the old lists, untouched
    assert [p.name for p in (out / QUARTER).iterdir()] == ["lists"]  # no staging folder left behind
    assert len(logged(warehouse)) == 3  # and their log


def test_a_failed_export_step_fails_the_run_with_a_chinese_reason(tmp_path, monkeypatch, dagster_instance):
    """Through Dagster, as in `doudi run`: the assets use the same functions as `doudi export`."""
    import dagster as dg

    from pipelines.exports import lists
    from pipelines.exports.assets import EXPORT_ASSETS
    from pipelines.partitions import partition_key, register_regions
    from pipelines.resources import DoudiResource
    from pipelines.run import _step_failures

    warehouse, out = make_warehouse(tmp_path / "w.duckdb", ALIKE), tmp_path / "out"
    register_regions(dagster_instance, ["all"])
    resource = DoudiResource(warehouse=str(warehouse), out=str(out))
    result = dg.materialize(EXPORT_ASSETS, partition_key=partition_key(QUARTER), resources={"doudi": resource}, instance=dagster_instance)
    assert result.success
    assert main(["export", "--quarter", QUARTER, "--warehouse", str(warehouse), "--out", str(tmp_path / "out2")]) == EXIT_OK
    assert lists_of(out) == lists_of(tmp_path / "out2")  # one code path, the same files

    def full_disk(books, quarter):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lists, "_write_all", full_disk)
    result = dg.materialize(EXPORT_ASSETS, partition_key=partition_key(QUARTER), resources={"doudi": resource},
                            instance=dagster_instance, raise_on_error=False)
    assert not result.success
    messages, refused = _step_failures(result)
    assert not refused
    assert messages == [f"步骤 exports/township_lists（核查清单）写入失败：磁盘空间不足。{QUARTER} 的预警已发布，数据仓库不受影响；"
                        f"排除原因后可只重写清单和报告：doudi export --quarter {QUARTER}"]


# ---- doudi export -----------------------------------------------------------------------------


def test_doudi_export_rewrites_a_published_quarter_the_same_every_time(tmp_path, capsys):
    warehouse, out = make_warehouse(tmp_path / "w.duckdb", [*ALIKE, ("000001", LONG)]), tmp_path / "out"
    args = ["export", "--quarter", QUARTER, "--warehouse", str(warehouse), "--out", str(out)]
    assert main(args) == EXIT_OK
    first, first_log = lists_of(out), logged(warehouse)
    printed = capsys.readouterr().out
    assert "核查清单 4 份" in printed and "季度报告" in printed
    assert "测试" not in printed and "000000" not in printed  # nobody's name or ID number
    assert main(args) == EXIT_OK
    assert lists_of(out) == first and len(first) == 4
    assert logged(warehouse) == first_log
    assert sorted(kind for kind, *_ in first_log) == ["report"] + ["township_list"] * 4
    assert (out / QUARTER / "report.html").is_file()
    assert sorted(p.name for p in (out / QUARTER).iterdir()) == ["lists", "report.html"]


def test_doudi_export_refuses_a_quarter_that_is_not_published(tmp_path, capsys):
    warehouse, out = make_warehouse(tmp_path / "w.duckdb", ALIKE, published=("2025Q1",), quarter="2025Q2"), tmp_path / "out"
    assert main(["export", "--quarter", "2025Q2", "--warehouse", str(warehouse), "--out", str(out)]) == EXIT_REFUSED
    assert "2025Q2 尚未发布" in capsys.readouterr().err
    assert not out.exists()
    assert logged(warehouse, "2025Q2") == []
    missing = tmp_path / "none.duckdb"
    assert main(["export", "--quarter", "2025Q1", "--warehouse", str(missing), "--out", str(out)]) == EXIT_REFUSED
    assert "没有数据仓库" in capsys.readouterr().err
    assert not missing.exists() and not out.exists()
    assert main(["export", "--quarter", "2025Q5", "--warehouse", str(warehouse), "--out", str(out)]) == EXIT_REFUSED
