"""Small synthetic worlds for backtest tests: a daily price shape, a house, a battery, on a UTC grid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from powersync_pipelines.backtest import BacktestData, BatterySpec

SITES_YAML = """
sites:
  - id: home
    timezone: Australia/Melbourne
    provider:
      kind: aemo
      region: VIC1
      retail: {network_adder_per_kwh: 0.12, gst: 0.10, import_floor_per_kwh: 0.0, export_factor: 1.0, export_fee_per_kwh: 0.0}
    battery:
      kind: simulated
      capacity_kwh: 13.5
      max_charge_kw: 5.0
      max_discharge_kw: 5.0
      charge_efficiency: 0.95
      discharge_efficiency: 0.95
      backup_reserve_pct: 10
      optimizer_reserve_pct: 20
    load: {profile: data/profiles/ausgrid_customer12.csv}
    limits: {export_kw: 5.0, import_kw: 15.0}
"""


def spec(**kw: float) -> BatterySpec:
    base = dict(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, charge_efficiency=0.95,
                discharge_efficiency=0.95, reserve=0.2, soc_initial=0.5, export_limit_kw=5.0, import_limit_kw=15.0,
                wear_cost_per_kwh=0.01)
    base.update(kw)
    return BatterySpec(**base)


def daily_prices(index: pd.DatetimeIndex, tz: str = "Australia/Melbourne") -> tuple[np.ndarray, np.ndarray]:
    """Cheap middays, an evening peak: the shape that pays a battery every day (identical every day)."""
    local = index.tz_convert(tz)
    h = local.hour + local.minute / 60
    imp = 0.25 + 0.30 * np.exp(-(((h - 18.5) / 1.5) ** 2)) - 0.17 * np.exp(-(((h - 12.5) / 2.5) ** 2))
    return np.round(imp, 5), np.round(imp - 0.15, 5)


def house(index: pd.DatetimeIndex, tz: str = "Australia/Melbourne") -> tuple[np.ndarray, np.ndarray]:
    local = index.tz_convert(tz)
    h = local.hour + local.minute / 60
    load = 0.5 + 1.5 * np.exp(-(((h - 19) / 2) ** 2)) + 0.6 * np.exp(-(((h - 7.5) / 1) ** 2))
    solar = np.maximum(0.0, 4.0 * np.sin((h - 6.5) / 13 * np.pi))
    return np.round(load, 4), np.round(solar, 4)


def world(days: float = 2, history_days: float = 1, start: str = "2024-03-10T13:00:00Z", lookahead_days: float = 2,
          prices: tuple[np.ndarray, np.ndarray] | None = None) -> BacktestData:
    """``history_days`` before and ``lookahead_days`` after a ``days``-long accounted window."""
    per_day = 288
    t0 = pd.Timestamp(start) - pd.Timedelta(days=history_days)
    n = int((history_days + days + lookahead_days) * per_day)
    index = pd.date_range(t0, periods=n, freq="5min", tz="UTC")
    imp, exp = prices if prices is not None else daily_prices(index)
    load, solar = house(index)
    i0 = int(history_days * per_day)
    return BacktestData(index=index, import_price=imp, export_price=exp, load_kw=load, solar_kw=solar,
                        i0=i0, i1=i0 + int(days * per_day), timezone="Australia/Melbourne")
