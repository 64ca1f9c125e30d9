"""The quarter's marts, published together (one transaction, see `publish`)."""


import dagster as dg

from pipelines.ingest.assets import staged_key
from pipelines.marts.publish import MARTS, publish_quarter
from pipelines.partitions import partition_of, quarter_region
from pipelines.resources import DoudiResource
from pipelines.rules.assets import RULE_ASSETS

DESCRIPTIONS = {
    "warnings": "每季度每条预警一行（预警编号跨季度稳定，含状态与首次发现季度）",
    "household_cases": "每个被预警家庭一行，按优先级排序（核查清单的依据）",
    "quarterly_comparison": "季度 × 区县 × 规则：本季度、上季度、新增、持续、已解除",
    "warnings_masked": "脱敏预警：身份证号打码、只留姓氏、稳定的匿名人员键",
    "verification_results": "本季度收到的核查回执：每条预警最新的核查结果及其规则、区县、乡镇",
}
MART_KEYS = {name: dg.AssetKey(["marts", name]) for name in MARTS}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            MART_KEYS[name],
            deps=[a.key for a in RULE_ASSETS] + [staged_key("households"), staged_key("members"), staged_key("verifications")],
            description=DESCRIPTIONS[name],
            group_name="marts",
            kinds={"duckdb"},
        )
        for name in MARTS
    ],
    partitions_def=quarter_region,
)
def published_marts(context: dg.AssetExecutionContext, doudi: DoudiResource):
    quarter, region = partition_of(context)
    with doudi.connect(region) as con:
        counts = publish_quarter(con, quarter, context.run_id)
    for name in MARTS:
        yield dg.MaterializeResult(asset_key=MART_KEYS[name], metadata={"rows": counts[name]})
