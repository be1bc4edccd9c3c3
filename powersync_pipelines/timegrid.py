"""The 5-minute planning grid: interval starts, timezone-aware UTC, and the 48-hour horizon.

Every stage (prices, forecasts, the planner, the backtest) shares these constants; local time appears only at
the edges (tariff periods, display).
"""

from __future__ import annotations

import pandas as pd

INTERVAL_MINUTES = 5
STEP = pd.Timedelta(minutes=INTERVAL_MINUTES)
DT_H = INTERVAL_MINUTES / 60  # hours per interval
STEPS_PER_HOUR = 60 // INTERVAL_MINUTES
STEPS_PER_DAY = 24 * STEPS_PER_HOUR
HORIZON_HOURS = 48
HORIZON_STEPS = HORIZON_HOURS * STEPS_PER_HOUR


def on_grid(ts: pd.Timestamp | str) -> pd.Timestamp:
    """``ts`` as UTC, floored to the start of its 5-minute interval (a naive time is taken as UTC)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.floor(f"{INTERVAL_MINUTES}min")


def horizon_index(start: pd.Timestamp, hours: float = HORIZON_HOURS) -> pd.DatetimeIndex:
    """The interval starts of the planning horizon from ``start`` (UTC, 5-minute)."""
    return pd.date_range(start, periods=int(hours * STEPS_PER_HOUR), freq=STEP, tz="UTC", name="interval_start")
