"""Map a one-year household profile onto any backtest dates.

The shipped real profile (Ausgrid customer 12, ``local_time`` naive wall clock, 30-min interval start, mean
kW, July 2011 to June 2012) has one value per half-hour of a calendar year. A backtest interval takes the
profile value of the same calendar day (month and day) and the same local wall-clock half-hour: January 2024
uses 2012-01-xx, August 2024 uses 2011-08-xx. 29 February exists (2012 is a leap year). Weekdays are not
matched (the profile has no weekday signal worth the complexity); on DST change days both repeated
half-hours map to the same profile row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BacktestInputError


def read_profile(path: str | Path) -> pd.DataFrame:
    """A profile CSV with ``local_time`` (naive) and ``load_kw`` and/or ``solar_kw``, keyed by (month, day, minute)."""
    p = Path(path)
    if not p.exists():
        raise BacktestInputError(f"load/solar profile not found: {p}")
    df = pd.read_csv(p)
    if "local_time" not in df.columns or not ({"load_kw", "solar_kw"} & set(df.columns)):
        raise BacktestInputError(f"{p.name}: a profile needs columns local_time and load_kw and/or solar_kw")
    t = pd.to_datetime(df["local_time"], format="ISO8601")
    if getattr(t.dt, "tz", None) is not None:
        raise BacktestInputError(f"{p.name}: profile local_time must be naive local wall-clock time")
    step = t.diff().dropna().mode()
    if len(step) and step.iloc[0] not in (pd.Timedelta(minutes=m) for m in (5, 15, 30, 60)):
        raise BacktestInputError(f"{p.name}: profile step {step.iloc[0]} is not 5, 15, 30 or 60 minutes")
    out = df.drop(columns=["local_time"]).copy()
    out["month"], out["day"] = t.dt.month.to_numpy(), t.dt.day.to_numpy()
    out["minute"] = (t.dt.hour * 60 + t.dt.minute).to_numpy()
    out.attrs["step_minutes"] = int(step.iloc[0].total_seconds() // 60) if len(step) else 30
    out.attrs["name"] = p.name
    return out.drop_duplicates(["month", "day", "minute"], keep="first").reset_index(drop=True)


def map_profile(profile: pd.DataFrame, index: pd.DatetimeIndex, timezone: str, column: str) -> np.ndarray:
    """Values of ``column`` for each UTC interval start in ``index`` by local calendar day and wall-clock time."""
    if column not in profile.columns:
        raise BacktestInputError(f"profile {profile.attrs.get('name', '')}: no column {column}")
    step = int(profile.attrs.get("step_minutes", 30))
    local = index.tz_convert(timezone)
    minute = (local.hour * 60 + local.minute) // step * step
    keys = pd.MultiIndex.from_arrays([local.month, local.day, minute])
    table = profile.set_index(["month", "day", "minute"])[column]
    values = table.reindex(keys).to_numpy(dtype=float)
    if np.isnan(values).any():
        # A profile without 29 Feb (non-leap year) or with a hole: borrow the previous calendar day.
        prev = local - pd.Timedelta(days=1)
        alt = table.reindex(pd.MultiIndex.from_arrays([prev.month, prev.day, minute])).to_numpy(dtype=float)
        values = np.where(np.isnan(values), alt, values)
    if np.isnan(values).any():
        bad = index[np.isnan(values)][0]
        raise BacktestInputError(
            f"profile {profile.attrs.get('name', '')}: no {column} value for {bad.tz_convert(timezone)} "
            f"({int(np.isnan(values).sum())} intervals missing)"
        )
    return values
