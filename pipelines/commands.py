"""The `doudi` command line's grammar: sub-commands, options and their help (in Chinese,
for the operator). Kept apart from the handlers (`pipelines.cli`) so that the generated
reference page (docs/cli.md, `pipelines.reference`) reads the grammar without importing
what the commands do. Each sub-command sets `command` to the name of its handler in
`pipelines.cli.HANDLERS`.
"""

from __future__ import annotations

import argparse
import os

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


def env_option(parser: argparse.ArgumentParser, flag: str, dest: str, help: str, **kwargs) -> None:
    variable, fallback = ENV_DEFAULTS[dest]
    default = f"默认：环境变量 {variable}，未设置时 {fallback}" if fallback else f"默认：环境变量 {variable}，未设置时不限"
    parser.add_argument(flag, dest=dest, default=None, help=f"{help}（{default}）", **kwargs)


def fill_env_defaults(args: argparse.Namespace) -> argparse.Namespace:
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
    p.set_defaults(command="demo")

    p = sub.add_parser("synth", help="按收件箱格式写合成数据，另写 truth/（应有的比对结果和预警）")
    p.add_argument("--out", required=True, help="收件箱文件夹（写入 <季度>/<数据源>/ 与 truth/）")
    p.add_argument("--quarters", default="2025Q1:2025Q4", help="季度范围，写作 起:止（默认：%(default)s）")
    p.add_argument("--households", type=int, default=5000, help="合成的家庭户数（默认：%(default)s）")
    p.add_argument("--seed", type=int, default=20250101, help=f"{seed_help}（默认：%(default)s）")
    p.add_argument("--country", action="store_true",
                   help="合成三个省（14、41、13），每省一个收件箱 OUT/<省>/，供 doudi run --region 和 doudi national 使用")
    p.set_defaults(command="synth")

    p = sub.add_parser("run", help="经 Dagster 资产运行一个季度（一个地区）：接收、比对、预警、发布、清单与报告")
    p.add_argument("--inbox", required=True, help="收件箱文件夹，内含 <季度>/<数据源>/*.csv|*.xlsx（见 docs/inbox.md）")
    p.add_argument("--quarter", required=True, help=quarter_help)
    env_option(p, "--warehouse", "warehouse", "数据仓库文件（DuckDB）")
    env_option(p, "--out", "out", "输出文件夹：<季度>/lists/ 核查清单、<季度>/report.html 季度报告")
    env_option(p, "--memory-limit", "memory_limit", memory_help)
    env_option(p, "--link-backend", "link_backend", backend_help, choices=["duckdb", "spark"])
    p.add_argument("--region", default="all",
                   help="收件箱、数据仓库和输出文件夹所属的地区（Dagster 分区；路径中的 {region} 替换为它）（默认：%(default)s）")
    p.add_argument("--json", metavar="FILE", help="另把运行摘要（各数据源行数、比对、预警、未通过的检查）写成 JSON 文件")
    p.add_argument("--quiet", action="store_true", help="不显示每个步骤的进度，只显示结果和摘要")
    p.add_argument("--accept-drop", action="append", default=[], metavar="SOURCE:COUNTY",
                   help="确认某数据源比上季度少得多是真实情况（如区县合并），本次照常发布并记入 audit.accepted_drops；"
                        "COUNTY 为区县代码、无数据行的文件名（不含扩展名）或 *（该数据源全部）；可写多次")
    p.set_defaults(command="run")

    p = sub.add_parser("export", help="从数据仓库重写一个已发布季度（一个地区）的核查清单和季度报告，不重跑其他步骤；可重复运行")
    p.add_argument("--quarter", required=True, help=quarter_help)
    env_option(p, "--warehouse", "warehouse", "数据仓库文件（DuckDB）")
    env_option(p, "--out", "out", "输出文件夹：<季度>/lists/ 核查清单、<季度>/report.html 季度报告")
    p.add_argument("--region", default="all",
                   help="数据仓库和输出文件夹所属的地区（路径中的 {region} 替换为它）（默认：%(default)s）")
    p.set_defaults(command="export")

    p = sub.add_parser("whatif", help="政策模拟：按调整后的参数重跑已发布季度的预警规则（不重跑接收和比对），"
                                      "给出各季度、规则、区县新增和减少的预警及涉及金额；不改动已发布的数据")
    env_option(p, "--warehouse", "warehouse", "数据仓库文件（DuckDB，只读打开）")
    p.add_argument("--quarters", required=True, help="已发布的季度范围，写作 起:止（如 2025Q1:2025Q4）或一个季度")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="NAME=VALUE",
                   help="调整一个参数：参数名=值（整个模拟期间适用），或 参数名@YYYY-MM-DD=值（自该日起的新值）；"
                        "参数名如 expenditure_poverty.financial_asset_limit_months（见 docs/rules.md）；可写多次")
    p.add_argument("--parameters", dest="parameters_dir", metavar="DIR", help="用另一整套参数文件夹代替内置参数（格式同 pipelines/policy/parameters/）")
    p.add_argument("--out", required=True, help="输出文件夹（整体替换）：summary.csv、households.csv、whatif.html")
    p.add_argument("--full", action="store_true", help="户名单写完整姓名和身份证号（默认按 marts.warnings_masked 脱敏）")
    p.set_defaults(command="whatif")

    p = sub.add_parser("national", help="在各地区数据仓库之上做一个季度的跨地区比对（D03、外地登记死亡的 D01）")
    p.add_argument("--quarter", required=True, help=quarter_help)
    p.add_argument("--warehouse-glob", help="各地区的数据仓库，* 代表地区，例如 'var/regions/*/doudi.duckdb'")
    p.add_argument("--region-warehouse", action="append", metavar="REGION=FILE", help="一个地区的数据仓库（每个地区写一次）")
    env_option(p, "--national-warehouse", "national_warehouse", "全国数据仓库文件")
    env_option(p, "--out", "national_out", "输出文件夹：<季度>/<地区>/跨地区比对.xlsx")
    env_option(p, "--memory-limit", "memory_limit", memory_help)
    env_option(p, "--link-backend", "link_backend", backend_help, choices=["duckdb", "spark"])
    p.set_defaults(command="national")

    p = sub.add_parser("evaluate", help="对照合成数据的真值，给出预警和比对的准确率与召回率")
    p.add_argument("--truth", required=True, help="合成数据的 truth/ 文件夹")
    p.add_argument("--warehouse", required=True, help="运行过这些季度的数据仓库")
    p.set_defaults(command="evaluate")

    p = sub.add_parser("bench", help="按规模计时一个季度的全流程，逐阶段给出用时、每秒行数和内存")
    p.add_argument("--scale", choices=["county", "city", "province"], default="county", help="规模（默认：%(default)s）")
    p.add_argument("--repeat", type=int, default=3, help="计时季度运行的次数，表中取中位数（默认：%(default)s）")
    p.add_argument("--quarters", default="2025Q1:2025Q2", help="季度范围；计时最后一个，之前的先装入历史（默认：%(default)s）")
    p.add_argument("--seed", type=int, default=20250101, help=f"{seed_help}（默认：%(default)s）")
    p.add_argument("--cache", default="bench-cache", help="合成数据和工作数据仓库的存放处（默认：%(default)s）")
    env_option(p, "--memory-limit", "memory_limit", memory_help)
    p.add_argument("--json", default=None, metavar="FILE", help="另把结果写成 JSON 文件")
    p.set_defaults(command="bench")

    p = sub.add_parser("compare-linkage", help="在合成收件箱上比较只按身份证号连接与 doudi 的比对，对照真值打分")
    p.add_argument("--inbox", required=True, help="doudi synth 写的收件箱（含 truth/）")
    p.add_argument("--quarter", required=True, help=quarter_help)
    env_option(p, "--memory-limit", "memory_limit", memory_help)
    p.set_defaults(command="compare_linkage")

    p = sub.add_parser("docs", help="重新生成 docs/ 中由代码生成的参考页（命令行、规则与参数、收件箱各列、输出各表）")
    p.add_argument("--check", action="store_true", help="只检查：有过期的页面时列出它们并以 1 退出")
    p.set_defaults(command="docs")

    p = sub.add_parser("ui", help="在本机打开 Dagster 界面（webserver 和 daemon）")
    p.add_argument("--host", default="127.0.0.1", help="监听地址（默认：%(default)s）")
    p.add_argument("--port", type=int, default=3000, help="端口（默认：%(default)s）")
    p.set_defaults(command="ui")
    return parser
