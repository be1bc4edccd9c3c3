"""One call from a site and its files to a finished backtest (used by the CLI, the asset and the benchmark)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    data = load_data(site, prices, price_format, start, end, sources, export_prices)
    result = run_backtest(data, BatterySpec.from_site(site), config, on_progress=on_progress)
    result.summary["site_id"] = site.id
    return result
