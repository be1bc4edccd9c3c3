"""One call from a site and its files to a finished backtest (used by the CLI, the asset and the benchmark)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..config import SiteConfig
from ..forecasts.price_mapping import reserve_rule
from .battery import BatterySpec
from .data import BacktestData
from .engine import BacktestConfig, BacktestResult, run_backtest
from .errors import BacktestInputError
from .forecasts import ForecastOptions
from .inputs import (
    HISTORY,
    SiteSeriesSources,
    build_backtest_data,
    expand_price_paths,
    read_price_files,
    select_month_files,
    utc_time,
)
from .learned import LearnedOptions, learned_options
from .selection import SelectionRule, run_selected

NO_EXTRA_HISTORY = pd.Timedelta(0)


def load_data(site: SiteConfig, prices: Sequence[str | Path], price_format: str | None = None,
              start: pd.Timestamp | str | None = None, end: pd.Timestamp | str | None = None,
              sources: SiteSeriesSources | None = None, export_prices: Sequence[str | Path] = (),
              extra_history: pd.Timedelta = NO_EXTRA_HISTORY) -> BacktestData:
    """Read and align the site's prices, load and solar for ``[start, end)`` (plus ``extra_history`` before the
    usual few days of history, for the selection's trailing replays)."""
    start = None if start is None else utc_time(start, "--start")
    end = None if end is None else utc_time(end, "--end")
    files = select_month_files(expand_price_paths(prices), None if start is None else start - extra_history, end)
    frame = read_price_files(files, None if price_format in (None, "auto") else price_format,
                             site.provider.retail, site.provider.region,
                             expand_price_paths(export_prices) if export_prices else ())
    return build_backtest_data(site, frame, start, end, sources, price_source=frame.attrs.get("source", "prices"),
                               history=HISTORY + extra_history)


def backtest_site(site: SiteConfig, prices: Sequence[str | Path], config: BacktestConfig | None = None,
                  price_format: str | None = None, start: pd.Timestamp | str | None = None,
                  end: pd.Timestamp | str | None = None, sources: SiteSeriesSources | None = None,
                  on_progress: Callable[[int], None] | None = None,
                  export_prices: Sequence[str | Path] = ()) -> BacktestResult:
    """Replay ``prices`` for ``site`` over ``[start, end)`` with every strategy in ``config``.

    ``--forecast learned`` plans, by default, with the daily strategy selection (:mod:`.selection`: what
    would ship); ``select=false`` plans with the learned model and the site's spike-reserve rule alone.
    """
    config = config or BacktestConfig(spike_threshold_per_mwh=site.provider.spike_threshold_per_mwh)
    learned = None
    if config.forecast in HISTORY_MODELS:
        learned = site_learned_options(config.forecast_options, site, prices)
        config = replace(config, forecast_options=replace(config.forecast_options, model_options=learned))
    if config.forecast == "learned" and learned.select:
        rule = SelectionRule(**{k: v for k, v in (("trailing_days", learned.select_days),
                                                   ("margin", learned.select_margin)) if v is not None})
        data = load_data(site, prices, price_format, start, end, sources, export_prices,
                         extra_history=pd.Timedelta(days=rule.trailing_days))
        result = run_selected(data, BatterySpec.from_site(site), config, learned, rule, on_progress=on_progress)
    else:
        data = load_data(site, prices, price_format, start, end, sources, export_prices)
        result = run_backtest(data, BatterySpec.from_site(site), config, on_progress=on_progress)
    result.summary["site_id"] = site.id
    return result


HISTORY_MODELS = ("learned", "blended")


def site_learned_options(options: ForecastOptions, site: SiteConfig, prices: Sequence[str | Path]) -> LearnedOptions:
    """The learned model's typed options for ``site``: its own spike-reserve rule (``features.spike_reserve``,
    as the live blend plans with; rule options named in ``options`` override it field by field) and, unless
    a ``history`` option names one, the run's own ``--prices`` as history before the window (read leniently:
    files that are not AEMO RRP history are ignored) with the site's region."""
    try:
        learned = learned_options(options, reserve_rule(site.features.spike_reserve))
    except ValueError as exc:
        raise BacktestInputError(f"--forecast-param: {exc}") from None
    if learned.history is None and prices:
        learned = replace(learned, history_sources=tuple(str(p) for p in prices))
    if learned.region is None and site.provider.region:
        learned = replace(learned, region=site.provider.region)
    return learned
