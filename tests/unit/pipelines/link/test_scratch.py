"""Splink's scratch database follows the warehouse's encryption: with a key set, what it
spills to disk is encrypted; without one it is not (the control, showing the scan works)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.link.probabilistic import _connection

MARKER = "SYNTHETICPERSON"


def _spilled(monkeypatch, tmp_path: Path, key: str | None) -> tuple[bool, bytes]:
    if key:
        monkeypatch.setenv("DOUDI_WAREHOUSE_KEY", key)
    con = _connection("24MB", 1, str(tmp_path))
    try:
        encrypted = con.execute("SELECT current_setting('temp_file_encryption')").fetchone()[0]
        # more than the memory limit, held in a temporary table: DuckDB spills it to the folder
        con.execute(f"CREATE TEMP TABLE t AS SELECT '{MARKER}' || i::VARCHAR || repeat('-', 40) AS s FROM range(1500000) r(i)")
        written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    finally:
        con.close()
    assert written, "nothing was spilled: the test shows nothing"
    return encrypted, written


@pytest.mark.parametrize("key", [None, "test-only-scratch-key"], ids=["plain", "encrypted"])
def test_the_scratch_spill_is_encrypted_when_the_warehouse_is(monkeypatch, tmp_path, key):
    encrypted, written = _spilled(monkeypatch, tmp_path, key)
    assert bool(encrypted) == bool(key)
    assert (MARKER.encode() in written) == (not key)
