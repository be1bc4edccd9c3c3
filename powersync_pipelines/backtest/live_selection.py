"""The daily strategy selection for a live site: replay every candidate over the trailing days of what the site
actually saw (stored realised prices, measured load and solar where telemetry has them), choose, record.

Runs after the site's local midnight (the ``strategy_selection`` asset, ``defs/strategy.py``); the choice is in
force for that local day (``forecasts.strategy_choice.current_strategy``). Each candidate's replayed days are
stored (``strategy_shadow_days``), so a day costs one replayed day per candidate. Load and solar: the 5-minute means of
``telemetry`` where measured, the site's configured profile elsewhere (a new site still gets a choice, judged on
its real prices). The learned candidates fit on the stored RRP before each replayed day, as the daily refit does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..config import SiteConfig
from ..forecasts.price_mapping import reserve_rule
from ..forecasts.price_model import PriceModelConfig
from ..forecasts.strategy_choice import current_strategy, record_choice
from ..storage import HistoryStore
from ..timegrid import STEPS_PER_DAY
from .battery import BatterySpec
from .data import BacktestData
from .engine import BacktestConfig, run_backtest
from .errors import BacktestInputError
from .forecasts import ForecastOptions
from .inputs import HISTORY, MAX_GAP, site_power_series, to_five_minute_grid
from .learned import LearnedOptions
from .selection import DEFAULT_CANDIDATE, SelectionRule, candidates, choose

STEP = pd.Timedelta(minutes=5)


@dataclass
class LiveSelection:
    """One site's daily decision: the trailing savings per candidate, the choice and what it replaced."""

    site_id: str
    day: str  # local YYYY-MM-DD the choice applies to
    decided_at: pd.Timestamp  # the day's local midnight (UTC)
    choice: str
    previous: str | None
    savings: dict[str, float] = field(default_factory=dict)
    days_seen: float = 0.0
    elapsed_s: float = 0.0
    note: str = ""


def realised_data(store: HistoryStore, site: SiteConfig, start: pd.Timestamp, end: pd.Timestamp) -> BacktestData:
    """Stored prices with measured (else profiled) load and solar on the 5-minute grid, accounted over
    ``[start, end)`` with the persistence history before it; BacktestInputError when nothing is stored."""
    prices = store.read_prices(site.id, start - HISTORY, end)
    if len(prices) < 2:
        raise BacktestInputError(f"site {site.id}: no stored prices between {start.isoformat()} and {end.isoformat()}")
    grid, _ = to_five_minute_grid(prices[["import_price", "export_price", "rrp"]], "stored prices", MAX_GAP)
    grid = grid[(grid.index >= start - HISTORY) & (grid.index < end)]
    index = grid.index
    if len(index) == 0 or index[-1] < start:
        raise BacktestInputError(f"site {site.id}: no stored prices between {start.isoformat()} and {end.isoformat()}")
    load = _measured(store, site, index, "load_kw")
    solar = _measured(store, site, index, "solar_kw")
    i0 = int(np.searchsorted(index, max(start, index[0])))
    return BacktestData(index=index, import_price=grid["import_price"].to_numpy(float),
                        export_price=grid["export_price"].to_numpy(float), load_kw=load, solar_kw=solar, i0=i0,
                        i1=len(index), rrp=grid["rrp"].to_numpy(dtype=float), timezone=site.timezone)


def _measured(store: HistoryStore, site: SiteConfig, index: pd.DatetimeIndex, column: str) -> np.ndarray:
    """Telemetry ``column`` as 5-minute means on ``index``, the site's profile where nothing was measured."""
    profile = site_power_series(site, index, column, None, 1.0)
    df = store.query(f"SELECT ts, {column} AS v FROM telemetry WHERE site_id = ? AND ts >= ? AND ts < ? "
                     f"AND {column} IS NOT NULL", [site.id, index[0].to_pydatetime(), (index[-1] + STEP).to_pydatetime()])
    if df.empty:
        return profile
    s = pd.Series(df["v"].to_numpy(float), index=pd.to_datetime(df["ts"], utc=True))
    s = s[np.isfinite(s.to_numpy()) & (s.to_numpy() >= 0)]  # a negative reading is a meter or sign error
    means = s.groupby(s.index.floor("5min")).mean().reindex(index).to_numpy(float)
    return np.where(np.isfinite(means), means, profile)


