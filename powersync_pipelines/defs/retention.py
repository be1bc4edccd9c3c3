"""Daily history retention: plans older than the retention age keep only their schedule rows in effect.

The op runs ``storage.retention.compact_history`` (the same code as ``powersync history compact``) on the
``duckdb_history`` pool, so it queues behind the planning stages instead of racing them for the DuckDB file,
and each batch is its own short transaction. The run's metadata has the rows deleted and left per table, the
sizes before and after and the seconds taken.
"""

from typing import Any

import dagster as dg

from ..storage.retention import compact_history, keep_days_setting
from .resources import WRITER_TAGS, HistoryStoreResource


class HistoryRetentionConfig(dg.Config):
    """``keep_days`` (None: ``$POWERSYNC_SCHEDULE_KEEP_DAYS``, else 2); ``dry_run`` counts only; ``full``
    re-examines every old plan, not only those since the last run; ``sites`` limits it (empty: all)."""

    keep_days: float | None = None
    dry_run: bool = False
    full: bool = False
    sites: list[str] = []


@dg.op(pool="duckdb_history",
       description="Delete the schedule rows of plans older than the retention age that a later plan superseded "
       "(what any reader sees of the past stays the same); count forecasts and the published-forecast archive.")
def compact_history_op(context: dg.OpExecutionContext, config: HistoryRetentionConfig,
                       history: HistoryStoreResource) -> dg.Output[dict[str, Any]]:
    store = history.store()
    report = compact_history(store, keep_days_setting(config.keep_days), dry_run=config.dry_run,
                             full=config.full, sites=config.sites or None, log=context.log.info)
    meta: dict[str, dg.RawMetadataValue] = {
        "keep_days": report.keep_days, "dry_run": report.dry_run, "backend": report.backend,
        "seconds": dg.MetadataValue.float(report.seconds), "batches": report.batches,
        "sites": len(report.sites), "plans_examined": sum(s.plans_examined for s in report.sites),
    }
    for t in report.tables:
        meta[f"{t.table}/rows_deleted"] = t.deleted
        meta[f"{t.table}/rows_left"] = t.after
    for key in ("size_before_bytes", "size_after_bytes", "used_before_bytes", "used_after_bytes"):
        value = getattr(report, key)
        if value is not None:
            meta[key] = value
    meta["tables"] = dg.MetadataValue.md(
        "| table | before | deleted | after | policy |\n|---|---|---|---|---|\n"
        + "\n".join(f"| {t.table} | {t.before:,} | {t.deleted:,} | {t.after:,} | {t.policy} |" for t in report.tables))
    return dg.Output(report.to_dict(), metadata=meta)


@dg.job(name="history_retention", tags=WRITER_TAGS,
        description="Compact old plans to the schedule rows that were in effect (storage/retention.py).")
def history_retention_job() -> None:
    compact_history_op()


history_retention_daily = dg.ScheduleDefinition(
    name="history_retention_daily", job=history_retention_job, cron_schedule="40 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 03:40 UTC: compact plans older than the retention age (POWERSYNC_SCHEDULE_KEEP_DAYS).",
)
