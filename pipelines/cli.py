"""The `doudi` command: demo, synth, run, evaluate, ui.

`doudi run` materialises one (quarter, region) partition through the same Dagster
definitions the schedule, the sensor and the UI use, in process; without `--region` the
region is `all` and the inbox, warehouse and output folder are exactly the paths given.
`doudi national` runs the cross-region step of a quarter over the regions' warehouses.
`doudi export` writes the township lists and the report of a published quarter again, from
the warehouse alone (after a run whose exports failed, e.g. on a full disk).
Exit codes: 0 success; 2 input refused (the message names the file and the column or check
that failed, or the region whose warehouse is missing or unpublished; nothing of the quarter
is published); 1 anything else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parent.parent


def _prepare_dagster_home() -> Path:
    """A DAGSTER_HOME holding the project's dagster.yaml, so CLI runs show in the UI."""
    home = Path(os.environ.get("DAGSTER_HOME") or os.environ.get("DOUDI_DAGSTER_HOME") or "var/dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(REPO_ROOT / "dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _quiet_dagster() -> None:
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
        key = partition_key(quarter, region)
        quarter = str(Quarter.parse(quarter))
    except ValueError as exc:
        return RunOutcome(str(quarter), EXIT_REFUSED, region=str(region), messages=[str(exc)])
    bad_drops = [problem for token in accept_drops if (problem := accept_drop_problem(token))]
    if bad_drops:
        return RunOutcome(quarter, EXIT_REFUSED, region=region, messages=bad_drops)
    inbox, warehouse, out = (Path(str(p).replace("{region}", region)) for p in (inbox, warehouse, out))
    if not (inbox / quarter).is_dir():
        return RunOutcome(quarter, EXIT_REFUSED, region=region, messages=[f"收件箱中没有季度文件夹 {inbox / quarter}"])
    _quiet_dagster()
    if instance is None:
        _prepare_dagster_home()
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
                start_run(con, run_id, quarter, region)
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
        partition_key(quarter, region)
        quarter = str(Quarter.parse(quarter))
    except ValueError as exc:
        return RunOutcome(str(quarter), EXIT_REFUSED, region=str(region), messages=[str(exc)]), [], None
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
                written = write_lists(con, run_id, quarter, out, region)
                report = write_report(con, run_id, quarter, out, region)
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
    _quiet_dagster()
    if instance is None:
        _prepare_dagster_home()
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


def _print_outcome(outcome: RunOutcome) -> None:
    status = {EXIT_OK: "完成", EXIT_REFUSED: "输入被拒收", EXIT_FAILED: "失败"}[outcome.exit_code]
    where = "" if outcome.region == "all" else f" [{outcome.region}]"
    print(f"{outcome.quarter}{where}: {status}（{outcome.seconds:.1f} 秒）", file=sys.stderr if outcome.exit_code else sys.stdout)
    for message in outcome.messages:
        print(f"  {message}", file=sys.stderr)


def cmd_run(args) -> int:
    from pipelines.progress import print_summary, read_summary
    from warehouse.connection import published_copy_path

    if not args.quiet:
        print(f"{args.quarter}{'' if args.region == 'all' else f' [{args.region}]'}：开始运行", flush=True)
    outcome = run_quarter(Path(args.inbox), args.quarter, Path(args.warehouse), Path(args.out), args.memory_limit,
                          link_backend=args.link_backend, region=args.region, progress=not args.quiet,
                          accept_drops=args.accept_drop)
    _print_outcome(outcome)
    warehouse, out = (Path(p.replace("{region}", outcome.region)) for p in (args.warehouse, args.out))
    summary = read_summary(warehouse, outcome)
    print_summary(summary)
    if outcome.exit_code == EXIT_OK:
        print(f"  warehouse: {warehouse.resolve()}")
        print(f"  lists:     {(out / outcome.quarter / 'lists').resolve()}")
        print(f"  report:    {(out / outcome.quarter / 'report.html').resolve()}")
        print(f"  analysts:  {published_copy_path(warehouse.resolve())}（分析人员只读打开的发布副本）")
    if args.json:
        Path(args.json).write_text(json.dumps(summary.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    return outcome.exit_code


def cmd_export(args) -> int:
    outcome, written, report = export_quarter(args.quarter, Path(args.warehouse), Path(args.out), region=args.region)
    _print_outcome(outcome)
    if outcome.exit_code == EXIT_OK:
        out = Path(args.out.replace("{region}", outcome.region))
        print(f"  核查清单 {len(written)} 份，{sum(w['rows'] for w in written):,} 行：{(out / outcome.quarter / 'lists').resolve()}")
        print(f"  季度报告：{report.resolve()}")
    return outcome.exit_code


def cmd_national(args) -> int:
    from pipelines.national.compare import NationalRefused, warehouses_from_glob

    regions: dict[str, Path] = {}
    try:
        if args.warehouse_glob:
            regions.update(warehouses_from_glob(args.warehouse_glob))
        for item in args.region_warehouse or []:
            region, sep, path = item.partition("=")
            if not sep or not region or not path:
                raise NationalRefused([f"--region-warehouse {item!r}：应写作 地区=数据仓库路径，例如 14=var/regions/14/doudi.duckdb"])
            if region in regions:
                raise NationalRefused([f"地区 {region} 给出了两次"])
            regions[region] = Path(path)
    except NationalRefused as refused:
        for problem in refused.problems:
            print(f"  输入被拒收 {problem}", file=sys.stderr)
        return EXIT_REFUSED
    outcome = run_national_quarter(args.quarter, regions, Path(args.national_warehouse), Path(args.national_out), args.link_backend,
                                   args.memory_limit)
    _print_outcome(outcome)
    if outcome.exit_code == EXIT_OK:
        from warehouse.connection import connect

        with connect(Path(args.national_warehouse), read_only=True) as con:
            row = con.execute(
                "SELECT regions, members, death_records, roster_duplicates, death_links, seconds FROM national.runs "
                "WHERE run_id = ?", [outcome.run_id]).fetchone()
            by_rule = dict(con.execute("SELECT rule_code, count(*) FROM national.warnings WHERE quarter = ? GROUP BY ALL",
                                       [outcome.quarter]).fetchall())
        regions_done, members, deaths, duplicates, death_links, seconds = row
        print(f"  地区 {len(regions_done)} 个（{'、'.join(regions_done)}），花名册成员 {members:,} 行，死亡记录 {deaths:,} 条")
        print(f"  跨地区重复享受 {duplicates} 对，外地登记死亡的比对结果 {death_links} 条；"
              f"预警 D03 {by_rule.get('D03', 0)} 条，D01 {by_rule.get('D01', 0)} 条")
        stages = {"union": "合并", "link": "比对", "rules": "规则"}
        print("  用时：" + "，".join(f"{stages.get(k, k)} {v:.1f} 秒" for k, v in json.loads(seconds).items()))
        print(f"  warehouse: {Path(args.national_warehouse).resolve()}")
        print(f"  lists:     {(Path(args.national_out) / outcome.quarter).resolve()}/<地区>/跨地区比对.xlsx")
    return outcome.exit_code


def cmd_synth(args) -> int:
    from pipelines.quarters import quarter_range
    from pipelines.synth.generate import RegionSplit, generate
    from pipelines.synth.geography import COUNTRY_COUNTIES

    country = {"regions": RegionSplit(), "counties": COUNTRY_COUNTIES} if args.country else {}
    summary = generate(Path(args.out), quarter_range(args.quarters), households=args.households, seed=args.seed, **country)
    what = f"synthetic country, one inbox per province ({', '.join(summary['regions'])})" if args.country else "synthetic province"
    print(f"{what} written to {Path(args.out).resolve()} ({', '.join(summary['quarters'])})")
    print(f"  truth: {(Path(args.out) / 'truth').resolve()}")
    for quarter, counts in summary["rows_delivered"].items():
        print(f"  {quarter}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return EXIT_OK


def print_evaluation(truth: Path, warehouse: Path) -> None:
    import polars as pl

    from pipelines.evaluate import evaluate, hazard_links

    warnings, links = evaluate(truth, warehouse)
    hazards = hazard_links(truth, warehouse)
    with pl.Config(tbl_rows=50, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, tbl_width_chars=160):
        print("\nwarnings against the generator's truth (all published quarters):")
        print(warnings)
        print("\nlinks against the generator's truth:")
        print(links)
        if hazards is not None:
            print("\nidentity hazards (truth/hazards.csv): records linked, and held as identity conflicts (Q02):")
            print(hazards)


def cmd_evaluate(args) -> int:
    print_evaluation(Path(args.truth), Path(args.warehouse))
    return EXIT_OK


def cmd_demo(args) -> int:
    from pipelines.quarters import quarter_range
    from pipelines.synth.generate import generate

    root = Path(args.dir)
    inbox, warehouse, out = root / "inbox", root / "warehouse.duckdb", root / "out"
    if root.exists():
        shutil.rmtree(root)
    quarters = quarter_range(args.quarters)
    print(f"生成合成数据：{len(quarters)} 个季度，约 {args.households:,} 户 …")
    generate(inbox, quarters, households=args.households, seed=args.seed)
    code = EXIT_OK
    for quarter in quarters:
        outcome = run_quarter(inbox, str(quarter), warehouse, out)
        _print_outcome(outcome)
        code = max(code, outcome.exit_code)
        if outcome.exit_code:
            break
    print(f"\nwarehouse: {warehouse.resolve()}")
    print(f"lists:     {(out).resolve()}/<季度>/lists/<区县代码>/<乡镇代码>_<乡镇>.xlsx")
    for quarter in quarters:
        print(f"report:    {(out / str(quarter) / 'report.html').resolve()}")
    print(f"truth:     {(inbox / 'truth').resolve()}")
    if code == EXIT_OK:
        print_evaluation(inbox / "truth", warehouse)
    return code


def cmd_bench(args) -> int:
    from pipelines.bench import print_summary, run_bench

    _quiet_dagster()
    summary = run_bench(args.scale, args.seed, Path(args.cache), args.repeat, args.quarters, args.memory_limit,
                        Path(args.json) if args.json else None)
    print_summary(summary)
    if args.json:
        print(f"\nJSON: {Path(args.json).resolve()}")
    return EXIT_OK


def cmd_compare_linkage(args) -> int:
    from pipelines.link.compare import compare, print_comparison

    _quiet_dagster()
    print_comparison(compare(Path(args.inbox), args.quarter, args.memory_limit))
    return EXIT_OK


def cmd_docs(args) -> int:
    from pipelines.reference import docs_command

    return docs_command(check=args.check)


def cmd_ui(args) -> int:
    import subprocess

    home = _prepare_dagster_home()
    env = dict(os.environ, DAGSTER_HOME=str(home))
    # `dagster dev` warns that it is superseded by `dg dev`, which needs a dg project
    # layout this repository does not use; it is still Dagster's supported way to run the
    # webserver and the daemon together. Run from DAGSTER_HOME: Dagster warns when the
    # working folder holds a dagster.yaml (the repository's) other than DAGSTER_HOME's.
    command = [sys.executable, "-W", "ignore:Function `dev_command` is superseded", "-m", "dagster", "dev",
               "-m", "pipelines.definitions", "-h", args.host, "-p", str(args.port)]
    print(f"Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={home})")
    process = subprocess.Popen(command, env=env, cwd=home)
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches Dagster too, which shuts its services down
        return process.wait()


# Options whose default an environment variable may set: (variable, built-in default). The
# parser's defaults stay None and are filled after parsing, so `--help` (and docs/cli.md)
# show the same text whatever the environment.
ENV_DEFAULTS = {
    "warehouse": ("DOUDI_WAREHOUSE", "var/doudi.duckdb"),
    "out": ("DOUDI_OUT", "var/out"),
    "memory_limit": ("DOUDI_MEMORY_LIMIT", None),
    "link_backend": ("DOUDI_LINK_BACKEND", "duckdb"),
    "national_warehouse": ("DOUDI_NATIONAL_WAREHOUSE", "var/national/warehouse.duckdb"),
    "national_out": ("DOUDI_NATIONAL_OUT", "var/national/out"),
}


def _env_option(parser: argparse.ArgumentParser, flag: str, dest: str, help: str, **kwargs) -> None:
    variable, fallback = ENV_DEFAULTS[dest]
    default = f"默认：环境变量 {variable}，未设置时 {fallback}" if fallback else f"默认：环境变量 {variable}，未设置时不限"
    parser.add_argument(flag, dest=dest, default=None, help=f"{help}（{default}）", **kwargs)


def _fill_env_defaults(args: argparse.Namespace) -> argparse.Namespace:
    for dest, (variable, fallback) in ENV_DEFAULTS.items():
        if hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, os.environ.get(variable) or fallback)
    return args


def build_parser() -> argparse.ArgumentParser:
    """The command line (also the source of docs/cli.md: `doudi docs`)."""
    parser = argparse.ArgumentParser(
        prog="doudi", description="兜底：低收入人口数据比对与预警。退出码：0 成功；2 输入被拒收（信息指明文件、列或检查）；1 其他错误。",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    quarter_help = "季度，写作 2025Q3"
    memory_help = "DuckDB 可用内存上限，例如 6GB"
    backend_help = "Splink 在哪里计算候选记录对：duckdb（本机）或 spark（DOUDI_SPARK_MASTER，见 docs/scale-out.md）"
    seed_help = "随机种子：同一种子生成同样的数据"

    p = sub.add_parser("demo", help="合成一个省的数据，逐季度运行全部流程，给出清单、报告位置和对照真值的评估")
    p.add_argument("--dir", default="demo", help="演示文件夹（先清空）：inbox/、warehouse.duckdb、out/（默认：%(default)s）")
    p.add_argument("--households", type=int, default=5000, help="合成的家庭户数（默认：%(default)s）")
    p.add_argument("--quarters", default="2025Q1:2025Q4", help="季度范围，写作 起:止（默认：%(default)s）")
    p.add_argument("--seed", type=int, default=20250101, help=f"{seed_help}（默认：%(default)s）")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="按收件箱格式写合成数据，另写 truth/（应有的比对结果和预警）")
    p.add_argument("--out", required=True, help="收件箱文件夹（写入 <季度>/<数据源>/ 与 truth/）")
    p.add_argument("--quarters", default="2025Q1:2025Q4", help="季度范围，写作 起:止（默认：%(default)s）")
    p.add_argument("--households", type=int, default=5000, help="合成的家庭户数（默认：%(default)s）")
    p.add_argument("--seed", type=int, default=20250101, help=f"{seed_help}（默认：%(default)s）")
    p.add_argument("--country", action="store_true",
                   help="合成三个省（14、41、13），每省一个收件箱 OUT/<省>/，供 doudi run --region 和 doudi national 使用")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("run", help="经 Dagster 资产运行一个季度（一个地区）：接收、比对、预警、发布、清单与报告")
    p.add_argument("--inbox", required=True, help="收件箱文件夹，内含 <季度>/<数据源>/*.csv|*.xlsx（见 docs/inbox.md）")
    p.add_argument("--quarter", required=True, help=quarter_help)
    _env_option(p, "--warehouse", "warehouse", "数据仓库文件（DuckDB）")
    _env_option(p, "--out", "out", "输出文件夹：<季度>/lists/ 核查清单、<季度>/report.html 季度报告")
    _env_option(p, "--memory-limit", "memory_limit", memory_help)
    _env_option(p, "--link-backend", "link_backend", backend_help, choices=["duckdb", "spark"])
    p.add_argument("--region", default="all",
                   help="收件箱、数据仓库和输出文件夹所属的地区（Dagster 分区；路径中的 {region} 替换为它）（默认：%(default)s）")
    p.add_argument("--json", metavar="FILE", help="另把运行摘要（各数据源行数、比对、预警、未通过的检查）写成 JSON 文件")
    p.add_argument("--quiet", action="store_true", help="不显示每个步骤的进度，只显示结果和摘要")
    p.add_argument("--accept-drop", action="append", default=[], metavar="SOURCE:COUNTY",
                   help="确认某数据源比上季度少得多是真实情况（如区县合并），本次照常发布并记入 audit.accepted_drops；"
                        "COUNTY 为区县代码、无数据行的文件名（不含扩展名）或 *（该数据源全部）；可写多次")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("export", help="从数据仓库重写一个已发布季度（一个地区）的核查清单和季度报告，不重跑其他步骤；可重复运行")
    p.add_argument("--quarter", required=True, help=quarter_help)
    _env_option(p, "--warehouse", "warehouse", "数据仓库文件（DuckDB）")
    _env_option(p, "--out", "out", "输出文件夹：<季度>/lists/ 核查清单、<季度>/report.html 季度报告")
    p.add_argument("--region", default="all",
                   help="数据仓库和输出文件夹所属的地区（路径中的 {region} 替换为它）（默认：%(default)s）")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("national", help="在各地区数据仓库之上做一个季度的跨地区比对（D03、外地登记死亡的 D01）")
    p.add_argument("--quarter", required=True, help=quarter_help)
    p.add_argument("--warehouse-glob", help="各地区的数据仓库，* 代表地区，例如 'var/regions/*/doudi.duckdb'")
    p.add_argument("--region-warehouse", action="append", metavar="REGION=FILE", help="一个地区的数据仓库（每个地区写一次）")
    _env_option(p, "--national-warehouse", "national_warehouse", "全国数据仓库文件")
    _env_option(p, "--out", "national_out", "输出文件夹：<季度>/<地区>/跨地区比对.xlsx")
    _env_option(p, "--memory-limit", "memory_limit", memory_help)
    _env_option(p, "--link-backend", "link_backend", backend_help, choices=["duckdb", "spark"])
    p.set_defaults(func=cmd_national)

    p = sub.add_parser("evaluate", help="对照合成数据的真值，给出预警和比对的准确率与召回率")
    p.add_argument("--truth", required=True, help="合成数据的 truth/ 文件夹")
    p.add_argument("--warehouse", required=True, help="运行过这些季度的数据仓库")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="按规模计时一个季度的全流程，逐阶段给出用时、每秒行数和内存")
    p.add_argument("--scale", choices=["county", "city", "province"], default="county", help="规模（默认：%(default)s）")
    p.add_argument("--repeat", type=int, default=3, help="计时季度运行的次数，表中取中位数（默认：%(default)s）")
    p.add_argument("--quarters", default="2025Q1:2025Q2", help="季度范围；计时最后一个，之前的先装入历史（默认：%(default)s）")
    p.add_argument("--seed", type=int, default=20250101, help=f"{seed_help}（默认：%(default)s）")
    p.add_argument("--cache", default="bench-cache", help="合成数据和工作数据仓库的存放处（默认：%(default)s）")
    _env_option(p, "--memory-limit", "memory_limit", memory_help)
    p.add_argument("--json", default=None, metavar="FILE", help="另把结果写成 JSON 文件")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("compare-linkage", help="在合成收件箱上比较只按身份证号连接与 doudi 的比对，对照真值打分")
    p.add_argument("--inbox", required=True, help="doudi synth 写的收件箱（含 truth/）")
    p.add_argument("--quarter", required=True, help=quarter_help)
    _env_option(p, "--memory-limit", "memory_limit", memory_help)
    p.set_defaults(func=cmd_compare_linkage)

    p = sub.add_parser("docs", help="重新生成 docs/ 中由代码生成的参考页（命令行、规则与参数、收件箱各列、输出各表）")
    p.add_argument("--check", action="store_true", help="只检查：有过期的页面时列出它们并以 1 退出")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("ui", help="在本机打开 Dagster 界面（webserver 和 daemon）")
    p.add_argument("--host", default="127.0.0.1", help="监听地址（默认：%(default)s）")
    p.add_argument("--port", type=int, default=3000, help="端口（默认：%(default)s）")
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Great Expectations imports pyspark when it is installed (the Spark backend's), and
    # pyspark warns about the pandas version at import: nothing a user of doudi can act on.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    args = _fill_env_defaults(build_parser().parse_args(argv))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
