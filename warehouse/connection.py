"""Opening the DuckDB warehouse: encryption at rest, one writer at a time, spilling.

The warehouse is always ATTACHed (as `doudi`) to an in-memory DuckDB, because that is
the only way DuckDB opens an encrypted file; `USE doudi` then makes `linked.matches`,
`marts.warnings`... resolve to it. Encryption is on when a key is given through
`DOUDI_WAREHOUSE_KEY` or a key file named by `DOUDI_WAREHOUSE_KEY_FILE`.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
CATALOG = "doudi"


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened as asked (wrong or missing key, locked, corrupt)."""


def warehouse_key() -> str | None:
    """The encryption key from the environment, or None for a plain warehouse."""
    key = os.environ.get("DOUDI_WAREHOUSE_KEY")
    key_file = os.environ.get("DOUDI_WAREHOUSE_KEY_FILE")
    if key and key_file:
        raise WarehouseError("set DOUDI_WAREHOUSE_KEY or DOUDI_WAREHOUSE_KEY_FILE, not both")
    if key_file:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WarehouseError(f"cannot read the key file named by DOUDI_WAREHOUSE_KEY_FILE: {exc.strerror}") from None
        if not key:
            raise WarehouseError("the key file named by DOUDI_WAREHOUSE_KEY_FILE is empty")
    return key or None


