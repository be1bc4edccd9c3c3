"""The learned price model, refitted daily: one partition per UTC day, one versioned model per site and day.

Partition ``D`` fits every site's model on its stored realised prices strictly before ``D + 1 day``
(00:00 UTC, the partition's end), records it in ``price_models`` with its training window, and is picked up
by the live ``price_forecast`` from then on (``forecasts.price_registry.load_latest_model``). A backfill
over a range is one run (``BackfillPolicy.single_run()``) that fits one model per day, in order, each only
on data before its own cut-off. Then the parameters of each site's models fitted more than
``keep_params_days`` (30) before its newest are emptied: rows, versions and training windows stay.
Checks: ``price_model_fresh`` (the newest model is at most 2 days old) and ``price_forecast_drift`` (over
the last 7 days, realised prices fall inside the served P10-P90 band at least half the time and the bias
stays within 5 c/kWh).
"""

from typing import Any

import dagster as dg
import pandas as pd

from ..forecasts.price_model import PriceModelConfig, PriceModelError
from ..forecasts.price_registry import (
    PARAMS_KEEP_DAYS,
    STALE_AFTER,
    drift_reports,
    prune_model_params,
    refit_site_model,
    staleness,
)
from .resources import WRITER_TAGS, HistoryStoreResource, SitesResource

refit_days = dg.DailyPartitionsDefinition(start_date="2023-01-01", timezone="UTC", end_offset=0)


class PriceModelRefitConfig(dg.Config):
    """Which sites (empty: all) and the model knobs (defaults = the benchmarked ones)."""

    sites: list[str] = []
    fit_days: int = PriceModelConfig.fit_days
    half_life_days: float = PriceModelConfig.profile_half_life_days
    # Fitted parameters kept this many days behind each site's newest model (older rows keep their metadata).
    keep_params_days: float = PARAMS_KEEP_DAYS


@dg.asset(
    partitions_def=refit_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="forecasting",
    kinds={"python", "duckdb"},
    pool="duckdb_history",
    description="Learned price model per site, fitted on stored realised prices before the partition's end; "
    "versioned (kind, code, config, training window) in DuckDB `price_models`.",
    check_specs=[
        dg.AssetCheckSpec("price_model_fresh", asset="price_model",
                          description=f"every site's newest model is at most {STALE_AFTER.days} days old"),
        dg.AssetCheckSpec("price_forecast_drift", asset="price_model",
                          description="last 7 days: >= 50% of realised prices inside the served P10-P90, |bias| <= 5 c/kWh"),
    ],
)
def price_model(context: dg.AssetExecutionContext, config: PriceModelRefitConfig, sites: SitesResource,
                history: HistoryStoreResource):
    store = history.store()
    window = context.partition_time_window
    days = pd.date_range(pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC"),
                         freq="D", inclusive="left")
    cfg = PriceModelConfig(fit_days=config.fit_days, profile_half_life_days=config.half_life_days)
    chosen = [s for s in sites.load().sites if not config.sites or s.id in config.sites]
    meta: dict[str, Any] = {}
    fitted = skipped = 0
    for site in chosen:
        for day in days:
            as_of = day + pd.Timedelta(days=1)
            try:
                model = refit_site_model(store, site.id, site.timezone, as_of, cfg, region=site.provider.region,
                                         partition_key=day.strftime("%Y-%m-%d"))
            except PriceModelError as exc:
                skipped += 1
                context.log.warning(f"{site.id} {day.date()}: not fitted: {exc}")
                continue
            fitted += 1
            meta[f"{site.id}/model"] = dg.MetadataValue.text(model.version)
            meta[f"{site.id}/train_window"] = dg.MetadataValue.text(
                f"{model.train_start.isoformat()} .. {model.train_end.isoformat()} ({model.n_train} intervals)")
        meta[f"{site.id}/params_pruned"] = prune_model_params(store, site.id, config.keep_params_days)
    meta["fitted"], meta["skipped"] = fitted, skipped
    yield dg.MaterializeResult(metadata=meta)

    now = pd.Timestamp(window.end).tz_convert("UTC")
    stale = []
    for site in chosen:
        age = staleness(store, site.id, now)
        if age is None or age > STALE_AFTER:
            stale.append(f"{site.id}: {'no model' if age is None else f'newest model {age} old'}")
    yield dg.AssetCheckResult(
        check_name="price_model_fresh", passed=not stale, severity=dg.AssetCheckSeverity.WARN,
        metadata={"stale": dg.MetadataValue.md("\n".join(f"- {s}" for s in stale) or "none")},
    )
    drifting, rows = [], []
    for site in chosen:
        for r in drift_reports(store, site.id, now):
            rows.append(f"| {site.id} | {r.lead_h} h | {r.n} | {_fmt(r.coverage_p10_p90)} | {_fmt(r.bias)} | {_fmt(r.mae)} |")
            if r.drifting:
                drifting.append(f"{site.id} {r.lead_h} h")
    table = "| site | lead | n | inside P10-P90 | bias $/kWh | MAE $/kWh |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    yield dg.AssetCheckResult(
        check_name="price_forecast_drift", passed=not drifting, severity=dg.AssetCheckSeverity.WARN,
        metadata={"drift": dg.MetadataValue.md(table if rows else "no served forecasts with realised prices yet"),
                  "drifting": dg.MetadataValue.text(", ".join(drifting) or "none")},
    )


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


price_model_refit_job = dg.define_asset_job(
    "price_model_refit_job", selection=dg.AssetSelection.assets(price_model),
    executor_def=dg.in_process_executor, tags=WRITER_TAGS,
    description="Refit every site's learned price model on the day that just ended.",
)

price_model_refit_daily = dg.build_schedule_from_partitioned_job(
    price_model_refit_job, hour_of_day=0, minute_of_hour=10, default_status=dg.DefaultScheduleStatus.RUNNING,
)
