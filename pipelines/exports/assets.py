"""Files for people: the township workbooks and the quarterly report.

The assets and `doudi export` (which rewrites an already published quarter's files from the
warehouse) share `write_lists` and `write_report`: the same files, the same audit.exports
rows. A rerun replaces the quarter's rows of its kind in audit.exports (one per file, the
latest run's), and a failure to write says, in Chinese, which step failed and how to write
only the exports again.
"""


import datetime as dt
import errno
from pathlib import Path

import dagster as dg

from pipelines.exports.lists import export_lists
from pipelines.exports.report import export_report
from pipelines.marts.assets import MART_KEYS
from pipelines.partitions import SINGLE_REGION, partition_of, quarter_region
from pipelines.quarters import Quarter
from pipelines.resources import DoudiResource
from warehouse.writes import replace_quarter_rows

LIST_KIND, REPORT_KIND = "township_list", "report"
# What each export step is called in a message, with its asset key.
STEPS = {LIST_KIND: ("核查清单", "exports/township_lists"), REPORT_KIND: ("季度报告", "exports/report")}
OS_REASONS = {
    errno.ENOSPC: "磁盘空间不足",
    errno.EDQUOT: "超出磁盘配额",
    errno.EACCES: "没有写入权限",
    errno.EPERM: "没有写入权限",
    errno.EROFS: "文件系统只读",
    errno.ENAMETOOLONG: "路径过长",
    errno.ENOENT: "输出文件夹不存在或已被移走",
    errno.EIO: "磁盘读写错误",
}


class ExportFailed(RuntimeError):
    """Writing a quarter's files failed after its marts were published; the message, in
    Chinese, names the step and how to redo only the exports (`doudi export`)."""

    def __init__(self, kind: str, quarter: Quarter, region: str, cause: BaseException):
        words, key = STEPS[kind]
        again = f"doudi export --quarter {quarter}" + ("" if region == SINGLE_REGION else f" --region {region}")
        super().__init__(
            f"步骤 {key}（{words}）写入失败：{failure_reason(cause)}。{quarter} 的预警已发布，数据仓库不受影响；"
            f"排除原因后可只重写清单和报告：{again}"
        )


def failure_reason(exc: BaseException) -> str:
    """Why writing failed, in Chinese where it is a known OS error (also when wrapped, as
    xlsxwriter's FileCreateError wraps it)."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in OS_REASONS:
            return f"{OS_REASONS[e.errno]}（{e.filename or ''}）" if e.filename else OS_REASONS[e.errno]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"


def _log(con, run_id: str, quarter: Quarter, kind: str, records: list[dict]) -> None:
    """The quarter's files of this kind, one row each: the rows of earlier runs are replaced
    (the files they name were replaced too), in one transaction."""
    files = [r["file"] for r in records]
    assert len(set(files)) == len(files), "one file is logged twice"
    now = dt.datetime.now()
    rows = [
        {"run_id": run_id, "quarter": str(quarter), "kind": kind, "county_code": r.get("county_code"), "township": r.get("township"),
         "file": r["file"], "rows": r.get("rows"), "households": r.get("households"), "written_at": now}
        for r in records
    ]
    replace_quarter_rows(con, "audit.exports", quarter, rows, where={"kind": kind})


def write_lists(con, run_id: str, quarter: Quarter, out_dir: Path, region: str = SINGLE_REGION) -> list[dict]:
    """The township workbooks of a published quarter, logged; ExportFailed if writing fails."""
    try:
        written = export_lists(con, quarter, out_dir)
    except Exception as exc:
        raise ExportFailed(LIST_KIND, quarter, region, exc) from exc
    _log(con, run_id, quarter, LIST_KIND, written)
    return written


def write_report(con, run_id: str, quarter: Quarter, out_dir: Path, region: str = SINGLE_REGION) -> Path:
    """The quarter's report, logged; ExportFailed if writing fails."""
    try:
        path = export_report(con, quarter, out_dir)
    except Exception as exc:
        raise ExportFailed(REPORT_KIND, quarter, region, exc) from exc
    _log(con, run_id, quarter, REPORT_KIND, [{"file": str(path)}])
    return path


@dg.asset(
    key=dg.AssetKey(["exports", "township_lists"]),
    deps=[MART_KEYS["warnings"], MART_KEYS["household_cases"]],
    partitions_def=quarter_region,
    group_name="exports",
    kinds={"excel"},
    description="每个乡镇（街道）一份核查清单：OUT/<季度>/lists/<区县代码>/<乡镇代码>_<乡镇>.xlsx",
)
def township_lists(context: dg.AssetExecutionContext, doudi: DoudiResource) -> dg.MaterializeResult:
    quarter, region = partition_of(context)
    with doudi.connect(region) as con:
        try:
            written = write_lists(con, context.run_id, quarter, doudi.out_dir(region), region)
        except ExportFailed as exc:
            raise dg.Failure(description=str(exc)) from exc
    folder = doudi.out_dir(region) / str(quarter) / "lists"
    return dg.MaterializeResult(metadata={"workbooks": len(written), "rows": sum(w["rows"] for w in written), "folder": str(folder)})


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
    with doudi.connect(region) as con:
        try:
            path = write_report(con, context.run_id, quarter, doudi.out_dir(region), region)
        except ExportFailed as exc:
            raise dg.Failure(description=str(exc)) from exc
    return dg.MaterializeResult(metadata={"path": str(path)})


EXPORT_ASSETS = [township_lists, quarterly_report]
