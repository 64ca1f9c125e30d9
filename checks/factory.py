"""One blocking and one warning asset check for every staged source, built by a factory
(as PUDL builds one check per asset). The outcome is also written to
`audit.check_results`, which is how `doudi run` explains a refused quarter."""


import json

import dagster as dg

from checks import ingest
from pipelines.partitions import partition_of
from pipelines.resources import DoudiResource
from sources.registry import SourceSpec

# Each check's name in the operator's and the report's words.
CHECK_TITLES = {"delivery_accepted": "交付可用性检查", "value_quality": "取值质量检查"}


def _metadata(values: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool)) else dg.MetadataValue.json(json.loads(json.dumps(v, default=str)))) for k, v in values.items()}


def staged_source_checks(asset_key: dg.AssetKey, spec: SourceSpec) -> list[dg.AssetChecksDefinition]:
    asset_name = "/".join(asset_key.path)

    @dg.asset_check(
        asset=asset_key,
        name="delivery_accepted",
        blocking=True,
        description=f"{spec.title}：非空、主键唯一、多数行可读、每行或入库或隔离、不比上季度少得多（不通过则本季度不发布）",
    )
    def delivery_accepted(context: dg.AssetCheckExecutionContext, doudi: DoudiResource) -> dg.AssetCheckResult:
        quarter, region = partition_of(context)
        with doudi.connect(region) as con:
            outcome = ingest.delivery_accepted(con, spec, quarter, context.run.run_id, set(doudi.accept_drops))
            ingest.record(con, outcome, quarter, asset_name, context.run.run_id)
        return dg.AssetCheckResult(
            passed=outcome.passed, severity=dg.AssetCheckSeverity.ERROR, description=outcome.description,
            metadata=_metadata(outcome.metadata),
        )

    @dg.asset_check(
        asset=asset_key,
        name="value_quality",
        blocking=False,
        description=f"{spec.title}：各列清洗情况（修复、无法识别的取值计数）",
    )
    def value_quality(context: dg.AssetCheckExecutionContext, doudi: DoudiResource) -> dg.AssetCheckResult:
        quarter, region = partition_of(context)
        with doudi.connect(region) as con:
            outcome = ingest.value_quality(con, spec, quarter, context.run.run_id)
            ingest.record(con, outcome, quarter, asset_name, context.run.run_id)
        return dg.AssetCheckResult(
            passed=outcome.passed, severity=dg.AssetCheckSeverity.WARN, description=outcome.description,
            metadata=_metadata(outcome.metadata),
        )

    return [delivery_accepted, value_quality]
