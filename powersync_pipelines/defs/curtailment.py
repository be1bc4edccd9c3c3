"""Solar curtailment in Dagster: an asset that steps the rule and acts, and a 1-minute sensor that launches it.

The sensor only reads DuckDB (the stored price frame and the rule's state) and asks for a run when the rule
would switch, or when the last switch was not confirmed by the devices; the run does the device work (DC via
the battery driver, AC via the inverter driver), so a slow inverter never blocks the sensor tick.
"""

from typing import Any

import dagster as dg
import pandas as pd

from ..config import SiteConfig
from ..control.curtailment import evaluate_curtailment, load_state
from ..storage import HistoryStore
from ..tariffs.curtailment import current_export_price, next_state
from .planning.partitions import site_partitions
from .resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
    control_context,
)

GROUP = "curtailment"
WINDOW = pd.Timedelta(hours=2)


def _prices_around(store: HistoryStore, site: SiteConfig, now: pd.Timestamp) -> pd.DataFrame:
    return store.read_prices(site.id, now - WINDOW, now + WINDOW)


def _relevant(site: SiteConfig) -> bool:
    """Sites with something to curtail: solar behind a DC-capable battery, or an AC-coupled inverter."""
    return site.ac_inverter is not None or site.solar is not None


@dg.asset(kinds={"python", "duckdb"}, deps=[dg.AssetKey("price_forecast")], partitions_def=site_partitions,
          group_name=GROUP, pool="modbus",
          description="Stop exporting solar when the export price is at or below the trigger (default 0 c/kWh), "
          "release with hysteresis (default 1 c) after a minimum hold: DC via the battery's export control, AC via "
          "the inverter. State in DuckDB `curtailment_state`, switches in `curtailment_events`.")
def solar_curtailment(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                      clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    ctx = control_context(history, clock, fleet)
    store = ctx.store
    meta: dict[str, Any] = {}
    failed = []
    for site_id in context.partition_keys:
        site = sites.site(site_id)
        now = clock.now(context, site)
        run = evaluate_curtailment(ctx, site, _prices_around(store, site, now), now)
        context.log.info(f"{site_id}: {'curtailed' if run.curtailed else 'exporting'} ({run.reason})")
        meta[f"{site_id}/curtailed"] = dg.MetadataValue.bool(run.curtailed)
        meta[f"{site_id}/export_price"] = dg.MetadataValue.float(float(run.export_price)) \
            if run.export_price is not None else dg.MetadataValue.text("unknown")
        meta[f"{site_id}/reason"] = dg.MetadataValue.text(run.reason)
        meta[f"{site_id}/applied"] = dg.MetadataValue.bool(run.applied)
        if run.acted:
            meta[f"{site_id}/actions"] = dg.MetadataValue.json({"dc": run.dc, "ac": run.ac})
        if run.acted and not run.applied:
            failed.append(f"{site_id}: dc={run.dc} ac={run.ac}")
    if failed:
        context.log.warning("curtailment not confirmed (retried next evaluation): " + "; ".join(failed))
    return dg.MaterializeResult(metadata=meta)


curtailment_job = dg.define_asset_job(
    "curtailment_job", selection=dg.AssetSelection.assets(solar_curtailment), executor_def=dg.in_process_executor,
    description="Step the curtailment rule for one site and bring its battery/inverter into the decided state.",
)


@dg.sensor(job=curtailment_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: would the curtailment rule switch (or retry) for a site? Then run it.")
def curtailment_sensor(context: dg.SensorEvaluationContext, sites: SitesResource, history: HistoryStoreResource,
                       clock: ClockResource) -> dg.SensorResult | dg.SkipReason:
    store = history.store()
    requests, notes = [], []
    for site in sites.load().sites:
        if not _relevant(site):
            continue
        cfg = site.features.curtailment
        if not cfg.enabled:
            continue
        now = clock.clock().site_now(site)
        state, applied = load_state(store, site.id)
        step = next_state(state, current_export_price(_prices_around(store, site, now), now), now, cfg)
        if step.changed or not applied:
            target = "curtail" if step.state.curtailed else "release"
            requests.append(dg.RunRequest(run_key=f"curtail:{site.id}:{now.isoformat()}:{target}",
                                          partition_key=site.id, tags={"powersync/curtailment": target}))
        notes.append(f"{site.id}: {step.reason}")
    if not requests:
        return dg.SkipReason("no switch due; " + "; ".join(notes) if notes else "no site with solar or AC inverter")
    return dg.SensorResult(run_requests=requests)