def default_memory_limit() -> str:
    """DuckDB's memory limit when none is given: a third of the machine's memory.

    DuckDB's own default (80%) is per database instance, and a run has two at once (the
    warehouse, and Splink's scratch database while linking) beside polars frames; at a
    third each, a province-scale run spills to disk instead of being killed.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GB"
    return f"{max(1, int(total / 3 / 2**30))}GB"


def _httpfs_extension_path() -> str:
    # PyPI ships the extension (DuckDB's OpenSSL, needed to write encrypted files) as a
    # package; there is no internet to INSTALL it, so it is loaded from its file.
    import duckdb_extension_httpfs

    pattern = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "*", "httpfs.duckdb_extension")
    found = sorted(glob.glob(pattern))
    if not found:
        raise WarehouseError("duckdb-extension-httpfs is installed but holds no extension file")
    return found[-1]


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _ReentrantFileLock:
    """An exclusive lock on `<warehouse>.lock`, shared by nested users in one process.

    flock() treats two descriptors of one file in one process as rivals, so the CLI
    (which holds the lock for a whole run) and the assets (which take it per connection)
    share one descriptor through this registry instead of deadlocking.
    """

    _held: dict[str, tuple[int, int]] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path, wait: bool):
        self.path = str(path.resolve()) + ".lock"
        self.wait = wait

    def __enter__(self):
        with self._guard:
            if self.path in self._held:
                fd, count = self._held[self.path]
                self._held[self.path] = (fd, count + 1)
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise WarehouseError(
                    f"另一个 doudi 运行正在写这个数据仓库（{self.path.removesuffix('.lock')}），同一时间只能有一个运行写它；"
                    f"分析人员请使用发布副本 {published_copy_path(self.path.removesuffix('.lock'))}"
                ) from None
            self._held[self.path] = (fd, 1)
            return self

    def __exit__(self, *exc):
        with self._guard:
            fd, count = self._held[self.path]
            if count > 1:
                self._held[self.path] = (fd, count - 1)
            else:
                del self._held[self.path]
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def warehouse_lock(path: str | Path, wait: bool = False) -> contextlib.AbstractContextManager:
    return _ReentrantFileLock(Path(path), wait)


def published_copy_path(path: str | Path) -> Path:
    """The analysts' read-only copy of a warehouse: `<folder>/<stem>-published.duckdb`
    (written after each published quarter, `pipelines/marts/analysts_copy.py`)."""
    path = Path(path)
    return path.with_name(f"{path.stem}-published.duckdb")


def _held_message(path: Path, text: str, read_only: bool) -> str:
    """Another process holds the file (DuckDB's own lock): say so, in Chinese, and point
    analysts to the published copy, which never stands in a run's way."""
    import re

    holder = re.search(r"\(PID (\d+)\)", text)
    who = f"（进程 {holder.group(1)}）" if holder else ""
    copy = published_copy_path(path)
    if read_only:
        return (f"数据仓库 {path} 正被另一个进程{who}写入（季度运行中），现在不能打开；"
                f"分析人员请改用发布副本 {copy}（只读打开，不妨碍季度运行）")
    return (f"数据仓库 {path} 被另一个进程{who}打开着（例如分析人员的只读连接），本次运行无法写入：请关闭该连接后重试；"
            f"分析人员请改用发布副本 {copy}（只读打开，不妨碍季度运行）")


@dataclass(frozen=True)
class WarehouseSettings:
    path: Path
    memory_limit: str | None = None  # e.g. "12GB"; DuckDB spills to temp_directory past it
    threads: int | None = None


def _attach(con: duckdb.DuckDBPyConnection, path: Path, key: str | None, read_only: bool, alias: str = CATALOG) -> None:
    options = []
    if key:
        con.execute(f"LOAD {_sql_literal(_httpfs_extension_path())}")
        # What spills to <warehouse>.tmp while a large run works is the same data: encrypt it too.
        con.execute("SET temp_file_encryption = true")
        options.append(f"ENCRYPTION_KEY {_sql_literal(key)}")
    if read_only:
        options.append("READ_ONLY")
    clause = f" ({', '.join(options)})" if options else ""
    try:
        con.execute(f"ATTACH {_sql_literal(str(path))} AS {alias}{clause}")
    except duckdb.Error as exc:
        text = str(exc)
        if "without a key" in text or "encrypted" in text.lower() and not key:
            raise WarehouseError(
                f"the warehouse {path} is encrypted: set DOUDI_WAREHOUSE_KEY or DOUDI_WAREHOUSE_KEY_FILE"
            ) from None
        if "Wrong encryption key" in text or "encryption key" in text.lower():
            raise WarehouseError(f"the warehouse {path} could not be opened with the given key (wrong key?)") from None
        if "Could not set lock" in text:
            raise WarehouseError(_held_message(path, text, read_only)) from None
        raise WarehouseError(f"cannot open the warehouse {path}: {text.splitlines()[0]}") from None


@contextlib.contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
    lock: bool = True,
    schema: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose default catalog is the warehouse, schema applied (unless
    `schema=False`: a warehouse of another shape, e.g. the national one).

    Writers hold the warehouse lock for the connection's life; readers do not.
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise WarehouseError(f"no warehouse at {path}")
    key = warehouse_key()
    locker = warehouse_lock(path) if (lock and not read_only) else contextlib.nullcontext()
    with locker:
        con = duckdb.connect(":memory:")
        try:
            _attach(con, path, key, read_only)
            con.execute(f"USE {CATALOG}")
            temp_dir = str(path) + ".tmp"
            con.execute(f"SET temp_directory = {_sql_literal(temp_dir)}")
            con.execute(f"SET memory_limit = {_sql_literal(memory_limit or default_memory_limit())}")
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            if not read_only and schema:
                apply_schema(con)
            yield con
        finally:
            con.close()


def attach_read_only(con: duckdb.DuckDBPyConnection, path: str | Path, alias: str) -> None:
    """ATTACH another warehouse to `con`, read-only, as `alias` (with the key, if any)."""
    path = Path(path)
    if not path.exists():
        raise WarehouseError(f"no warehouse at {path}")
    _attach(con, path, warehouse_key(), read_only=True, alias=alias)


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the warehouse's schemas and fixed tables if they are missing (idempotent)."""
    from sources.registry import all_sources

    con.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
    for spec in all_sources():
        con.execute(spec.staging_ddl())
        con.execute(spec.quarantine_ddl())


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_catalog = ? and table_schema = ? and table_name = ?",
        [CATALOG, schema, table],
    ).fetchone()
    return bool(row and row[0])
