"""Files for people: the township workbooks and the quarterly report."""


import datetime as dt

import dagster as dg

from pipelines.exports.lists import export_lists
from pipelines.exports.report import export_report
from pipelines.marts.assets import MART_KEYS
from pipelines.partitions import partition_of, quarter_region
from pipelines.resources import DoudiResource


def _log(con, run_id: str, quarter: str, kind: str, records: list[dict]) -> None:
    now = dt.datetime.now()
    con.execute("DELETE FROM audit.exports WHERE quarter = ? AND kind = ? AND run_id = ?", [quarter, kind, run_id])
    for r in records:
        con.execute(
            "INSERT INTO audit.exports VALUES (?,?,?,?,?,?,?,?,?)",
            [run_id, quarter, kind, r.get("county_code"), r.get("township"), r["file"], r.get("rows"), r.get("households"), now],
        )


@dg.asset(
    key=dg.AssetKey(["exports", "township_lists"]),
    deps=[MART_KEYS["warnings"], MART_KEYS["household_cases"]],
    partitions_def=quarter_region,
    group_name="exports",
    kinds={"excel"},
    description="每个乡镇（街道）一份核查清单：OUT/<季度>/lists/<区县代码>/<乡镇>.xlsx",
)
def township_lists(context: dg.AssetExecutionContext, doudi: DoudiResource) -> dg.MaterializeResult:
    quarter, region = partition_of(context)
    quarter = str(quarter)
    with doudi.connect(region) as con:
        written = export_lists(con, quarter, doudi.out_dir(region))
        _log(con, context.run_id, quarter, "township_list", written)
    return dg.MaterializeResult(
        metadata={"workbooks": len(written), "rows": sum(w["rows"] for w in written), "folder": str(doudi.out_dir(region) / quarter / "lists")}
    )


@dg.asset(
    key=dg.AssetKey(["exports", "report"]),
    deps=[MART_KEYS["quarterly_comparison"], MART_KEYS["warnings"]],
    partitions_def=quarter_region,
    group_name="exports",
    kinds={"html"},
    description="季度对比报告：OUT/<季度>/report.html（单文件，离线可读，不含个人信息）",
)
def quarterly_report(context: dg.AssetExecutionContext, doudi: DoudiResource) -> dg.MaterializeResult:
    quarter, region = partition_of(context)
    quarter = str(quarter)
    with doudi.connect(region) as con:
        path = export_report(con, quarter, doudi.out_dir(region))
        _log(con, context.run_id, quarter, "report", [{"file": str(path)}])
    return dg.MaterializeResult(metadata={"path": str(path)})


EXPORT_ASSETS = [township_lists, quarterly_report]
