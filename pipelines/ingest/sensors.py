"""Start a quarter's run when its inbox folder is complete.

Complete means: every required source folder holds at least one .csv/.xlsx file, and no
file has changed for SETTLE_SECONDS (departments copy files in over minutes). The run key
is a fingerprint of the files (names, sizes, times), so a quarter runs once per set of
deliveries, and again if a department sends a corrected file.
"""


import hashlib
import os
import time
from pathlib import Path

import dagster as dg

from pipelines.jobs import quarter_job
from pipelines.partitions import QUARTER_LABELS
from pipelines.resources import DEFAULT_INBOX
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
           description="收件箱某季度的全部必需数据源到齐且稳定后，启动该季度的比对")
def inbox_sensor(context: dg.SensorEvaluationContext):
    inbox = Path(os.environ.get("DOUDI_INBOX", DEFAULT_INBOX))
    if not inbox.is_dir():
        return dg.SkipReason(f"收件箱 {inbox} 不存在")
    requests, waiting = [], []
    for quarter_dir in sorted(p for p in inbox.iterdir() if p.is_dir() and p.name in QUARTER_LABELS):
        ready, fingerprint, why = quarter_readiness(quarter_dir)
        if ready:
            requests.append(dg.RunRequest(run_key=f"{quarter_dir.name}-{fingerprint}", partition_key=quarter_dir.name))
        else:
            waiting.append(f"{quarter_dir.name}：{why}")
    if not requests:
        return dg.SkipReason("；".join(waiting) or "收件箱中没有季度文件夹")
    return requests
