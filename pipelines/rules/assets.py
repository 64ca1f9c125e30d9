"""One asset per rule family: the quarter's findings in `rules.findings`."""


import dagster as dg

from pipelines.ingest.assets import staged_key
from pipelines.link.assets import LINKED_SOURCES, MATCHES_KEY
from pipelines.partitions import partition_of, quarter_region
from pipelines.resources import DoudiResource
from pipelines.rules.catalog import KINDS, rules_of
from pipelines.rules.engine import run_family

FAMILY_TITLES = {"ineligibility": "疑似不符合条件", "need": "救助需求", "data_quality": "数据质量"}


def rule_family_asset(kind: str) -> dg.AssetsDefinition:
    rules = rules_of(kind)

    @dg.asset(
        key=dg.AssetKey(["rules", kind]),
        deps=[MATCHES_KEY, *(staged_key(s) for s in ["households", "members", "standards", *LINKED_SOURCES])],
        partitions_def=quarter_region,
        group_name="rules",
        kinds={"duckdb"},
        description=f"{FAMILY_TITLES[kind]}预警规则：" + "、".join(f"{r.code} {r.title}" for r in rules),
    )
    def family(context: dg.AssetExecutionContext, doudi: DoudiResource) -> dg.MaterializeResult:
        quarter, region = partition_of(context)
        with doudi.connect(region) as con:
            counts = run_family(con, kind, quarter)
        return dg.MaterializeResult(metadata={f"{code}_findings": n for code, n in counts.items()})

    return family


RULE_ASSETS = [rule_family_asset(kind) for kind in KINDS if rules_of(kind)]
