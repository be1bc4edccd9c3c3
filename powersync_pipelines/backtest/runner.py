"""One call from a site and its files to a finished backtest (used by the CLI, the asset and the benchmark)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..config import SiteConfig
from .battery import BatterySpec
from .data import BacktestData
from .engine import BacktestConfig, BacktestResult, run_backtest
from .inputs import (
    SiteSeriesSources,
    build_backtest_data,
    expand_price_paths,
    read_price_files,
    select_month_files,
    utc_time,
)


def load_data(site: SiteConfig, prices: Sequence[str | Path], price_format: str | None = None,
              start: pd.Timestamp | str | None = None, end: pd.Timestamp | str | None = None,
              sources: SiteSeriesSources | None = None, export_prices: Sequence[str | Path] = ()) -> BacktestData:
    """Read and align the site's prices, load and solar for ``[start, end)``."""
    start = None if start is None else utc_time(start, "--start")
    end = None if end is None else utc_time(end, "--end")
    files = select_month_files(expand_price_paths(prices), start, end)
    frame = read_price_files(files, None if price_format in (None, "auto") else price_format,
                             site.provider.retail, site.provider.region,
                             expand_price_paths(export_prices) if export_prices else ())
    return build_backtest_data(site, frame, start, end, sources, price_source=frame.attrs.get("source", "prices"))


def backtest_site(site: SiteConfig, prices: Sequence[str | Path], config: BacktestConfig | None = None,
                  price_format: str | None = None, start: pd.Timestamp | str | None = None,
                  end: pd.Timestamp | str | None = None, sources: SiteSeriesSources | None = None,
                  on_progress: Callable[[int], None] | None = None,
                  export_prices: Sequence[str | Path] = ()) -> BacktestResult:
    """Replay ``prices`` for ``site`` over ``[start, end)`` with every strategy in ``config``."""
    config = config or BacktestConfig(spike_threshold_per_mwh=site.provider.spike_threshold_per_mwh)
    config = _with_price_history(config, site, prices)
    config = _with_site_reserve(config, site)
    data = load_data(site, prices, price_format, start, end, sources, export_prices)
    result = run_backtest(data, BatterySpec.from_site(site), config, on_progress=on_progress)
    result.summary["site_id"] = site.id
    return result


HISTORY_MODELS = ("learned", "blended")


def _with_price_history(config: BacktestConfig, site: SiteConfig, prices: Sequence[str | Path]) -> BacktestConfig:
    """Learned models also read the ``--prices`` sources *before* the window (the engine keeps ~3 days).

    Passed as the ``history_sources`` option (read leniently by the model: files it cannot read as AEMO
    history are ignored); an explicit ``history`` option wins.
    """
    opts = config.forecast_options
    if config.forecast not in HISTORY_MODELS or opts.param("history") is not None or not prices:
        return config
    extra = [("history_sources", tuple(str(p) for p in prices))]
    if opts.param("region") is None and site.provider.region:
        extra.append(("region", site.provider.region))
    return _with_params(config, extra)


def _with_site_reserve(config: BacktestConfig, site: SiteConfig) -> BacktestConfig:
    """Learned models plan with the site's own spike-reserve settings (``features.spike_reserve``), as the live
    blend does; only the settings the site changed are passed, and an explicit forecast option wins."""
    from ..forecasts.backtest_models import reserve_options

    if config.forecast not in HISTORY_MODELS:
        return config
    opts = config.forecast_options
    extra = [(name, value) for name, value in reserve_options(site.features.spike_reserve.rule())
             if opts.param(name) is None]
    return _with_params(config, extra)


def _with_params(config: BacktestConfig, extra: Sequence[tuple[str, object]]) -> BacktestConfig:
    """``config`` with ``extra`` forecast options appended (itself when there are none)."""
    if not extra:
        return config
    opts = config.forecast_options
    return replace(config, forecast_options=replace(opts, params=tuple(opts.params) + tuple(extra)))
