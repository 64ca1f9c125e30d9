"""One asset per source, from the inbox files to `staging.<source>` (raw to staged in one
step: reading, cleaning, quarantine and the audit log happen together, per file)."""


import dagster as dg

from checks.factory import staged_source_checks
from pipelines.ingest.load import load_source
from pipelines.partitions import partition_of, quarter_region
from pipelines.resources import DoudiResource
from sources.readers import InputRefused
from sources.registry import SourceSpec, all_sources


def staged_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", source])


def staged_source_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=staged_key(spec.source),
        partitions_def=quarter_region,
        group_name="ingest",
        kinds={"duckdb"},
        # A source whose rows name another source's (members name their household) is
        # checked against that source's staged rows of the quarter, so it loads after it;
        # when that source fails (a refused households file), this one is not run at all.
        deps=[staged_key(ref.source) for ref in spec.references],
        description=f"{spec.title}（<地区收件箱>/<季度>/{spec.source}/）清洗入库；{'必需' if spec.required_folder else '可选'}数据源，"
        f"{ {'roster': '花名册（每季度替换）', 'accumulating': '逐季累积', 'full_stock': '全量（每季度替换）'}[spec.delivery] }",
    )
    def staged(context: dg.AssetExecutionContext, doudi: DoudiResource) -> dg.MaterializeResult:
        quarter, region = partition_of(context)
        with doudi.connect(region) as con:
            try:
                outcome = load_source(con, spec, doudi.quarter_dir(region, quarter), quarter, context.run_id)
            except InputRefused as refused:
                raise dg.Failure(
                    description=f"输入被拒收（{spec.source}）：{refused}",
                    metadata={"refused": True, "source": spec.source, "file": refused.file or ""},
                ) from None
        return dg.MaterializeResult(
            metadata={
                "rows_read": outcome.rows_read,
                "rows_loaded": outcome.rows_loaded,
                "rows_quarantined": outcome.rows_quarantined,
                "files": len([f for f in outcome.files if f.outcome != "ignored"]),
                "folder_present": outcome.folder_present,
            }
        )

    return staged


STAGED_ASSETS = [staged_source_asset(spec) for spec in all_sources()]
STAGED_CHECKS = [check for spec in all_sources() for check in staged_source_checks(staged_key(spec.source), spec)]
