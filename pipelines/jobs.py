"""The jobs: one quarter of one region, in process; and the national step of a quarter.

A run of `quarterly_comparison` is one (quarter, region) partition: everything that needs
only that region's data, against that region's warehouse. Regions are independent runs, so
a run launcher (Docker, Kubernetes, Celery; see docs/scale-out.md) can put them on
different machines, and the instance's queue runs several regions at once while keeping one
run per region (dagster.yaml: a limit per value of the `dagster/partition/region` tag,
which Dagster sets on every run of a region's partition, however it was started).

Within a run the executor stays in-process: on a 2-core machine it costs about 0.2 s per
asset against 3.7 s for the multiprocess one, and the stages are DuckDB-bound and
sequential anyway (one writer per warehouse).

The jobs' partitions are their assets' (quarter × region, or quarter for the national
step: `pipelines/partitions.py`); Dagster infers them from the selection.

`national_comparison` is one quarter's cross-region step (rules D01 and D03 across
regions, `pipelines/national`), which reads every region's warehouse and writes the
national one: one run at a time (the `doudi/national` tag).
"""

import dagster as dg

NATIONAL_GROUP = "national"
NATIONAL_TAG = {"doudi/national": "write"}  # limited to one run at a time (dagster.yaml)

quarter_job = dg.define_asset_job(
    name="quarterly_comparison",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(NATIONAL_GROUP),
    executor_def=dg.in_process_executor,
    description="一个地区一个季度的完整比对：数据接收、比对、预警规则、发布、核查清单与报告",
)

national_job = dg.define_asset_job(
    name="national_comparison",
    selection=dg.AssetSelection.groups(NATIONAL_GROUP),
    executor_def=dg.in_process_executor,
    tags=NATIONAL_TAG,
    description="跨地区比对：一人在两个地区重复享受（D03）、在外地登记死亡的保障对象（D01）",
)
