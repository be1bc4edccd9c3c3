"""Synthetic 24-hour days on the 5-min grid (Melbourne summer, from 17:00 local) for the EV mode tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from powersync_pipelines.ev.session import ChargerLimits, EvSession
from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem

START = pd.Timestamp("2024-02-12T06:00Z")  # 17:00 local
N = 288
HOURS = (np.arange(N) * 5 / 60 + 17) % 24


def day(kind: str, battery_soc: float = 0.5) -> OptimizationProblem:
    """``sunny``, ``cloudy``, ``cheap_night`` (0.08 $/kWh 00-06) or ``spike_evening`` (5 $/kWh 17-20)."""
    h = HOURS
    price = np.full(N, 0.30)
    peak_kw = 7.0 if kind == "sunny" else 0.6 if kind == "cloudy" else 4.0
    if kind == "cheap_night":
        price = np.where((h >= 0) & (h < 6), 0.08, price)
    if kind == "spike_evening":
        price = np.where((h >= 17) & (h < 20), 5.0, price)
    price = np.where((h >= 10) & (h < 15), price - 0.15, price)  # cheaper midday (solar in the market)
    solar = np.clip(peak_kw * np.sin((h - 6) / 12 * np.pi), 0.0, None)
    load = 0.5 + 1.2 * np.exp(-((h - 19) / 2) ** 2)
    return OptimizationProblem(START, price, price - 0.22, solar, load, BatteryParams(13.5, battery_soc, 5.0, 5.0),
                               export_limit_kw=5.0, import_limit_kw=15.0)


def session(energy_kwh: float = 20.0, hours: float = 23.0, mode: str = "cost_optimized", max_amps: float = 32,
            phases: int = 1, allow_battery_to_ev: bool = False) -> EvSession:
    return EvSession(START, START + pd.Timedelta(hours=hours), energy_kwh, ChargerLimits(6, max_amps, phases, 230.0),
                     0.9, mode, allow_battery_to_ev)