def select_for_site(store: HistoryStore, site: SiteConfig, now: pd.Timestamp,
                    rule: SelectionRule | None = None, record: bool = True) -> LiveSelection:
    """Choose the strategy for the local day containing ``now`` and (``record``) store it.

    Each candidate's realised days are replayed once: days of the trailing window already in
    ``strategy_shadow_days`` are read back, the missing ones replayed in one run per candidate from that
    candidate's stored end-of-day SOC (its shadow is one continuous simulation, as in the backtest), then
    stored. So a site replays one day per candidate a day; a new site replays its whole window once.
    """
    t0 = time.perf_counter()
    rule = rule or SelectionRule()
    day = pd.Timestamp(now).tz_convert(site.timezone).normalize()
    days = [day - pd.Timedelta(days=k) for k in range(int(np.ceil(rule.trailing_days)), 0, -1)]
    end = day.tz_convert("UTC")
    previous_at = end - STEP
    previous = current_strategy(store, site.id, previous_at) if _has_choice(store, site.id, previous_at) else None
    out = LiveSelection(site.id, day.strftime("%Y-%m-%d"), end, DEFAULT_CANDIDATE, previous)
    learned = None
    try:
        table = _shadow_days(store, site.id, days)
        missing = [d for d in days if table.loc[d.date()].isna().any()]
        if missing:
            learned = learned or _learned_options(store, site, missing[0])
            _replay(store, site, missing[0], end, learned, table)
            table = _shadow_days(store, site.id, days)
    except BacktestInputError as exc:
        out.note = str(exc)
        table = _shadow_days(store, site.id, days)
    complete = table.dropna()
    out.days_seen = float(len(complete))
    out.savings = {k: round(float(v), 4) for k, v in complete.sum().items()} if len(complete) else {}
    out.choice = choose(out.savings, previous, rule, days_seen=out.days_seen,
                        capacity_kwh=BatterySpec.from_site(site).capacity_kwh)
    out.elapsed_s = round(time.perf_counter() - t0, 3)
    if record:
        record_choice(store, site.id, end, out.day, out.choice, previous, out.savings, out.days_seen,
                      rule.trailing_days, rule.margin, out.elapsed_s)
    return out


def _learned_options(store: HistoryStore, site: SiteConfig, first_day: pd.Timestamp) -> LearnedOptions:
    """The site's learned model for replays from ``first_day``: its own rule, and the stored prices before as
    history (the RRP where the site's provider gives one, else the import price, as the daily refit fits), so
    each replayed day's model is fitted on the same ``fit_days`` as the live one."""
    start = first_day.tz_convert("UTC")
    stored = store.read_prices(site.id, start - pd.Timedelta(days=PriceModelConfig().fit_days) - HISTORY, start)
    kind = "rrp" if stored["rrp"].notna().any() else "import_price"
    values = stored[kind].dropna()  # one row per interval, in time order (the table's key; read_prices sorts)
    # On the 5-minute grid the model fits on: a half-hourly price holds for its six slots.
    history = values.resample(STEP).ffill(limit=int(MAX_GAP / STEP) - 1).dropna() if len(values) else None
    return LearnedOptions(rule=reserve_rule(site.features.spike_reserve), region=site.provider.region,
                          select=False, history_series=history, history_kind=kind)


def _shadow_days(store: HistoryStore, site_id: str, days: list[pd.Timestamp]) -> pd.DataFrame:
    """Stored savings by local day (index: date) and candidate (columns, in candidate order; NaN: missing)."""
    names = [c.name for c in candidates(LearnedOptions())]
    df = store.query("SELECT day, candidate, savings FROM strategy_shadow_days WHERE site_id = ? AND day >= ? "
                     "AND day <= ?", [site_id, days[0].date(), days[-1].date()])
    wide = df.pivot_table(index="day", columns="candidate", values="savings", aggfunc="last") if len(df) else \
        pd.DataFrame(columns=names)
    wide.index = [pd.Timestamp(d).date() for d in wide.index]
    return wide.reindex(index=[d.date() for d in days], columns=names)


def _replay(store: HistoryStore, site: SiteConfig, first: pd.Timestamp, end: pd.Timestamp, learned: LearnedOptions,
            table: pd.DataFrame) -> None:
    """Replay every candidate over ``[first, end)`` from its stored SOC and store each day it completes."""
    data = realised_data(store, site, first.tz_convert("UTC"), end)
    spec = BatterySpec.from_site(site)
    cfg = BacktestConfig(strategies=("lp",), workers=1, progress=False, bound=False)
    before = (first - pd.Timedelta(days=1)).date()
    rows = []
    for c in candidates(learned):
        soc = store.query("SELECT soc_end FROM strategy_shadow_days WHERE site_id = ? AND candidate = ? AND day = ?",
                          [site.id, c.name, before])
        start_spec = replace(spec, soc_initial=float(soc["soc_end"].iloc[0])) if len(soc) else spec
        res = run_backtest(data, start_spec, replace(cfg, forecast=c.forecast,
                                                     forecast_options=ForecastOptions(model_options=c.options)))
        lp = res.intervals[res.intervals["strategy"] == "lp"]
        local = pd.DatetimeIndex(lp["interval_start"]).tz_convert(site.timezone)
        for d, g in lp.groupby(local.normalize()):
            if len(g) < STEPS_PER_DAY * 0.9:  # a day the stored prices do not cover: not judged on
                continue
            rows.append({"site_id": site.id, "day": d.date(), "candidate": c.name,
                         "savings": float(g["savings"].sum()), "soc_end": float(g["soc"].iloc[-1]),
                         "replayed_at": pd.Timestamp.now(tz="UTC")})
    if rows:
        store.upsert("strategy_shadow_days", pd.DataFrame(rows), ["site_id", "day", "candidate"])
def _has_choice(store: HistoryStore, site_id: str, at: pd.Timestamp) -> bool:
    df = store.query("SELECT count(*) AS n FROM strategy_selection WHERE site_id = ? AND decided_at <= ?",
                     [site_id, at.to_pydatetime()])
    return bool(int(df["n"].iloc[0]))
