"""Daily strategy selection per site: which planning strategy the live price blend follows today.

Once per site and local day (the hourly schedule acts on the first run after each site's local midnight; a
stored day is not decided again unless ``force``), every candidate (``learned``: the learned model with the
site's spike-reserve rule; ``learned_no_reserve``; ``persistence``) is replayed through the real planner over
the trailing days of the site's realised prices, load and solar (``backtest.live_selection``), and the site
follows the one that saved the most, leaving its current one only beyond the margin
(``backtest.selection``). Stored in DuckDB ``strategy_selection``; the live blend reads it
(``forecasts.strategy_choice.current_strategy``).
"""

from typing import Any

import dagster as dg
import pandas as pd

from ..backtest.live_selection import select_for_site
from ..backtest.selection import MARGIN, MIN_GAIN_PER_KWH_DAY, TRAILING_DAYS, SelectionRule
from ..control.clock import Clock
from ..forecasts.strategy_choice import choice_history
from .resources import WRITER_TAGS, ClockResource, HistoryStoreResource, SitesResource


class StrategySelectionConfig(dg.Config):
    """Which sites (empty: all); ``now`` pins the clock (ISO, tests and replays; otherwise the run's clock);
    ``force`` re-decides a stored day; the trailing window and margin (defaults: the evaluated ones)."""

    sites: list[str] = []
    now: str | None = None
    force: bool = False
    trailing_days: float = TRAILING_DAYS
    margin: float = MARGIN
    min_gain_per_kwh_day: float = MIN_GAIN_PER_KWH_DAY


@dg.asset(
    group_name="forecasting",
    kinds={"python", "duckdb"},
    pool="duckdb_history",
    description="Per site and local day: each candidate planning strategy's trailing realised savings (replayed "
    "through the real planner) and the strategy the live blend follows; DuckDB `strategy_selection`.",
)
def strategy_selection(context: dg.AssetExecutionContext, config: StrategySelectionConfig, sites: SitesResource,
                       history: HistoryStoreResource, clock: ClockResource) -> dg.MaterializeResult:
    store = history.store()
    rule = SelectionRule(trailing_days=config.trailing_days, margin=config.margin,
                         min_gain_per_kwh_day=config.min_gain_per_kwh_day)
    chosen = [s for s in sites.load().sites if not config.sites or s.id in config.sites]
    meta: dict[str, Any] = {}
    decided = kept = 0
    for site in chosen:
        now = Clock(fixed=config.now).site_now(site) if config.now else clock.now(context, site)
        day = now.tz_convert(site.timezone).strftime("%Y-%m-%d")
        stored = store.query("SELECT choice FROM strategy_selection WHERE site_id = ? AND day = ?",
                             [site.id, pd.Timestamp(day).date()])
        if not stored.empty and not config.force:
            kept += 1
            meta[f"{site.id}/choice"] = dg.MetadataValue.text(f"{stored['choice'].iloc[0]} (decided earlier for {day})")
            continue
        sel = select_for_site(store, site, now, rule)
        decided += 1
        context.log.info(f"{site.id} {sel.day}: {sel.choice} (was {sel.previous}); trailing savings {sel.savings}")
        meta[f"{site.id}/choice"] = dg.MetadataValue.text(sel.choice)
        meta[f"{site.id}/previous"] = dg.MetadataValue.text(str(sel.previous))
        meta[f"{site.id}/elapsed_s"] = dg.MetadataValue.float(sel.elapsed_s)
        rows = [f"| {name} | {value:.2f} |" for name, value in sel.savings.items()]
        meta[f"{site.id}/trailing_savings"] = dg.MetadataValue.md(
            f"{sel.days_seen:g} realised days before {sel.day}\n\n| candidate | savings $ |\n|---|---|\n"
            + "\n".join(rows) if rows else (sel.note or "no realised days yet: the default"))
        recent = choice_history(store, site.id, days=14)
        meta[f"{site.id}/last_14_days"] = dg.MetadataValue.md(
            "| day | choice |\n|---|---|\n" + "\n".join(f"| {r.day} | {r.choice} |" for r in recent.itertuples()))
    meta["decided"], meta["kept"] = decided, kept
    return dg.MaterializeResult(metadata=meta)


strategy_selection_job = dg.define_asset_job(
    "strategy_selection_job", selection=dg.AssetSelection.assets(strategy_selection),
    executor_def=dg.in_process_executor, tags=WRITER_TAGS,
    description="Decide each site's planning strategy for its local day (once per day per site).",
)

strategy_selection_hourly = dg.ScheduleDefinition(
    job=strategy_selection_job, cron_schedule="15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: a site whose local day has no choice yet gets one (so every time zone is served soon "
    "after its midnight).",
)
