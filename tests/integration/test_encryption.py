"""The warehouse encrypted at rest: written only with the key, unreadable without it, and a
run with a wrong or missing key stops before it touches anything."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.run import EXIT_FAILED, EXIT_OK
from tests.helpers import synthetic_inbox
from warehouse.connection import WarehouseError, connect

QUARTER = "2025Q1"
KEY = "test-only-key-7f3a9c"


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    return synthetic_inbox(tmp_path_factory, "encryption", QUARTER, households=120, seed=5)


@pytest.fixture(scope="module")
def warehouses(inbox, tmp_path_factory):
    """The same quarter run twice: into a plain warehouse and into an encrypted one."""
    root = tmp_path_factory.mktemp("warehouses")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        (root / "dagster_home").mkdir()
        mp.delenv("DOUDI_WAREHOUSE_KEY", raising=False)
        assert _run(inbox, root / "plain.duckdb", root / "out_plain") == EXIT_OK
        mp.setenv("DOUDI_WAREHOUSE_KEY", KEY)
        assert _run(inbox, root / "secret.duckdb", root / "out_secret") == EXIT_OK
        with connect(root / "secret.duckdb", read_only=True) as con:
            ids = [r[0] for r in con.execute("SELECT id_number FROM staging.members WHERE length(id_number) = 18 LIMIT 50").fetchall()]
    return root, ids


def _run(inbox: Path, warehouse: Path, out: Path) -> int:
    return main(["run", "--inbox", str(inbox), "--quarter", QUARTER, "--warehouse", str(warehouse), "--out", str(out)])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")} if folder.exists() else {}


def test_the_plain_warehouse_shows_what_encryption_hides(warehouses):
    """The control: without a key, ID numbers stand in the file's bytes."""
    root, ids = warehouses
    raw = (root / "plain.duckdb").read_bytes()
    assert ids and any(i.encode() in raw for i in ids)


def test_the_encrypted_file_holds_no_readable_data(warehouses):
    root, ids = warehouses
    raw = (root / "secret.duckdb").read_bytes()
    assert not any(i.encode() in raw for i in ids)
    assert "staging".encode() not in raw and "marts".encode() not in raw  # not even the catalog
    assert not list(root.glob("secret.duckdb.wal"))


def test_without_the_key_nothing_opens_it(warehouses, monkeypatch):
    root, _ = warehouses
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(root / "secret.duckdb"), read_only=True).execute("SELECT count(*) FROM marts.warnings")
    monkeypatch.delenv("DOUDI_WAREHOUSE_KEY", raising=False)
    with pytest.raises(WarehouseError, match="encrypted"):
        with connect(root / "secret.duckdb", read_only=True):
            pass


def test_with_the_key_it_opens_from_a_key_file(warehouses, monkeypatch, tmp_path):
    root, _ = warehouses
    key_file = tmp_path / "doudi.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    monkeypatch.setenv("DOUDI_WAREHOUSE_KEY_FILE", str(key_file))
    with connect(root / "secret.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.warnings WHERE quarter = ?", [QUARTER]).fetchone()[0] > 0
    monkeypatch.setenv("DOUDI_WAREHOUSE_KEY", KEY)
    with pytest.raises(WarehouseError, match="not both"):
        with connect(root / "secret.duckdb", read_only=True):
            pass


@pytest.mark.parametrize("key", ["a-wrong-key", None], ids=["wrong key", "no key"])
def test_a_run_with_a_wrong_or_missing_key_fails_clearly_and_touches_nothing(warehouses, inbox, monkeypatch, capsys, key):
    root, _ = warehouses
    work = root / f"copy-{key}"
    work.mkdir()
    shutil.copy(root / "secret.duckdb", work / "secret.duckdb")
    shutil.copytree(root / "out_secret", work / "out")
    before = (_digest(work / "secret.duckdb"), _tree(work))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    if key:
        monkeypatch.setenv("DOUDI_WAREHOUSE_KEY", key)
    else:
        monkeypatch.delenv("DOUDI_WAREHOUSE_KEY", raising=False)
    code = _run(inbox, work / "secret.duckdb", work / "out")
    printed = capsys.readouterr()
    assert code == EXIT_FAILED
    assert ("wrong key" in printed.err) if key else ("DOUDI_WAREHOUSE_KEY" in printed.err)
    assert "Traceback" not in printed.err + printed.out
    assert (_digest(work / "secret.duckdb"), _tree(work)) == before


def test_a_policy_replay_leaves_the_encrypted_warehouse_byte_for_byte(warehouses, monkeypatch, tmp_path):
    root, ids = warehouses
    monkeypatch.setenv("DOUDI_WAREHOUSE_KEY", KEY)
    before = _digest(root / "secret.duckdb")
    args = ["whatif", "--warehouse", str(root / "secret.duckdb"), "--quarters", QUARTER, "--out", str(tmp_path / "w"),
            "--set", "temporary_assistance.medical_burden_share=0.05"]
    assert main(args) == EXIT_OK
    assert _digest(root / "secret.duckdb") == before
    assert not list(root.glob("secret.duckdb.wal"))
    listed = (tmp_path / "w" / "households.csv").read_text(encoding="utf-8-sig")
    assert listed.count("\n") > 1 and not any(i in listed for i in ids)  # masked
    assert not [p for p in tmp_path.iterdir() if p.name != "w"], "the replay's spill folder was left behind"
