"""The run service: one quarter of one region through the Dagster job, the national step,
and re-exporting a published quarter, each returning a `RunOutcome` (exit code and the
operator's messages). The command line (`pipelines.cli`) and the benchmark call these;
neither the schedule nor the sensor needs them (they launch the same jobs through Dagster).

Exit codes: 0 success; 2 input refused (the message names the file and the column or check
that failed, or the region whose warehouse is missing or unpublished; nothing of the quarter
is published); 1 anything else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parent.parent


def prepare_dagster_home() -> Path:
    """A DAGSTER_HOME holding the project's dagster.yaml, so CLI runs show in the UI."""
    home = Path(os.environ.get("DAGSTER_HOME") or os.environ.get("DOUDI_DAGSTER_HOME") or "var/dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(REPO_ROOT / "dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def quiet_dagster() -> None:
    for name in ("dagster", "dagster_webserver", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass
class RunOutcome:
    quarter: str
    exit_code: int
    region: str = "all"
    run_id: str | None = None
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def accept_drop_problem(token: str) -> str | None:
    """Why an --accept-drop value cannot be used (None when it can)."""
    from sources.registry import all_sources

    name, sep, scope = token.partition(":")
    compared = {spec.source for spec in all_sources() if spec.drop_check != "none"}
    if not sep or not scope.strip():
        return f"--accept-drop {token}：应写作 数据源:区县代码，例如 households:140502（或 households:*）"
    if name not in compared:
        return f"--accept-drop {token}：数据源 {name} 不与上季度比对；可用的数据源：{'、'.join(sorted(compared))}"
    return None


def run_quarter(
    inbox: Path, quarter: str, warehouse: Path, out: Path, memory_limit: str | None = None, instance=None, link_backend: str | None = None,
    region: str = "all", progress: bool = False, accept_drops: list[str] | tuple[str, ...] = (),
) -> RunOutcome:
    """Materialise one quarter of one region through the Dagster job; classify the outcome.

    The paths are the region's own (a `{region}` in them is replaced by the region).
    `progress`: print a line per step as it ends (`pipelines/progress.py`)."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.partitions import partition_key, register_regions
    from pipelines.quarters import Quarter
    from pipelines.recovery import CRASH_ENV, CRASH_LOGGER, WAREHOUSE_TAG, finish_run, recover, start_run
    from warehouse.connection import WarehouseError, connect, warehouse_lock

    started = time.time()
    try:  # a quarter or region the operator mistyped is refused input, like a bad file
        key = partition_key(quarter, region)  # refuses a bad label in the operator's words
        q = Quarter.parse(quarter)
    except ValueError as exc:
        return RunOutcome(str(quarter), EXIT_REFUSED, region=str(region), messages=[str(exc)])
    quarter = str(q)  # the label, for the operator's messages
    bad_drops = [problem for token in accept_drops if (problem := accept_drop_problem(token))]
    if bad_drops:
        return RunOutcome(quarter, EXIT_REFUSED, region=region, messages=bad_drops)
    inbox, warehouse, out = (Path(str(p).replace("{region}", region)) for p in (inbox, warehouse, out))
    if not (inbox / quarter).is_dir():
        return RunOutcome(quarter, EXIT_REFUSED, region=region, messages=[f"收件箱中没有季度文件夹 {inbox / quarter}"])
    quiet_dagster()
    if instance is None:
        prepare_dagster_home()
        instance = dg.DagsterInstance.get()
    register_regions(instance, [region])
    run_config = {
        "resources": {
            "doudi": {"config": {"inbox": str(inbox), "warehouse": str(warehouse), "out": str(out), "memory_limit": memory_limit,
                                 "link_backend": link_backend or os.environ.get("DOUDI_LINK_BACKEND", "duckdb"),
                                 "accept_drops": list(accept_drops)}}
        },
        # The CLI reports the outcome itself; Dagster's event log keeps the details.
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    job = defs.resolve_job_def("quarterly_comparison")
    if progress:
        from pipelines.progress import PROGRESS_LOGGER

        run_config["loggers"][PROGRESS_LOGGER] = {"config": {"total_steps": len(job.graph.node_dict)}}
    if os.environ.get(CRASH_ENV):  # tests/faults/test_crash.py only: kill this run at a named step
        run_config["loggers"][CRASH_LOGGER] = {"config": {"at": os.environ[CRASH_ENV]}}
    recovered: list[str] = []
    try:
        # Check the warehouse opens (key, lock) before starting, so a wrong key touches
        # nothing: an existing warehouse is first opened read-only, which writes no file.
        if warehouse.exists():
            with connect(warehouse, read_only=True):
                pass
        warehouse.parent.mkdir(parents=True, exist_ok=True)  # the lock file sits beside the warehouse
        with warehouse_lock(warehouse):
            # No other run of this warehouse can be alive now: settle what a dead one left
            # (its Dagster run, its audit rows, its temporary files), then record this run.
            run_id = str(uuid.uuid4())
            with connect(warehouse) as con:
                recovered = recover(con, instance, warehouse, out, region, key.keys_by_dimension["quarter"])
                start_run(con, run_id, q, region)
            result = job.execute_in_process(partition_key=key, run_config=run_config, instance=instance,
                                            raise_on_error=False, run_id=run_id, tags={WAREHOUSE_TAG: str(warehouse.resolve())})
            with contextlib.suppress(WarehouseError), connect(warehouse) as con:  # else the next run settles it
                finish_run(con, run_id)
    except WarehouseError as exc:
        return RunOutcome(quarter, EXIT_FAILED, region=region, messages=recovered + [str(exc)], seconds=time.time() - started)
    outcome = RunOutcome(quarter, EXIT_OK if result.success else EXIT_FAILED, region=region, run_id=result.run_id,
                         messages=list(recovered), seconds=time.time() - started)
    if result.success:
        return outcome
    with connect(warehouse, read_only=True) as con:
        refused = con.execute(
            "SELECT source, message FROM audit.ingest_log WHERE run_id = ? AND outcome = 'refused' ORDER BY source, file",
            [result.run_id],
        ).fetchall()
        failed_checks = con.execute(
            "SELECT asset, description FROM audit.check_results WHERE run_id = ? AND blocking AND NOT passed ORDER BY asset",
            [result.run_id],
        ).fetchall()
    if refused or failed_checks:
        outcome.exit_code = EXIT_REFUSED
        outcome.messages += [f"输入被拒收 [{source}] {message}" for source, message in refused]
        outcome.messages += [f"数据检查未通过 [{asset}] {description}" for asset, description in failed_checks]
        outcome.messages.append(f"{quarter} 未发布（marts 中该季度保持原样）")
        return outcome
    outcome.messages += _step_failures(result)[0]
    return outcome


def _step_failures(result) -> tuple[list[str], bool]:
    """The failed steps' messages (redacted), and whether one was an input refusal."""
    messages, refused = [], False
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.step_failure_data
            user = data.user_failure_data if data else None
            if user is not None and user.metadata.get("refused") is not None and user.metadata["refused"].value:
                refused = True
                messages.append(redact(user.description or ""))
                continue
            if user is not None and user.description:  # a dg.Failure says in the operator's words what failed
                messages.append(redact(user.description))
                continue
            error = data.error if data else None
            while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause  # the user code's own exception, not Dagster's wrapper
            detail = f"{error.cls_name}: {error.message.strip().splitlines()[0][:300]}" if error else "unknown error"
            messages.append(f"步骤失败 {event.step_key}: {redact(detail)}")
    return messages, refused


def export_quarter(quarter: str, warehouse: Path, out: Path, region: str = "all") -> tuple[RunOutcome, list[dict], Path | None]:
    """Write the township lists and the report of an already published quarter again, from the
    warehouse (the export assets' own functions, under the warehouse lock); idempotent.
    Returns the outcome, the workbooks written and the report's path."""
    from pipelines.exports.assets import ExportFailed, write_lists, write_report
    from pipelines.partitions import partition_key
    from pipelines.quarters import Quarter
    from warehouse.connection import WarehouseError, connect, table_exists, warehouse_lock

    started = time.time()
    try:
        partition_key(quarter, region)  # refuses a bad label in the operator's words
        q = Quarter.parse(quarter)
    except ValueError as exc:
        return RunOutcome(str(quarter), EXIT_REFUSED, region=str(region), messages=[str(exc)]), [], None
    quarter = str(q)  # the label, for the operator's messages and the warehouse's query
    warehouse, out = (Path(str(p).replace("{region}", region)) for p in (warehouse, out))
    if not warehouse.exists():
        return RunOutcome(quarter, EXIT_REFUSED, region=region, messages=[f"没有数据仓库 {warehouse}"]), [], None
    run_id = f"export-{uuid.uuid4()}"
    try:
        with warehouse_lock(warehouse):
            with connect(warehouse, read_only=True) as con:
                published = table_exists(con, "audit", "publications") and con.execute(
                    "SELECT count(*) FROM audit.publications WHERE quarter = ?", [quarter]).fetchone()[0]
            if not published:
                return RunOutcome(quarter, EXIT_REFUSED, region=region, seconds=time.time() - started, messages=[
                    f"{quarter} 尚未发布（数据仓库 {warehouse} 中没有该季度的发布记录），没有可重写的清单和报告；"
                    f"请先运行 doudi run --quarter {quarter}"]), [], None
            with connect(warehouse) as con:
                written = write_lists(con, run_id, q, out, region)
                report = write_report(con, run_id, q, out, region)
    except (WarehouseError, ExportFailed) as exc:
        return RunOutcome(quarter, EXIT_FAILED, region=region, run_id=run_id, messages=[redact(str(exc))],
                          seconds=time.time() - started), [], None
    return RunOutcome(quarter, EXIT_OK, region=region, run_id=run_id, seconds=time.time() - started), written, report


def run_national_quarter(
    quarter: str, regions: dict[str, Path], warehouse: Path, out: Path, link_backend: str | None = None,
    memory_limit: str | None = None, instance=None,
) -> RunOutcome:
    """Materialise one quarter of the national step (job national_comparison); classify the outcome."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.partitions import quarter_key
    from pipelines.quarters import Quarter

    started = time.time()
    try:
        key = quarter_key(quarter)
        quarter = str(Quarter.parse(quarter))
    except ValueError as exc:
        return RunOutcome(str(quarter), EXIT_REFUSED, region="全国", messages=[str(exc)])
    quiet_dagster()
    if instance is None:
        prepare_dagster_home()
        instance = dg.DagsterInstance.get()
    run_config = {
        "ops": {"national__cross_region": {"config": {"region_warehouses": {r: str(p) for r, p in regions.items()}}}},
        "resources": {
            "doudi": {"config": {"national_warehouse": str(warehouse), "national_out": str(out), "memory_limit": memory_limit,
                                 "link_backend": link_backend or os.environ.get("DOUDI_LINK_BACKEND", "duckdb")}}
        },
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    job = defs.resolve_job_def("national_comparison")
    result = job.execute_in_process(partition_key=key, run_config=run_config, instance=instance, raise_on_error=False)
    outcome = RunOutcome(quarter, EXIT_OK if result.success else EXIT_FAILED, region="全国", run_id=result.run_id,
                         seconds=time.time() - started)
    if not result.success:
        outcome.messages, refused = _step_failures(result)
        if refused:
            outcome.exit_code = EXIT_REFUSED
            outcome.messages.append(f"{quarter} 跨地区比对未发布（全国数据仓库中该季度保持原样）")
    return outcome


def redact(text: str) -> str:
    """Mask anything that looks like an ID number in a message meant for a terminal or log."""
    import re

    return re.sub(r"\d{6}(\d{8})\d{3}[\dXx]|\d{15}", lambda m: m.group(0)[:4] + "*" * (len(m.group(0)) - 8) + m.group(0)[-4:], text)
