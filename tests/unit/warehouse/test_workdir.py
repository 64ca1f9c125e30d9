"""The run's work folder: private, where temporary folders go, and swept of what dead runs left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from warehouse.connection import connect
from warehouse.workdir import SPARK_PREFIX, sweep, temp_dir, work_dir, work_dir_of


def test_the_work_folder_is_private_and_beside_the_warehouse(tmp_path):
    warehouse = tmp_path / "doudi.duckdb"
    folder = work_dir(warehouse)
    assert folder == tmp_path / "doudi.duckdb.work" and (folder.stat().st_mode & 0o777) == 0o700
    os.chmod(folder, 0o755)
    assert (work_dir(warehouse).stat().st_mode & 0o777) == 0o700  # put right if loosened


def test_temporary_folders_go_into_the_work_folder_of_the_connection(tmp_path):
    warehouse = tmp_path / "doudi.duckdb"
    with connect(warehouse) as con:
        assert work_dir_of(con) == tmp_path / "doudi.duckdb.work"
        with temp_dir(con, "doudi-ingest-") as tmp:
            assert Path(tmp).parent == tmp_path / "doudi.duckdb.work" and Path(tmp).name.startswith("doudi-ingest-")
            assert (Path(tmp).stat().st_mode & 0o777) == 0o700
        assert not list((tmp_path / "doudi.duckdb.work").iterdir())
    plain = duckdb.connect(":memory:")  # no warehouse file: the system's temporary folder
    assert work_dir_of(plain) is None
    with temp_dir(plain, "doudi-ingest-") as tmp:
        assert not Path(tmp).is_relative_to(tmp_path)


def test_the_sweep_removes_what_dead_runs_left_and_nothing_else(tmp_path):
    warehouse, out = tmp_path / "doudi.duckdb", tmp_path / "out"
    work = work_dir(warehouse)
    (work / "doudi-splink-ab12").mkdir()
    (work / "doudi-splink-ab12" / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"x")
    (work / "published-cd34.duckdb").write_bytes(b"x")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (work / f"{SPARK_PREFIX}{int(dead.stdout)}-x1").mkdir()  # its process has ended
    alive = work / f"{SPARK_PREFIX}{os.getpid()}-x2"  # this process's own session: kept
    alive.mkdir()
    spill = tmp_path / "doudi.duckdb.tmp"
    spill.mkdir()
    (spill / "duckdb_temp_storage_S32K-0.tmp").write_bytes(b"x")
    (out / "2025Q1" / ".lists-ef56" / "140502").mkdir(parents=True)
    (out / "2025Q1" / "lists" / "140502").mkdir(parents=True)
    (out / "2025Q1" / "lists" / "140502" / "a.xlsx").write_bytes(b"x")
    (out / "2025Q1" / "report.html.tmp").write_text("x")
    (out / "2025Q1" / "report.html").write_text("x")
    removed = sweep(warehouse, out)
    assert sorted(removed) == sorted([
        "doudi.duckdb.work/doudi-splink-ab12", "doudi.duckdb.work/published-cd34.duckdb",
        f"doudi.duckdb.work/{SPARK_PREFIX}{int(dead.stdout)}-x1", "doudi.duckdb.tmp/duckdb_temp_storage_S32K-0.tmp",
        "2025Q1/.lists-ef56", "2025Q1/report.html.tmp"])
    assert [p.name for p in work.iterdir()] == [alive.name]
    assert (out / "2025Q1" / "lists" / "140502" / "a.xlsx").exists() and (out / "2025Q1" / "report.html").exists()
    assert sweep(warehouse, out) == []
