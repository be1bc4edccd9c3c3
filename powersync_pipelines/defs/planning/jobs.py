"""The re-optimisation job (all planning assets, in-process for latency) and its 5-minute schedule."""


import dagster as dg

from .assets import PLANNING_ASSETS
from .partitions import all_sites_tags

reoptimize_job = dg.define_asset_job(
    "reoptimize_job",
    selection=dg.AssetSelection.assets(*PLANNING_ASSETS),
    executor_def=dg.in_process_executor,
    description="Fetch prices, forecast, plan, push the current action and read the battery back, for "
    "every site in one run.",
    tags={"powersync/duckdb_writer": "true"},
)


@dg.schedule(cron_schedule="*/5 * * * *", job=reoptimize_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Re-plan every site every 5 minutes, on UTC (one run covers all sites, each planned in "
             "its own time zone).")
def reoptimize_every_5_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=context.scheduled_execution_time.isoformat(), tags=all_sites_tags())
