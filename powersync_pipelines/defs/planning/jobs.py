"""The re-optimisation job (all planning assets, in-process for latency) and its 5-minute schedule."""


import dagster as dg

from ..resources import WRITER_TAGS
from .assets import PLANNING_ASSETS
from .partitions import all_sites_tags, planning_partitions, shard_run_tags, sharded

reoptimize_job = dg.define_asset_job(
    "reoptimize_job",
    selection=dg.AssetSelection.assets(*PLANNING_ASSETS),
    executor_def=dg.in_process_executor,
    description="Fetch prices, forecast, plan, push the current action and read the battery back, for "
    "every site in one run (or, with POWERSYNC_SHARDS, for the sites of one shard per run).",
    tags=WRITER_TAGS,
)


@dg.schedule(cron_schedule="*/5 * * * *", job=reoptimize_job, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Re-plan every site every 5 minutes, on UTC (one run covers all sites, or one run per "
             "shard with POWERSYNC_SHARDS; each site planned in its own time zone).")
def reoptimize_every_5_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | list[dg.RunRequest]:
    slot = context.scheduled_execution_time.isoformat()
    if sharded and planning_partitions is not None:
        return [dg.RunRequest(run_key=f"{slot}/{key}", partition_key=key, tags=shard_run_tags(key))
                for key in planning_partitions.get_partition_keys()]
    return dg.RunRequest(run_key=slot, tags=all_sites_tags())
