"""The ``backtest_results`` asset: a month of replays per partition, results in DuckDB.

Monthly partitions with ``BackfillPolicy.single_run()``: a backfill of a year is ONE run whose time window
spans all its months; the engine then spreads the months over the cores. Rows are upserted by (site,
forecast model, strategy, interval), so re-materialising a month replaces it and the SQL views
(``backtest_daily``, ``backtest_monthly``, ``backtest_spike_revenue``, ``backtest_forecast_error``) stay right.
"""


import io

import dagster as dg
import pandas as pd
from pydantic import Field

from ..backtest import BacktestConfig, BacktestInputError, ForecastOptions, SiteSeriesSources
from ..backtest.report import plot
from ..backtest.runner import backtest_site
from ..backtest.store import write_results
from ..paths import shared_real_data
from ..reporting import png_markdown
from .resources import HistoryStoreResource, SitesResource


def _price_data_end() -> str | None:
    """The first month after the last shipped AEMO price file (``PRICE_AND_DEMAND_YYYYMM_<REGION>.csv``), so a
    backfill offers only months that have prices; None (open-ended) without the shared history."""
    real = shared_real_data()
    months = sorted(f.name.split("_")[3] for f in (real / "aemo" / "price_and_demand").glob("*/PRICE_AND_DEMAND_*.csv")
                    if len(f.name.split("_")) > 4 and f.name.split("_")[3].isdigit()) if real else []
    if not months:
        return None
    last = pd.Timestamp(f"{months[-1][:4]}-{months[-1][4:]}-01")
    return (last + pd.offsets.MonthBegin(1)).strftime("%Y-%m-%d")


# The shipped real AEMO history starts in January 2023 (../shared/data/real/aemo) and the partitions end with it.
backtest_months = dg.MonthlyPartitionsDefinition(start_date="2023-01-01", end_date=_price_data_end(),
                                                 timezone="Australia/Melbourne")


class BacktestAssetConfig(dg.Config):
    """Which site and data to replay. ``prices`` empty: the shared AEMO price-and-demand files of the
    site's region (``../shared/data/real/aemo/price_and_demand/<REGION>``)."""

    site_id: str = "demo"
    prices: list[str] = Field(default_factory=list)
    price_format: str = "auto"
    forecast: str = "persistence"
    strategies: list[str] = Field(default_factory=lambda: ["lp", "greedy", "self_consumption"])
    horizon: str = "tiered"
    horizon_hours: float = 48.0
    load_file: str | None = None
    solar_file: str | None = None
    workers: int | None = None
    noise: float = 0.2
    seed: int = 0


def _price_sources(config: BacktestAssetConfig, region: str | None) -> list[str]:
    if config.prices:
        return list(config.prices)
    real = shared_real_data()
    folder = real / "aemo" / "price_and_demand" / (region or "VIC1") if real else None
    if folder is None or not folder.exists():
        raise BacktestInputError(
            f"backtest_results: no price files configured and no shared AEMO history for {region or 'VIC1'} "
            "(set config.prices to files, globs or folders)"
        )
    return [str(folder)]


@dg.asset(
    partitions_def=backtest_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="backtest",
    kinds={"python", "duckdb"},
    pool="duckdb_history",
    description="Replays each month of historical prices through the live planner (warm LP replans every "
    "5 minutes, greedy, self-consumption, no battery, perfect-foresight bound) and stores every interval "
    "in DuckDB `backtest_intervals` (views: backtest_daily, backtest_monthly, backtest_spike_revenue, "
    "backtest_forecast_error).",
)
def backtest_results(context: dg.AssetExecutionContext, config: BacktestAssetConfig, sites: SitesResource,
                     history: HistoryStoreResource) -> dg.MaterializeResult:
    site = sites.site(config.site_id)
    window = context.partition_time_window
    start = pd.Timestamp(window.start).tz_convert("UTC")
    end = pd.Timestamp(window.end).tz_convert("UTC")
    cfg = BacktestConfig(
        strategies=tuple(config.strategies), forecast=config.forecast, horizon=config.horizon,
        horizon_hours=config.horizon_hours, workers=config.workers, progress=False,
        forecast_options=ForecastOptions(noise=config.noise, seed=config.seed),
        spike_threshold_per_mwh=site.provider.spike_threshold_per_mwh,
    )
    context.log.info(f"backtest {site.id}: {start.isoformat()} .. {end.isoformat()} ({len(context.partition_keys)} month(s))")
    result = backtest_site(
        site, _price_sources(config, site.provider.region), cfg,
        price_format=None if config.price_format == "auto" else config.price_format, start=start, end=end,
        sources=SiteSeriesSources(load_file=config.load_file, solar_file=config.solar_file),
    )
    run_id = write_results(history.store(), site.id, result, run_id=context.run.run_id)
    s = result.summary
    png = io.BytesIO()
    plot(result, png, f"Backtest {site.id}")
    monthly = result.monthly.round(3)
    metadata: dict[str, object] = {
        "site_id": site.id,
        "run_id": run_id,
        "intervals": dg.MetadataValue.int(s["intervals"]),
        "replans": dg.MetadataValue.int(s["replans"]),
        "replans_per_s": dg.MetadataValue.float(float(s["replans_per_s"] or 0.0)),
        "baseline_cost": dg.MetadataValue.float(s["baseline_cost"]),
        "cost": dg.MetadataValue.float(s["cost"]),
        "savings": dg.MetadataValue.float(s["savings"]),
        "perfect_foresight_cost": dg.MetadataValue.float(s["perfect_foresight_cost"]),
        "monthly": dg.MetadataValue.md(monthly.to_markdown(index=False)),
        "plot": dg.MetadataValue.md(png_markdown(png.getvalue(), "backtest")),
        "dagster/row_count": dg.MetadataValue.int(len(result.intervals)),
    }
    if s["capture_ratio"] is not None:
        metadata["capture_ratio"] = dg.MetadataValue.float(s["capture_ratio"])
    return dg.MaterializeResult(metadata=metadata)
