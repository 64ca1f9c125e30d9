"""The quarterly schedule: a few days after each quarter ends, run that quarter in every region.

Departments deliver in the first days of the next quarter; the runs start on the 5th of
January, April, July and October at 06:00 (Asia/Shanghai) for the quarter just ended, one
run per region (the regions the inbox holds, see `DoudiResource.regions_in_inbox`; `all`
when the inbox is not split by region). If an inbox is not complete by then, the inbox
sensor starts that region's run when it is.
"""

import dagster as dg

from pipelines.jobs import quarter_job
from pipelines.partitions import SINGLE_REGION, partition_key, register_regions
from pipelines.quarters import Quarter
from pipelines.resources import resource_from_environment


def run_key(prefix: str, quarter: str, region: str) -> str:
    """A run key per (quarter, region); the single region keeps the key it had before regions."""
    return f"{prefix}-{quarter}" if region == SINGLE_REGION else f"{prefix}-{quarter}-{region}"


@dg.schedule(
    job=quarter_job,
    cron_schedule="0 6 5 1,4,7,10 *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="每季度结束后第5天 06:00 比对刚结束的季度（每个地区一次运行）",
)
def quarterly_schedule(context: dg.ScheduleEvaluationContext):
    scheduled = context.scheduled_execution_time.date()
    quarter = Quarter.containing(scheduled).previous
    names, problems = resource_from_environment().regions_in_inbox()
    if not names:
        return dg.SkipReason("；".join(problems) or "收件箱中没有地区文件夹")
    # A schedule cannot return partition requests as a sensor does: the regions are added
    # to the instance here, before the run requests that name them are resolved.
    register_regions(context.instance, names)
    return [dg.RunRequest(run_key=run_key("schedule", str(quarter), region), partition_key=partition_key(quarter, region))
            for region in names]
