"""The linking asset: `linked.matches` for the quarter of one region."""


import dagster as dg

from pipelines.ingest.assets import staged_key
from pipelines.link.linker import link_quarter
from pipelines.partitions import partition_of, quarter_region
from pipelines.resources import DoudiResource
from sources.registry import linked_sources

# The departments whose records are linked (`person:` in their spec), in source order.
LINKED_SOURCES = [spec.source for spec in linked_sources()]
MATCHES_KEY = dg.AssetKey(["linked", "matches"])


@dg.asset(
    key=MATCHES_KEY,
    # verifications: a Q02 returned 属实 makes its record link to the member (link_confirmed_identities.sql)
    deps=[staged_key(s) for s in ["households", "members", *LINKED_SOURCES, "verifications"]],
    partitions_def=quarter_region,
    group_name="link",
    kinds={"duckdb"},
    description=(
        "每条部门记录与本季度花名册成员的比对结果：身份证号与姓名相互印证的精确比对（身份证号相同而姓名不符的记为身份信息冲突），"
        "再以 Splink 概率模型比对号码受损的记录；花名册内一人多户的查重"
    ),
)
def linked_matches(context: dg.AssetExecutionContext, doudi: DoudiResource) -> dg.MaterializeResult:
    quarter, region = partition_of(context)
    with doudi.connect(region) as con:
        report = link_quarter(con, quarter, memory_limit=doudi.memory_limit, threads=doudi.threads, backend=doudi.link_backend)
    metadata = {f"links_{source}": sum(methods.values()) for source, methods in report.methods.items()}
    metadata["methods"] = dg.MetadataValue.json(report.methods)
    metadata["splink_candidate_records"] = report.candidates
    metadata["splink_pairs_compared"] = report.record_pairs.pairs_compared if report.record_pairs else 0
    metadata["roster_duplicate_pairs"] = report.duplicate_pairs
    metadata["identity_conflicts"] = dg.MetadataValue.json(report.conflicts)
    metadata["splink_pairs_rejected_by_corroboration"] = report.rejected_pairs
    metadata["prior"] = report.record_prior
    metadata["step_seconds"] = dg.MetadataValue.json(report.seconds)
    metadata["splink_pairs_by_rule"] = dg.MetadataValue.json(report.record_pairs.pairs_by_rule if report.record_pairs else {})
    return dg.MaterializeResult(metadata=metadata)
