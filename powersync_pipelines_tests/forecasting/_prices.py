"""Synthetic wholesale prices with the features the model must learn: a daily shape, weekends, noise and
evening spikes that persist for a while once they start."""

from __future__ import annotations

import numpy as np
import pandas as pd

from powersync_pipelines.backtest import BacktestData
from powersync_pipelines.forecasts.price_mapping import RetailMap

TZ = "Australia/Melbourne"


def rrp_series(days: float = 20, start: str = "2024-05-01T14:00:00Z", seed: int = 1, spikes: bool = True,
              spike_rate: float = 0.02) -> pd.Series:
    """$/MWh by UTC interval start: cheap middays, an evening peak, AR(1) noise, occasional 1-2 h spikes."""
    rng = np.random.default_rng(seed)
    n = int(days * 288)
    idx = pd.date_range(start, periods=n, freq="5min", tz="UTC")
    local = idx.tz_convert(TZ)
    h = np.asarray(local.hour + local.minute / 60)
    shape = 80 + 120 * np.exp(-(((h - 18.5) / 1.5) ** 2)) - 90 * np.exp(-(((h - 12.5) / 2.5) ** 2))
    shape = shape - 15 * np.asarray(local.dayofweek >= 5)
    noise = np.zeros(n)
    for k in range(1, n):
        noise[k] = 0.9 * noise[k - 1] + rng.normal(0, 8)
    x = shape + noise
    if spikes:
        starts = [k for k in range(n) if 17.5 <= h[k] < 18 and rng.random() < spike_rate]
        for s in starts:
            x[s:s + int(rng.integers(6, 24))] += rng.uniform(800, 3000)
    return pd.Series(np.round(x, 3), index=idx, name="rrp")


def retail(rrp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark tariff: import 1.1 x RRP/1000 + 0.12 floored at 0, export RRP/1000."""
    r = np.asarray(rrp, float) / 1000
    return np.maximum(1.1 * r + 0.12, 0.0), r


# The same tariff as (import, export) maps from RRP $/MWh, as the planner's price mapping sees it.
RETAIL_MAPS = RetailMap.from_retail(0.12 / 1.1, 0.10, 0.0, 1.0, 0.0)


def house(index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    local = index.tz_convert(TZ)
    h = np.asarray(local.hour + local.minute / 60)
    load = 0.5 + 1.5 * np.exp(-(((h - 19) / 2) ** 2)) + 0.6 * np.exp(-(((h - 7.5) / 1) ** 2))
    solar = np.maximum(0.0, 2.0 * np.sin((h - 6.5) / 13 * np.pi))
    return np.round(load, 4), np.round(solar, 4)


def backtest_data(rrp: pd.Series, history_days: float, days: float) -> BacktestData:
    """A BacktestData over ``rrp`` whose accounted window starts after ``history_days``."""
    imp, exp = retail(rrp.to_numpy())
    load, solar = house(rrp.index)
    i0 = int(history_days * 288)
    return BacktestData(index=rrp.index, import_price=imp, export_price=exp, load_kw=load, solar_kw=solar,
                        i0=i0, i1=i0 + int(days * 288), rrp=rrp.to_numpy(), timezone=TZ)
