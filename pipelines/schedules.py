"""The quarterly schedule: a few days after each quarter ends, run that quarter.

Departments deliver in the first days of the next quarter; the run starts on the 5th of
January, April, July and October at 06:00 (Asia/Shanghai) for the quarter just ended. If
the inbox is not complete by then, the inbox sensor starts the run when it is.
"""

import dagster as dg

from pipelines.jobs import quarter_job
from pipelines.quarters import Quarter


@dg.schedule(
    job=quarter_job,
    cron_schedule="0 6 5 1,4,7,10 *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="每季度结束后第5天 06:00 比对刚结束的季度",
)
def quarterly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = context.scheduled_execution_time.date()
    quarter = Quarter.containing(scheduled).previous
    return dg.RunRequest(run_key=f"schedule-{quarter}", partition_key=str(quarter))
