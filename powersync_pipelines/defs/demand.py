"""The month's demand peak per site with a demand tariff (``features.demand_charge``), from telemetry.

Hourly, each site's billing-month peak in its window so far is stored in DuckDB ``demand_month_peaks`` (and
shown as metadata: peak, when, the charge so far); the live plan reads the same peak from telemetry
(``demand.site_demand_charge``) and prices only exceeding it.
"""

from typing import Any

import dagster as dg

from ..control.clock import Clock
from ..demand import record_month_peak
from .resources import WRITER_TAGS, ClockResource, HistoryStoreResource, SitesResource


class DemandPeaksConfig(dg.Config):
    """Which sites (empty: all); ``now`` pins the clock (ISO, tests and replays; otherwise the run's clock)."""

    sites: list[str] = []
    now: str | None = None


@dg.asset(
    group_name="planning",
    kinds={"python", "duckdb"},
    pool="duckdb_history",
    description="Per site with a demand tariff: the billing month's peak import in the demand window so far "
    "(from telemetry), when it was set and the charge; DuckDB `demand_month_peaks`.",
)
def demand_peaks(context: dg.AssetExecutionContext, config: DemandPeaksConfig, sites: SitesResource,
                 history: HistoryStoreResource, clock: ClockResource) -> dg.MaterializeResult:
    store = history.store()
    meta: dict[str, Any] = {}
    tracked = 0
    for site in sites.load().sites:
        if config.sites and site.id not in config.sites:
            continue
        now = Clock(fixed=config.now).site_now(site) if config.now else clock.now(context, site)
        row = record_month_peak(store, site, now)
        if row is None:
            continue
        tracked += 1
        at = row["peak_at"].tz_convert(site.timezone).strftime("%a %d %H:%M") if row["peak_at"] is not None else "-"
        context.log.info(f"{site.id} {row['month']}: peak {row['peak_kw']:.2f} kW at {at} -> ${row['charge']:.2f}")
        meta[f"{site.id}/peak_kw"] = dg.MetadataValue.float(round(row["peak_kw"], 4))
        meta[f"{site.id}/peak_at"] = dg.MetadataValue.text(at)
        meta[f"{site.id}/charge_so_far"] = dg.MetadataValue.float(round(row["charge"], 2))
        meta[f"{site.id}/intervals"] = dg.MetadataValue.int(row["intervals"])
    meta["sites_tracked"] = tracked
    return dg.MaterializeResult(metadata=meta)


demand_peaks_job = dg.define_asset_job(
    "demand_peaks_job", selection=dg.AssetSelection.assets(demand_peaks),
    executor_def=dg.in_process_executor, tags=WRITER_TAGS,
    description="Store each demand-tariff site's month peak so far.",
)

demand_peaks_hourly = dg.ScheduleDefinition(
    job=demand_peaks_job, cron_schedule="7 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: the month's demand peak so far per site with a demand tariff.",
)
