"""A run killed with SIGKILL, and the run after it.

`doudi run` runs as a subprocess on a small synthetic inbox and kills itself at a named
point (the test-only hook DOUDI_TEST_ONLY_CRASH_AT, pipelines/recovery.py); the next run
on the same warehouse must then succeed and leave the warehouse as an uninterrupted run
leaves it: the same marts, no `loaded` ingest rows of the dead run, no temporary folder or
file in the work folder or OUT, and the dead Dagster run marked failed.

The default run chains two crashes on one warehouse — after linking (everything ingested,
nothing published) and inside the township lists (after the marts were published) — the
second run settling the first one's crash, then a last run that completes; an uninterrupted
run on the same inbox goes on beside them, for comparison. The test marked `slow` kills
once at each of many more points (after ingest among them), each followed by a clean rerun.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.helpers import synthetic_inbox

REPO = Path(__file__).resolve().parents[2]
QUARTER = "2025Q1"
AFTER_INGEST = "STEP_START:linked__matches"
AFTER_LINKING = "STEP_SUCCESS:linked__matches"
DURING_LISTS = "STEP_START:exports__township_lists+0.3"
TEMPORARY = (".lists-", "report.html.tmp", "doudi-ingest-", "doudi-splink-", "doudi-spark-", "published-")


def _start(inbox: Path, root: Path, home: Path, crash_at: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOUDI_", "DAGSTER_HOME"))}
    env["DAGSTER_HOME"] = str(home)
    if crash_at:
        env["DOUDI_TEST_ONLY_CRASH_AT"] = crash_at
    command = [sys.executable, "-m", "pipelines.cli", "run", "--quiet", "--inbox", str(inbox), "--quarter", QUARTER,
               "--warehouse", str(root / "doudi.duckdb"), "--out", str(root / "out")]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out + err


def _run(inbox: Path, root: Path, home: Path, crash_at: str | None = None) -> tuple[int, str]:
    return _finish(_start(inbox, root, home, crash_at))


def _marts(warehouse: Path) -> dict[str, list]:
    """The published tables, rows sorted (person_key is a keyed hash with a secret of each
    warehouse's own, so it is left out)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {table: sorted(con.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr) for table, columns in (
            ("marts.warnings", "*"), ("marts.household_cases", "*"), ("marts.quarterly_comparison", "*"),
            ("marts.warnings_masked", "* EXCLUDE (person_key)"), ("linked.matches", "*"))}


def _leftovers(root: Path) -> list[str]:
    found = [p.name for folder in ("doudi.duckdb.work", "doudi.duckdb.tmp") if (root / folder).exists()
             for p in (root / folder).iterdir()]
    found += [str(p.relative_to(root)) for p in (root / "out").rglob("*") if p.name.startswith(TEMPORARY)]
    return found


def _dagster_runs(home: Path) -> dict[str, str]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {run.run_id: run.status.value for run in instance.get_runs()}


