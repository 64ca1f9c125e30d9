"""The Dagster code location: `dagster dev -m pipelines.definitions` (or `doudi ui`)."""

import dagster as dg

from pipelines.exports.assets import EXPORT_ASSETS
from pipelines.ingest.assets import STAGED_ASSETS, STAGED_CHECKS
from pipelines.ingest.sensors import inbox_sensor
from pipelines.jobs import national_job, quarter_job
from pipelines.link.assets import linked_matches
from pipelines.marts.analysts_copy import analysts_copy
from pipelines.marts.assets import published_marts
from pipelines.national.assets import national_cross_region
from pipelines.national.sensors import national_sensor
from pipelines.progress import PROGRESS_LOGGER, progress_logger
from pipelines.recovery import CRASH_LOGGER, crash_test_logger
from pipelines.resources import resource_from_environment
from pipelines.rules.assets import RULE_ASSETS
from pipelines.schedules import quarterly_schedule
from pipelines.whatif.job import policy_replay_job

defs = dg.Definitions(
    assets=[*STAGED_ASSETS, linked_matches, *RULE_ASSETS, published_marts, *EXPORT_ASSETS, analysts_copy, national_cross_region],
    asset_checks=STAGED_CHECKS,
    jobs=[quarter_job, national_job, policy_replay_job],
    schedules=[quarterly_schedule],
    sensors=[inbox_sensor, national_sensor],
    resources={"doudi": resource_from_environment()},
    # Dagster's console logger, and the progress lines `doudi run` switches on for its runs
    # (and, for tests/faults/test_crash.py only, the hook that kills a run at a named step).
    loggers={"console": dg.colored_console_logger, PROGRESS_LOGGER: progress_logger, CRASH_LOGGER: crash_test_logger},
)
