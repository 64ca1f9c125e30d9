"""Start the national step of a quarter once every region has published it.

The regions are those registered on the instance (the "region" partitions, but `all`), each
at the resource's warehouse path for it (DOUDI_WAREHOUSE with `{region}`). The sensor reads
each region's `audit.publications` read-only and requests the national run of the latest
quarter all regions have published; the run key is a fingerprint of the runs that
published it, so a region that publishes its quarter again starts the national step again,
and nothing else does.
"""

import hashlib

import dagster as dg

from pipelines.jobs import national_job
from pipelines.partitions import REGION_DIMENSION, SINGLE_REGION, quarter_key
from pipelines.resources import resource_from_environment
from warehouse.connection import WarehouseError, connect


def published_quarters(warehouse) -> dict[str, str]:
    """quarter -> the run that published it last, in one region's warehouse."""
    with connect(warehouse, read_only=True) as con:
        rows = con.execute("SELECT quarter, arg_max(run_id, published_at) FROM audit.publications GROUP BY quarter").fetchall()
    return dict(rows)


@dg.sensor(job=national_job, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.STOPPED,
           description="所有地区都发布了某季度后，启动该季度的跨地区比对")
def national_sensor(context: dg.SensorEvaluationContext):
    doudi = resource_from_environment()
    names = sorted(r for r in context.instance.get_dynamic_partitions(REGION_DIMENSION) if r != SINGLE_REGION)
    if len(names) < 2:
        return dg.SkipReason(f"跨地区比对至少需要两个地区，已登记 {len(names)} 个")
    published = {}
    for region in names:
        try:
            warehouse = doudi.warehouse_path(region)
        except ValueError as exc:
            return dg.SkipReason(str(exc))
        if not warehouse.exists():
            return dg.SkipReason(f"地区 {region} 还没有数据仓库（{warehouse}）")
        try:
            published[region] = published_quarters(warehouse)
        except WarehouseError as exc:  # being written (a region's run holds it), or no key
            return dg.SkipReason(f"地区 {region} 的数据仓库暂时无法读取：{exc}")
    common = set.intersection(*(set(quarters) for quarters in published.values()))
    if not common:
        return dg.SkipReason("还没有所有地区都已发布的季度")
    quarter = max(common)
    runs = "|".join(f"{region}:{published[region][quarter]}" for region in names)
    key = f"national-{quarter}-{hashlib.sha256(runs.encode()).hexdigest()[:16]}"
    return dg.RunRequest(run_key=key, partition_key=quarter_key(quarter))
