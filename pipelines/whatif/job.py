"""The policy replay as a Dagster job (`policy_replay`), so an analyst can run it from the UI.

The run config names the changes exactly as `doudi whatif` takes them:

    ops:
      replay_rules:
        config:
          quarters: 2025Q1:2025Q4
          changes: ["expenditure_poverty.financial_asset_limit_months=48"]
          out: var/whatif/asset-limit-48      # optional: var/whatif/<run id> beside DOUDI_OUT
          region: all
          full: false

A refusal (an unknown parameter, a bad value, a quarter not published) fails the run with
the same Chinese message `doudi whatif` prints, before anything is read or written. The
warehouse is only read: the job runs beside quarterly runs of other regions, and an
analyst's replay cannot change what caseworkers were sent.
"""

# No `from __future__ import annotations` here: Dagster reads the op's `config: ReplayConfig`
# annotation at definition time, and a string annotation does not resolve.
from pathlib import Path

import dagster as dg

from pipelines.partitions import SINGLE_REGION
from pipelines.quarters import quarter_range
from pipelines.resources import DoudiResource
from pipelines.whatif.replay import ReplayError, ReplayRequest, run_replay


class ReplayConfig(dg.Config):
    quarters: str  # 2025Q1:2025Q4, or one quarter
    changes: list[str] = []  # NAME=VALUE or NAME@YYYY-MM-DD=VALUE, as `doudi whatif --set`
    parameters_dir: str | None = None  # a whole alternative parameter folder
    out: str | None = None
    region: str = SINGLE_REGION
    full: bool = False  # names and ID numbers in full in households.csv (default: masked)


@dg.op(description="政策模拟：按调整后的参数重跑已发布季度的预警规则，输出新增、减少的预警及涉及金额（只读数据仓库）")
def replay_rules(context: dg.OpExecutionContext, config: ReplayConfig, doudi: DoudiResource) -> dg.Output:
    try:
        quarters = quarter_range(config.quarters)
    except ValueError as exc:
        raise dg.Failure(description=f"拒绝：quarters {config.quarters}：{exc}") from None
    out = Path(config.out) if config.out else doudi.out_dir(config.region).parent / "whatif" / context.run_id
    request = ReplayRequest(doudi.warehouse_path(config.region), quarters, list(config.changes), out,
                            Path(config.parameters_dir) if config.parameters_dir else None, config.full)
    try:
        result = run_replay(request)
    except ReplayError as exc:
        raise dg.Failure(description=f"拒绝：{exc}") from None
    context.log.info(f"政策模拟：新增 {result.gained} 条，减少 {result.lost} 条，{result.seconds:.1f} 秒；输出 {out}")
    return dg.Output(
        str(out),
        metadata={"gained": result.gained, "lost": result.lost, "seconds": round(result.seconds, 1),
                  "page": dg.MetadataValue.path(str(result.files["whatif.html"]))},
    )


@dg.job(name="policy_replay", executor_def=dg.in_process_executor,
        description="政策模拟：参数调整对预警的影响（不改动已发布的数据）")
def policy_replay_job():
    replay_rules()
