"""Household load forecast.

With at least ``min_history_days`` of measured load in DuckDB: a same-time-of-day profile over recent days,
weighted towards the most recent, with same-weekday days counted double. Otherwise a shipped real household
profile (Ausgrid customer 12, 30-min mean kW, local time) mapped by day-of-year and local time of day.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import SiteConfig
from ..paths import resolve_data_path


class LoadProfileError(ValueError):
    pass


@lru_cache(maxsize=4)
def _read_profile(path: str) -> pd.DataFrame:
    f = Path(path)
    if not f.exists():
        raise LoadProfileError(f"load profile not found: {f}")
    df = pd.read_csv(f, parse_dates=["local_time"])
    missing = {"local_time", "load_kw"} - set(df.columns)
    if missing:
        raise LoadProfileError(f"{f.name}: load profile is missing columns {sorted(missing)}")
    if (df["load_kw"] < 0).any() or df["load_kw"].isna().any():
        raise LoadProfileError(f"{f.name}: load_kw must be non-negative numbers")
    df["doy_key"] = df["local_time"].dt.strftime("%m-%d")
    df["tod"] = df["local_time"].dt.hour * 60 + df["local_time"].dt.minute
    return df.set_index(["doy_key", "tod"]).sort_index()


def profile_load_kw(site: SiteConfig, index: pd.DatetimeIndex) -> pd.Series:
    """The shipped profile for each UTC interval in ``index``, via the site's local date and time of day."""
    base = Path(site.base_dir) if site.base_dir else None
    prof = _read_profile(str(resolve_data_path(site.load.profile, base)))
    local = index.tz_convert(site.tz)
    keys = local.strftime("%m-%d")
    tod = (local.hour * 60 + local.minute) // 30 * 30
    lookup = prof["load_kw"]
    vals = lookup.reindex(pd.MultiIndex.from_arrays([keys, tod])).to_numpy()
    if np.isnan(vals).any():  # dates missing from the profile year (e.g. 29 Feb): use 28 Feb
        alt = lookup.reindex(pd.MultiIndex.from_arrays([np.where(keys == "02-29", "02-28", keys), tod])).to_numpy()
        vals = np.where(np.isnan(vals), alt, vals)
    vals = np.nan_to_num(vals, nan=float(lookup.mean()))
    if site.load.annual_kwh:
        annual = float(lookup.mean()) * 8760.0
        vals = vals * (site.load.annual_kwh / annual)
    return pd.Series(vals, index=index, name="load_kw")


def history_load_kw(history: pd.Series, index: pd.DatetimeIndex, tz: str, days: int = 14,
                    half_life_days: float = 4.0) -> pd.Series:
    """Recency-weighted same-time-of-day mean of measured load (kW), same weekday counted double."""
    hist = history.dropna()
    hist = hist[hist.index >= index[0] - pd.Timedelta(days=days)]
    hist = hist.resample("5min").mean().dropna()
    if hist.empty:
        raise LoadProfileError("no measured load history")
    hl = hist.index.tz_convert(tz)
    age_days = (index[0] - hist.index).total_seconds().to_numpy() / 86400.0
    w = 0.5 ** (age_days / half_life_days)
    frame = pd.DataFrame({"v": hist.to_numpy(), "w": w, "tod": hl.hour * 60 + hl.minute, "dow": hl.dayofweek})
    target = index.tz_convert(tz)
    out = np.empty(len(index))
    for tod_val, grp in frame.groupby("tod"):
        mask = (target.hour * 60 + target.minute) == tod_val
        if not mask.any():
            continue
        for dow in np.unique(target.dayofweek[mask]):
            sel = mask & (target.dayofweek == dow)
            weights = grp["w"].to_numpy() * np.where(grp["dow"].to_numpy() == dow, 2.0, 1.0)
            out[sel] = float(np.average(grp["v"].to_numpy(), weights=weights))
    missing = ~np.isin(target.hour * 60 + target.minute, frame["tod"].unique())
    out[missing] = float(np.average(frame["v"], weights=frame["w"]))
    return pd.Series(out, index=index, name="load_kw")


def load_forecast_kw(site: SiteConfig, index: pd.DatetimeIndex, history: pd.Series | None = None,
                     min_history_days: float = 7.0) -> tuple[pd.Series, str]:
    """(forecast, model name): measured history when long enough, else the shipped profile."""
    if history is not None and not history.dropna().empty:
        span = history.dropna().index.max() - history.dropna().index.min()
        if span >= pd.Timedelta(days=min_history_days):
            return history_load_kw(history, index, site.timezone), "history_profile"
    return profile_load_kw(site, index), "standard_profile"
