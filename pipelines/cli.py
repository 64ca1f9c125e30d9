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

import json
import os
import shutil
import sys
import warnings
from pathlib import Path

from pipelines.commands import build_parser, fill_env_defaults
from pipelines.run import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    RunOutcome,
    export_quarter,
    prepare_dagster_home,
    quiet_dagster,
    run_national_quarter,
    run_quarter,
)


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


def cmd_whatif(args) -> int:
    from pipelines.quarters import quarter_range
    from pipelines.whatif.replay import ReplayError, ReplayRequest, run_replay

    try:
        quarters = quarter_range(args.quarters)
    except ValueError as exc:
        print(f"拒绝：--quarters {args.quarters}：{exc}", file=sys.stderr)
        return EXIT_REFUSED
    request = ReplayRequest(Path(args.warehouse), quarters, list(args.changes), Path(args.out),
                            Path(args.parameters_dir) if args.parameters_dir else None, args.full)
    try:
        result = run_replay(request)
    except ReplayError as exc:
        print(f"拒绝：{exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"政策模拟完成（{result.seconds:.1f} 秒）：新增预警 {result.gained:,} 条，减少 {result.lost:,} 条")
    for name, path in result.files.items():
        print(f"  {name}: {path.resolve()}")
    return EXIT_OK


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
    from devtools.synth.generate import RegionSplit, generate
    from devtools.synth.geography import COUNTRY_COUNTIES
    from pipelines.quarters import quarter_range

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

    from devtools.evaluate import evaluate, hazard_links

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
    from devtools.synth.generate import generate
    from pipelines.quarters import quarter_range

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
    from devtools.bench import print_summary, run_bench

    quiet_dagster()
    summary = run_bench(args.scale, args.seed, Path(args.cache), args.repeat, args.quarters, args.memory_limit,
                        Path(args.json) if args.json else None)
    print_summary(summary)
    if args.json:
        print(f"\nJSON: {Path(args.json).resolve()}")
    return EXIT_OK


def cmd_compare_linkage(args) -> int:
    from devtools.compare_linkage import compare, print_comparison

    quiet_dagster()
    print_comparison(compare(Path(args.inbox), args.quarter, args.memory_limit))
    return EXIT_OK


def cmd_docs(args) -> int:
    from pipelines.reference import docs_command

    return docs_command(check=args.check)


def cmd_ui(args) -> int:
    import subprocess

    home = prepare_dagster_home()
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


HANDLERS = {
    "demo": cmd_demo,
    "synth": cmd_synth,
    "run": cmd_run,
    "export": cmd_export,
    "national": cmd_national,
    "whatif": cmd_whatif,
    "evaluate": cmd_evaluate,
    "bench": cmd_bench,
    "compare_linkage": cmd_compare_linkage,
    "docs": cmd_docs,
    "ui": cmd_ui,
}


def main(argv: list[str] | None = None) -> int:
    # Great Expectations imports pyspark when it is installed (the Spark backend's), and
    # pyspark warns about the pandas version at import: nothing a user of doudi can act on.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    args = fill_env_defaults(build_parser().parse_args(argv))
    return HANDLERS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
