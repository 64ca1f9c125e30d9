"""After a crash: what the next run of a warehouse does about a run that died.

A run that dies (kill -9, a power cut, the OOM killer) publishes nothing: the marts swap is
one transaction (`pipelines/marts/publish.py`), so the published quarters stay as they
were. What it leaves behind, and what `doudi run` does about it at its start, while it
holds the warehouse lock (so no run of this warehouse can still be alive):

- its Dagster run, still STARTED (or STARTING): marked failed (`stale_dagster_runs`). With
  the daemon running, `run_monitoring` in dagster.yaml does the same for runs it launched.
- its row in `audit.runs` (outcome `running`): outcome `interrupted`.
- its rows in `audit.ingest_log` (`loaded` …, for the sources it had staged): outcome
  `interrupted`, message 运行中断，未发布, so they do not look like a delivery that was
  taken in. The rows it staged stay where they are (a source's delivery is staged
  whole or not at all, and the next load replaces it; `pipelines/ingest/load.py`).
- its temporary files, which may hold personal data: the work folder `<warehouse>.work/`
  (`warehouse/workdir.py`) and DuckDB's spill folder `<warehouse>.tmp/` are emptied, and
  the half-written lists folders (`OUT/<Q>/.lists-*`) and report
  (`OUT/<Q>/report.html.tmp`) are removed.

`recover` does all of it and returns one line, in Chinese, for the run's messages.

`audit.runs` is written by `doudi run` (`start_run`, `finish_run`); runs the daemon
launches leave no row there, and their dead runs are found through Dagster alone.

Testing a crash: the environment variable DOUDI_TEST_ONLY_CRASH_AT makes a `doudi run`
kill itself with SIGKILL at a named point, for tests/faults/test_crash.py only (nothing
else sets it; a run without it is unaffected). Its value is `<EVENT>:<step key>`, e.g.
`STEP_SUCCESS:linked__matches` (after linking) or `STEP_START:exports__report`, with an
optional `+<seconds>` to kill that long after the event (inside the step).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.exports.lists import LIST_STAGING_PREFIX  # the lists' staging folders
from pipelines.quarters import Quarter
from warehouse.workdir import sweep
from warehouse.writes import insert_row, transaction

JOB_NAME = "quarterly_comparison"
WAREHOUSE_TAG = "doudi/warehouse"  # the resolved warehouse path, on every run doudi run starts
REGION_TAG = "dagster/partition/region"
QUARTER_TAG = "dagster/partition/quarter"
INTERRUPTED = "interrupted"
INTERRUPTED_MESSAGE = "运行中断，未发布"
CRASH_ENV = "DOUDI_TEST_ONLY_CRASH_AT"
CRASH_LOGGER = "doudi_test_only_crash"


# ---- Dagster ------------------------------------------------------------------------------------


def _run_warehouse(run: dg.DagsterRun) -> Path | None:
    tagged = run.tags.get(WAREHOUSE_TAG)
    if tagged:
        return Path(tagged)
    configured = (((run.run_config or {}).get("resources") or {}).get("doudi") or {}).get("config") or {}
    if configured.get("warehouse"):
        return Path(configured["warehouse"]).resolve()
    return None


def stale_dagster_runs(instance: dg.DagsterInstance, warehouse: Path, region: str, quarter_key: str) -> list[dg.DagsterRun]:
    """Runs of the quarterly job of this region still STARTED or STARTING that wrote this
    warehouse: dead, since the caller holds the warehouse lock. A run started by doudi run
    names its warehouse (tag `doudi/warehouse`), and any of its quarters is taken; a run
    without it (launched by the daemon or the UI) only when it is of the same partition."""
    from pipelines.resources import resource_from_environment

    warehouse = warehouse.resolve()
    runs = instance.get_runs(filters=dg.RunsFilter(
        job_name=JOB_NAME, statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING], tags={REGION_TAG: region}))
    stale = []
    for run in runs:
        written = _run_warehouse(run)
        if written is None:
            if run.tags.get(QUARTER_TAG) != quarter_key:
                continue
            try:
                written = resource_from_environment().warehouse_path(region).resolve()
            except ValueError:
                continue
        if written == warehouse:
            stale.append(run)
    return stale


def mark_failed(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    from dagster._core.events import JobFailureData, RunFailureReason

    for run in runs:
        instance.report_run_failed(
            run,
            "运行进程已不在（被终止或断电），下一次 doudi run 开始时发现并标记为失败；本次运行没有发布任何内容",
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )


# ---- the warehouse -------------------------------------------------------------------------------


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, quarter: Quarter, region: str) -> None:
    insert_row(con, "audit.runs", run_id=run_id, quarter=str(quarter), region=region, started_at=dt.datetime.now(),
               finished_at=None, outcome="running")


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    """Record the end of a run: published when it wrote its quarter's publication."""
    published = con.execute("SELECT count(*) FROM audit.publications WHERE run_id = ?", [run_id]).fetchone()[0]
    outcome = "published" if published else "not_published"
    con.execute("UPDATE audit.runs SET finished_at = ?, outcome = ? WHERE run_id = ?", [dt.datetime.now(), outcome, run_id])
    return outcome


