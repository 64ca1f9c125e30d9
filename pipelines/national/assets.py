"""The national step as a Dagster asset, partitioned by quarter (job `national_comparison`).

(No `from __future__ import annotations` here: Dagster reads the config class from the
function's annotations.)"""


import warnings
from pathlib import Path

import dagster as dg

from pipelines.jobs import NATIONAL_GROUP
from pipelines.marts.assets import MART_KEYS
from pipelines.national.compare import NationalRefused, run_national
from pipelines.partitions import REGION_DIMENSION, SINGLE_REGION, quarter_of, quarters
from pipelines.resources import DoudiResource

NATIONAL_KEY = dg.AssetKey(["national", "cross_region"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)  # beta in Dagster 1.13; used for lineage only
    EVERY_REGION_OF_THE_QUARTER = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="quarter")


class NationalConfig(dg.Config):
    # region -> its warehouse. Empty: every region registered on the instance (but `all`),
    # each at the resource's warehouse path for it (DOUDI_WAREHOUSE with {region}).
    region_warehouses: dict[str, str] = {}


@dg.asset(
    key=NATIONAL_KEY,
    partitions_def=quarters,
    # Each region's published quarter (lineage: the national quarter reads every region's).
    deps=[dg.AssetDep(MART_KEYS["warnings"], partition_mapping=EVERY_REGION_OF_THE_QUARTER)],
    group_name=NATIONAL_GROUP,
    kinds={"duckdb", "spark"},
    description="跨地区比对：一人在两个地区作为保障对象（D03），保障对象在外地登记死亡（D01）；写入全国数据仓库（national.*），"
                "并为每个地区生成一份跨地区核查清单 <全国输出>/<季度>/<地区>/跨地区比对.xlsx",
)
def national_cross_region(context: dg.AssetExecutionContext, config: NationalConfig, doudi: DoudiResource) -> dg.MaterializeResult:
    quarter = quarter_of(context)
    if config.region_warehouses:
        regions = {region: Path(path) for region, path in config.region_warehouses.items()}
    else:
        names = [r for r in context.instance.get_dynamic_partitions(REGION_DIMENSION) if r != SINGLE_REGION]
        try:
            regions = {region: doudi.warehouse_path(region) for region in names}
        except ValueError as exc:
            raise dg.Failure(description=f"输入被拒收：{exc}", metadata={"refused": True}) from None
    try:
        report = run_national(quarter, regions, Path(doudi.national_warehouse), Path(doudi.national_out),
                              backend=doudi.link_backend, memory_limit=doudi.memory_limit, threads=doudi.threads, run_id=context.run_id)
    except NationalRefused as refused:
        raise dg.Failure(description=f"输入被拒收：{refused}", metadata={"refused": True, "problems": dg.MetadataValue.json(refused.problems)}) from None
    return dg.MaterializeResult(
        metadata={
            "regions": dg.MetadataValue.json(report.regions),
            "members": report.members,
            "death_records": report.death_records,
            "roster_pairs_compared": report.roster_pairs_compared,
            "record_pairs_compared": report.record_pairs_compared,
            "cross_region_duplicates": report.roster_duplicates,
            "cross_region_death_links": report.death_links,
            "warnings": dg.MetadataValue.json(report.warnings),
            "seconds": dg.MetadataValue.json(report.seconds),
            "link_step_seconds": dg.MetadataValue.json(report.link_seconds),
            "link_backend": report.backend,
        }
    )
