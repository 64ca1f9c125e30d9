"""Start a region's quarter run when its inbox folder is complete.

Complete means: every required source folder holds at least one .csv/.xlsx file, and no
file has changed for SETTLE_SECONDS (departments copy files in over minutes). The run key
is a fingerprint of the files (names, sizes, times), so a quarter runs once per set of
deliveries, and again if a department sends a corrected file.

The regions are those the inbox holds (`DoudiResource.regions_in_inbox`: the sub-folders
of the inbox root when DOUDI_INBOX holds `{region}`, else the one region `all`); new ones
are added to the instance's "region" partitions with the run requests.
"""


import hashlib
import os
import time
from pathlib import Path

import dagster as dg

from pipelines.jobs import quarter_job
from pipelines.partitions import SINGLE_REGION, is_quarter_folder, partition_key, regions
from pipelines.resources import resource_from_environment
from sources.readers import is_data_file
from sources.registry import all_sources

SETTLE_SECONDS = int(os.environ.get("DOUDI_INBOX_SETTLE_SECONDS", "600"))


def quarter_readiness(quarter_dir: Path, now: float | None = None, settle: int | None = None) -> tuple[bool, str, str]:
    """(complete, fingerprint, why not) for one quarter folder."""
    now = time.time() if now is None else now
    settle = SETTLE_SECONDS if settle is None else settle
    files = []
    missing = []
    for spec in all_sources():
        found = [p for p in (quarter_dir / spec.source).rglob("*") if is_data_file(p)] if (quarter_dir / spec.source).is_dir() else []
        if spec.required_folder and not found:
            missing.append(spec.source)
        files.extend(found)
    if missing:
        return False, "", "缺少数据源：" + "、".join(missing)
    stats = sorted((str(p.relative_to(quarter_dir)), p.stat().st_size, int(p.stat().st_mtime)) for p in files)
    newest = max(s[2] for s in stats)
    if now - newest < settle:
        return False, "", f"文件仍在更新（最近一次 {int(now - newest)} 秒前）"
    fingerprint = hashlib.sha256(repr(stats).encode()).hexdigest()[:16]
    return True, fingerprint, ""


@dg.sensor(job=quarter_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="某地区收件箱某季度的全部必需数据源到齐且稳定后，启动该地区该季度的比对")
def inbox_sensor(context: dg.SensorEvaluationContext):
    doudi = resource_from_environment()
    names, problems = doudi.regions_in_inbox()
    requests, waiting, wanted = [], list(problems), set()
    for region in names:
        inbox = doudi.inbox_dir(region)
        label = "" if region == SINGLE_REGION else f"[{region}] "
        if not inbox.is_dir():
            waiting.append(f"收件箱 {inbox} 不存在")
            continue
        for quarter_dir in sorted(p for p in inbox.iterdir() if p.is_dir() and is_quarter_folder(p.name)):
            ready, fingerprint, why = quarter_readiness(quarter_dir)
            if ready:
                key = f"{quarter_dir.name}-{fingerprint}" if region == SINGLE_REGION else f"{region}/{quarter_dir.name}-{fingerprint}"
                requests.append(dg.RunRequest(run_key=key, partition_key=partition_key(quarter_dir.name, region)))
                wanted.add(region)
            else:
                waiting.append(f"{label}{quarter_dir.name}：{why}")
    if not requests:
        return dg.SkipReason("；".join(waiting) or "收件箱中没有季度文件夹")
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=[regions.build_add_request(sorted(wanted))])
