"""The run's private work folder beside the warehouse: `<warehouse>.work/` (mode 0700).

Everything a run writes aside that may hold personal data goes in here, never in the
system's temporary folder: the ingest readers' decoded copies (`doudi-ingest-*`, from
`pipelines/ingest/load.py`), the spill of Splink's scratch DuckDB (`doudi-splink-*`,
`pipelines/link/probabilistic.py`) and the analysts' copy while it is written
(`published-*.duckdb`, `pipelines/marts/analysts_copy.py`). The folder is 0700, so nothing
in it is reachable by another user; the files Python creates in it are 0600 (DuckDB's own
spill files follow the umask, inside the 0700 folder).

A run removes what it made when it ends; a run that dies (kill -9, power cut, the OOM
killer) leaves its entries, and the next run sweeps them (`sweep`) while it holds the
warehouse lock, when no other run of this warehouse can be writing here. The sweep also
empties DuckDB's spill folder of the warehouse (`<warehouse>.tmp/`, set by
`warehouse.connection`), which DuckDB does not clean after a killed process, and the
Spark scratch (`doudi-spark-<pid>-*`, in the system's temporary folder: a Spark session
outlives the run that started it, `pipelines/link/spark.py`) of processes that are gone.

Code that has a warehouse connection but not the warehouse's path asks `work_dir_of(con)`
(the file attached as `doudi`); `temp_dir(con, prefix)` is `tempfile.TemporaryDirectory`
in the work folder (in the system's temporary folder for a connection without a
warehouse file, e.g. a test's in-memory database).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import duckdb

WORK_SUFFIX = ".work"
SPARK_PREFIX = "doudi-spark-"
_SPARK_OWNER = re.compile(re.escape(SPARK_PREFIX) + r"(\d+)-")


def work_dir(warehouse: str | Path) -> Path:
    """`<warehouse>.work/`, created if missing, mode 0700."""
    path = Path(str(Path(warehouse).resolve()) + WORK_SUFFIX)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)
    return path


def warehouse_of(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The file attached to `con` as the warehouse (`doudi`), or None."""
    from warehouse.connection import CATALOG

    # fetchall, not fetchone: a result left open on the connection makes DuckDB's Python API
    # fail to remove a function registered on it (corroboration.install replaces its own).
    try:
        rows = con.execute(f"SELECT path FROM duckdb_databases() WHERE database_name = '{CATALOG}'").fetchall()
    except duckdb.Error:
        return None
    return Path(rows[0][0]) if rows and rows[0][0] else None


def work_dir_of(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The work folder of the warehouse `con` writes, or None when it has no warehouse file."""
    warehouse = warehouse_of(con)
    return work_dir(warehouse) if warehouse is not None else None


def temp_dir(where: duckdb.DuckDBPyConnection | str | Path | None, prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder (0700) in the work folder of a warehouse, given by a connection to
    it, its path or its work folder; the system's temporary folder when there is none."""
    if isinstance(where, duckdb.DuckDBPyConnection):
        parent = work_dir_of(where)
    elif where is None:
        parent = None
    else:
        where = Path(where)
        parent = where if where.name.endswith(WORK_SUFFIX) else work_dir(where)
    return tempfile.TemporaryDirectory(prefix=prefix, dir=str(parent) if parent else None)


def process_alive(pid: int) -> bool:
    """Whether the process `pid` still runs (the owner of a scratch folder named after it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(warehouse: str | Path, out: str | Path | None = None, list_prefix: str = ".lists-") -> list[str]:
    """Remove what dead runs left: every entry of the work folder; the Spark scratch of
    processes that are gone; the files in DuckDB's spill folder of the warehouse, `<warehouse>.tmp/`
    (DuckDB removes its spill when a connection closes, never what a killed process left);
    and under OUT/<quarter>/ the half-written lists folders (`list_prefix`) and report
    (`report.html.tmp`). Call it only while holding the warehouse lock and a writing
    connection to the warehouse (then no other process has the warehouse open, and so none
    spills to its folder), before that connection spills anything.

    Returns the names removed (paths relative to the work folder or OUT; no personal data:
    the names are made by the pipeline)."""
    removed: list[str] = []
    folder = Path(str(Path(warehouse).resolve()) + WORK_SUFFIX)
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            owner = _SPARK_OWNER.match(entry.name)
            if owner and process_alive(int(owner.group(1))):
                continue
            _remove(entry)
            removed.append(f"{folder.name}/{entry.name}")
    # A Spark session's scratch sits in the system's temporary folder (pipelines/link/spark.py:
    # it outlives runs); that of a process that died goes too.
    for entry in sorted(Path(tempfile.gettempdir()).glob(f"{SPARK_PREFIX}*")):
        owner = _SPARK_OWNER.match(entry.name)
        if owner and not process_alive(int(owner.group(1))):
            _remove(entry)
            removed.append(entry.name)
    spill = Path(str(Path(warehouse).resolve()) + ".tmp")
    if spill.is_dir():
        for entry in sorted(spill.iterdir()):
            _remove(entry)
            removed.append(f"{spill.name}/{entry.name}")
    if out is not None and Path(out).is_dir():
        for quarter in sorted(p for p in Path(out).iterdir() if p.is_dir()):
            for entry in sorted(quarter.iterdir()):
                if entry.name.startswith(list_prefix) or entry.name == "report.html.tmp":
                    _remove(entry)
                    removed.append(f"{quarter.name}/{entry.name}")
    return removed