def mark_interrupted(con: duckdb.DuckDBPyConnection, dagster_run_ids: list[str]) -> tuple[list[str], list[str]]:
    """Mark the runs that died as interrupted: the `running` rows of `audit.runs` (the caller
    holds the lock, so none is alive) and the given Dagster runs. Their `audit.ingest_log`
    rows that look taken in (not refused, ignored or already marked) are marked too, unless
    the run published its quarter before it died (then its rows are what was published).

    Returns (the run ids marked, those of them that had published)."""
    running = [r[0] for r in con.execute("SELECT run_id FROM audit.runs WHERE outcome = 'running'").fetchall()]
    dead = sorted(set(running) | set(dagster_run_ids))
    if not dead:
        return [], []
    published = [r[0] for r in con.execute(
        "SELECT DISTINCT run_id FROM audit.publications WHERE list_contains(?::VARCHAR[], run_id) ORDER BY run_id", [dead]).fetchall()]
    with transaction(con):
        con.execute("UPDATE audit.runs SET outcome = ? WHERE outcome = 'running' AND list_contains(?::VARCHAR[], run_id)",
                    [INTERRUPTED, dead])
        con.execute(
            """UPDATE audit.ingest_log
               SET outcome = ?, message = ? || CASE WHEN coalesce(message, '') = '' THEN '' ELSE '（' || message || '）' END
               WHERE list_contains(?::VARCHAR[], run_id) AND NOT list_contains(?::VARCHAR[], run_id)
                 AND outcome NOT IN ('refused', 'ignored', ?)""",
            [INTERRUPTED, INTERRUPTED_MESSAGE, dead, published, INTERRUPTED],
        )
    return dead, published


def recover(con: duckdb.DuckDBPyConnection, instance: dg.DagsterInstance | None, warehouse: Path, out: Path | None,
            region: str, quarter_key: str) -> list[str]:
    """Everything above, for the run about to start; the caller holds the warehouse lock and
    `con` is a writing connection. Returns the Chinese line to show (none when nothing was
    found)."""
    stale = stale_dagster_runs(instance, warehouse, region, quarter_key) if instance is not None else []
    mark_failed(instance, stale)
    dead, published = mark_interrupted(con, [run.run_id for run in stale])
    removed = sweep(warehouse, out, LIST_STAGING_PREFIX)
    if not (dead or stale or removed):
        return []
    parts = []
    unpublished = [run_id for run_id in dead if run_id not in published]
    if unpublished:
        ids = "、".join(run_id[:8] for run_id in unpublished)
        parts.append(f"发现 {len(unpublished)} 次中断的运行（{ids}）：未发布任何内容，其接收记录已标为“{INTERRUPTED_MESSAGE}”")
    if published:
        ids = "、".join(run_id[:8] for run_id in published)
        parts.append(f"{len(published)} 次运行（{ids}）在发布后中断：清单、报告或分析副本可能不完整，重新运行该季度即可重写")
    if stale:
        parts.append(f"Dagster 中 {len(stale)} 个未结束的运行已标记为失败")
    if removed:
        parts.append(f"已清理中断运行留下的临时文件 {len(removed)} 项")
    return ["；".join(parts)]


# ---- the crash hook (tests only) -----------------------------------------------------------------


class _CrashHandler(logging.Handler):
    def __init__(self, at: str):
        super().__init__(logging.DEBUG)
        point, _, delay = at.partition("+")
        self.event, _, self.step = point.partition(":")
        self.delay = float(delay or 0)

    def emit(self, record: logging.LogRecord) -> None:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is None or event.event_type_value != self.event or event.step_key != self.step:
            return
        if self.delay:
            threading.Thread(target=_kill_after, args=(self.delay,), daemon=True).start()
        else:
            _kill_after(0)


def _kill_after(seconds: float) -> None:
    time.sleep(seconds)
    os.kill(os.getpid(), signal.SIGKILL)


@dg.logger(
    config_schema={"at": dg.Field(str)},
    description="仅供测试：在指定的步骤事件处以 SIGKILL 终止本进程（环境变量 DOUDI_TEST_ONLY_CRASH_AT，见 pipelines/recovery.py）",
)
def crash_test_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger(CRASH_LOGGER, level=logging.DEBUG)
    logger.addHandler(_CrashHandler(init_context.logger_config["at"]))
    return logger