def _ingest_outcomes(warehouse: Path) -> dict[str, set[str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT run_id, list(DISTINCT outcome) FROM audit.ingest_log GROUP BY run_id").fetchall()
    return {run_id: set(outcomes) for run_id, outcomes in rows}


def _runs(warehouse: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT run_id, outcome FROM audit.runs ORDER BY started_at").fetchall()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    return synthetic_inbox(tmp_path_factory, "crash", QUARTER, households=100, seed=7)


class Reference:
    """The uninterrupted run, started at once: it runs beside the crashing ones (a run is
    mostly one core's work, and the machine has two). Calling it waits for it."""

    def __init__(self, inbox: Path, root: Path):
        self.root = root
        self.process = _start(inbox, root, root / "home")
        self.result: tuple[int, str] | None = None

    def __call__(self) -> tuple[tuple[int, str], Path]:
        if self.result is None:
            self.result = _finish(self.process)
        return self.result, self.root


@pytest.fixture(scope="module")
def reference(inbox, tmp_path_factory):
    started = Reference(inbox, tmp_path_factory.mktemp("reference"))
    yield started
    if started.process.poll() is None:
        started.process.kill()


@pytest.fixture(scope="module")
def chained(inbox, reference, tmp_path_factory):
    """Two crashes in a row on one warehouse, then a run to the end."""
    root = tmp_path_factory.mktemp("crashed")
    home = root / "home"
    runs = []
    for crash_at in (AFTER_LINKING, DURING_LISTS, None):
        if crash_at is None:
            # What a crash inside linking leaves (Splink's spill), beside whatever the crash
            # inside the lists left (a half-written OUT/<Q>/.lists-* folder, most times).
            spill = root / "doudi.duckdb.work" / "doudi-splink-deadbeef"
            spill.mkdir()
            (spill / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"\0" * 4096)
        code, printed = _run(inbox, root, home, crash_at)
        runs.append({"crash_at": crash_at, "code": code, "printed": printed, "audit": _runs(root / "doudi.duckdb"),
                     "ingest": _ingest_outcomes(root / "doudi.duckdb"), "leftovers": _leftovers(root)})
    return root, runs


def test_each_crash_kills_the_run_where_asked(chained):
    _, runs = chained
    for run in runs[:-1]:
        assert run["code"] == -signal.SIGKILL, (run["crash_at"], run["code"], run["printed"][-2000:])
        assert run["audit"][-1][1] == "running"  # it never recorded an end
    after_linking = runs[0]["ingest"][runs[0]["audit"][-1][0]]
    assert after_linking & {"loaded", "loaded_with_quarantine"}  # the dead run looked loaded, before the next run


def test_the_run_after_a_crash_succeeds_and_says_what_it_settled(chained):
    _, runs = chained
    last = runs[-1]
    assert last["code"] == 0, last["printed"][-3000:]
    # (a killed run prints nothing; the last one reports the crash before it, which had published)
    assert "发布后中断" in last["printed"] and "已标记为失败" in last["printed"], last["printed"][-3000:]


def test_the_marts_equal_an_uninterrupted_run(chained, reference):
    root, _ = chained
    (code, printed), reference_root = reference()
    assert code == 0, printed[-3000:]
    ours, theirs = _marts(root / "doudi.duckdb"), _marts(reference_root / "doudi.duckdb")
    for table in theirs:
        assert theirs[table], table
        assert ours[table] == theirs[table], table


def test_no_dead_run_looks_loaded_and_every_dead_run_is_marked(chained):
    root, runs = chained
    warehouse = root / "doudi.duckdb"
    dead = [run_id for run_id, _ in _runs(warehouse)[:2]]
    final = _runs(warehouse)[2][0]
    assert [outcome for _, outcome in _runs(warehouse)] == ["interrupted", "interrupted", "published"]
    ingest = _ingest_outcomes(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        published = {r[0] for r in con.execute("SELECT run_id FROM audit.publications").fetchall()}
        messages = {r[0] for r in con.execute(
            "SELECT DISTINCT message FROM audit.ingest_log WHERE outcome = 'interrupted'").fetchall()}
    assert dead[1] in published and dead[0] not in published
    assert ingest[dead[0]] <= {"interrupted", "ignored"}, ingest[dead[0]]  # died before publishing: nothing looks taken in
    assert messages and all(m.startswith("运行中断，未发布") for m in messages)
    assert ingest[dead[1]] & {"loaded", "loaded_with_quarantine"}  # published before it died: its rows are what was published
    assert ingest[final] & {"loaded", "loaded_with_quarantine"}
    statuses = _dagster_runs(root / "home")
    assert [statuses[run_id] for run_id in dead] == ["FAILURE"] * 2
    assert statuses[final] == "SUCCESS"


def test_no_temporary_file_is_left(chained):
    root, runs = chained
    assert "已清理中断运行留下的临时文件" in runs[-1]["printed"]  # the planted spill, at least
    assert runs[-1]["leftovers"] == []
    assert _leftovers(root) == []
    work = root / "doudi.duckdb.work"
    assert work.is_dir() and (work.stat().st_mode & 0o777) == 0o700


def test_the_daemon_marks_dead_runs_failed_too(tmp_path):
    """dagster.yaml turns run monitoring on, with settings the default run launcher accepts."""
    import shutil

    import dagster as dg

    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0  # the default launcher cannot resume
        assert 0 < instance.run_monitoring_start_timeout_seconds and 3600 < instance.run_monitoring_max_runtime_seconds


# ---- every boundary (slow) ----------------------------------------------------------------------

BOUNDARIES = [
    "STEP_SUCCESS:staging__households",
    "STEP_SUCCESS:staging__medical",
    "STEP_SUCCESS:staging__members_value_quality",
    AFTER_INGEST,
    "STEP_START:linked__matches+1.5",
    AFTER_LINKING,
    "STEP_SUCCESS:rules__ineligibility",
    "STEP_SUCCESS:rules__need",
    "STEP_START:published_marts",
    "STEP_SUCCESS:published_marts",
    "STEP_SUCCESS:exports__report",
    "STEP_SUCCESS:exports__township_lists",
    "STEP_START:marts__analysts_copy+0.2",
]


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", BOUNDARIES)
def test_a_crash_at_any_boundary_is_settled_by_the_next_run(crash_at, inbox, reference, tmp_path):
    home = tmp_path / "home"
    code, printed = _run(inbox, tmp_path, home, crash_at)
    assert code == -signal.SIGKILL, printed[-2000:]
    dead = _runs(tmp_path / "doudi.duckdb")[-1][0]
    code, printed = _run(inbox, tmp_path, home)
    assert code == 0, printed[-3000:]
    (reference_code, _), reference_root = reference()
    assert reference_code == 0
    assert _marts(tmp_path / "doudi.duckdb") == _marts(reference_root / "doudi.duckdb")
    assert _leftovers(tmp_path) == []
    assert _dagster_runs(home)[dead] == "FAILURE"
    with duckdb.connect(str(tmp_path / "doudi.duckdb"), read_only=True) as con:
        published = con.execute("SELECT count(*) FROM audit.publications WHERE run_id = ?", [dead]).fetchone()[0]
        loaded = con.execute("SELECT count(*) FROM audit.ingest_log WHERE run_id = ? AND outcome LIKE 'loaded%'",
                             [dead]).fetchone()[0]
    assert published or not loaded
