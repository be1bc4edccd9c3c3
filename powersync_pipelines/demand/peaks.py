"""The billing month's peak import inside the demand window, from telemetry, and the optimizer's input.

A demand tariff bills ``price_per_kw_month`` x the highest average import over one measurement interval
(30 min by default) whose start lies in the window (local time, listed weekdays), once per local calendar
month. So the month's peak so far is a sunk cost: a plan only pays for exceeding it. ``demand_charge_for``
builds ``optimizer.DemandCharge`` (window per 5-min interval, the price, the peak so far); intervals in the
next billing month are left out of the window, since their peak starts from zero and the LP has one peak.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..config import SiteConfig
from ..config.demand import DemandChargeConfig
from ..optimizer.problem import DemandCharge
from ..storage import HistoryStore


class DemandError(ValueError):
    """Demand inputs that cannot be used as given (one line)."""


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def window_mask(index: pd.DatetimeIndex, cfg: DemandChargeConfig, tz: str | ZoneInfo) -> np.ndarray:
    """True where the interval starting at ``index`` (UTC) is inside the window (local time and weekday).

    A window whose end is earlier than its start runs past midnight; its after-midnight part belongs to the
    weekday it started on.
    """
    if index.tz is None:
        raise DemandError("demand window: the index must be timezone-aware (UTC)")
    local = index.tz_convert(tz)
    mins = local.hour * 60 + local.minute
    a, b = _minutes(cfg.start), _minutes(cfg.end)
    days = cfg.weekday_numbers()
    wd = np.asarray(local.weekday)
    if a < b:
        return np.asarray((mins >= a) & (mins < b)) & np.isin(wd, list(days))
    late = np.asarray(mins >= a) & np.isin(wd, list(days))
    early = np.asarray(mins < b) & np.isin((wd - 1) % 7, list(days))
    return late | early


def interval_averages(ts: pd.Series, interval_minutes: int = 30) -> pd.Series:
    """Mean import (kW) per UTC measurement interval from a telemetry series (UTC index, kW >= 0)."""
    if ts.empty:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC", name="interval_start"))
    if ts.index.tz is None:
        raise DemandError("telemetry index must be timezone-aware (UTC)")
    vals = ts.astype(float)
    if (vals < 0).any():
        raise DemandError(f"grid import must be >= 0 kW, got {vals.min():g} at {vals.idxmin()}")
    out = vals.resample(f"{interval_minutes}min", label="left", closed="left").mean().dropna()
    out.index.name = "interval_start"
    return out


def read_interval_imports(store, site_id: str, interval_minutes: int = 30, start: pd.Timestamp | None = None,  # noqa: ANN001 - HistoryStore
                          end: pd.Timestamp | None = None) -> pd.Series:
    """Mean import per measurement interval from the stored telemetry (the 30-min view, or aggregated here)."""
    params: list = [site_id]
    where = "site_id = ?"
    if start is not None:
        where += " AND {t} >= ?"
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        where += " AND {t} < ?"
        params.append(pd.Timestamp(end).to_pydatetime())
    if interval_minutes == 30:
        df = store.query(f"SELECT interval_start, import_kw FROM demand_import_30min WHERE {where.format(t='interval_start')} "
                         "ORDER BY interval_start", params)
        s = pd.Series(df["import_kw"].to_numpy(dtype=float), index=pd.DatetimeIndex(pd.to_datetime(df["interval_start"], utc=True), name="interval_start"))
        return s
    df = store.query(f"SELECT ts, coalesce(grid_import_kw, 0.0) AS kw FROM telemetry WHERE {where.format(t='ts')} ORDER BY ts", params)
    return interval_averages(pd.Series(df["kw"].to_numpy(dtype=float), index=pd.DatetimeIndex(pd.to_datetime(df["ts"], utc=True))),
                             interval_minutes)


def month_peaks(averages: pd.Series, cfg: DemandChargeConfig, tz: str | ZoneInfo) -> pd.DataFrame:
    """Per local billing month: the peak interval average in the window, when, and the demand charge."""
    cols = ["month", "peak_kw", "peak_at", "charge"]
    if averages.empty:
        return pd.DataFrame(columns=cols)
    inside = averages[window_mask(averages.index, cfg, tz)]
    if inside.empty:
        return pd.DataFrame(columns=cols)
    month = inside.index.tz_convert(tz).strftime("%Y-%m")
    rows = []
    for m, grp in inside.groupby(month):
        at = grp.idxmax()
        rows.append({"month": m, "peak_kw": float(grp.max()), "peak_at": at, "charge": float(grp.max()) * cfg.price_per_kw_month})
    return pd.DataFrame(rows, columns=cols)


def month_peak_so_far(averages: pd.Series, cfg: DemandChargeConfig, tz: str | ZoneInfo, now: pd.Timestamp) -> float:
    """The peak (kW) already set in ``now``'s billing month, from intervals that ended by ``now``."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    local_now = pd.Timestamp(now).tz_convert(zone)
    month_start = local_now.normalize().replace(day=1).tz_convert("UTC")
    step = pd.Timedelta(minutes=cfg.interval_minutes)
    s = averages[(averages.index >= month_start) & (averages.index + step <= pd.Timestamp(now))]
    if s.empty:
        return 0.0
    inside = s[window_mask(s.index, cfg, tz)]
    return float(inside.max()) if len(inside) else 0.0


def demand_charge_for(index: pd.DatetimeIndex, cfg: DemandChargeConfig, tz: str | ZoneInfo,
                      existing_peak_kw: float) -> DemandCharge | None:
    """The optimizer's demand input for a plan on ``index`` (UTC interval starts); None when disabled."""
    if not cfg.enabled:
        return None
    if not np.isfinite(existing_peak_kw) or existing_peak_kw < 0:
        raise DemandError(f"existing peak must be a number >= 0 kW, got {existing_peak_kw!r}")
    mask = window_mask(index, cfg, tz)
    month = index.tz_convert(tz).strftime("%Y-%m")
    mask &= np.asarray(month == month[0])
    return DemandCharge(mask, cfg.price_per_kw_month, float(existing_peak_kw), cfg.interval_minutes)


def avoided_demand_cost(peak_without_kw: float, peak_with_kw: float, existing_peak_kw: float, price_per_kw: float) -> float:
    """What respecting the demand charge saved this month: the billed peak without it minus with it, x price."""
    billed_without = max(peak_without_kw, existing_peak_kw)
    billed_with = max(peak_with_kw, existing_peak_kw)
    return max(0.0, billed_without - billed_with) * price_per_kw


def strategy_demand_report(intervals: pd.DataFrame, cfg: DemandChargeConfig, tz: str | ZoneInfo) -> dict:
    """Demand charges each strategy's realised imports would be billed (a backtest's ``intervals``: columns
    ``interval_start``, ``strategy``, ``grid_import_kw``), per month, and what each avoided against ``none``."""
    out: dict = {"tariff": {"start": cfg.start, "end": cfg.end, "weekdays": list(cfg.weekdays),
                            "price_per_kw_month": cfg.price_per_kw_month, "interval_minutes": cfg.interval_minutes},
                 "strategies": {}}
    for s, grp in intervals.groupby("strategy", sort=False):
        ts = pd.Series(grp["grid_import_kw"].to_numpy(dtype=float),
                       index=pd.DatetimeIndex(pd.to_datetime(grp["interval_start"], utc=True)))
        peaks = month_peaks(interval_averages(ts, cfg.interval_minutes), cfg, tz)
        out["strategies"][s] = {
            "demand_charge": round(float(peaks["charge"].sum()), 4) if len(peaks) else 0.0,
            "months": [{"month": r["month"], "peak_kw": round(r["peak_kw"], 4), "peak_at": r["peak_at"].isoformat(),
                        "charge": round(r["charge"], 4)} for r in peaks.to_dict(orient="records")],
        }
    base = out["strategies"].get("none", {}).get("demand_charge")
    if base is not None:
        for v in out["strategies"].values():
            v["avoided_vs_no_battery"] = round(base - v["demand_charge"], 4)
    return out


def site_demand_charge(store: HistoryStore | None, site: SiteConfig, now: pd.Timestamp,
                       index: pd.DatetimeIndex) -> DemandCharge | None:
    """The live plan's demand input for ``site`` on ``index``: its tariff, starting from the billing month's
    peak so far in the stored telemetry (0 kW without a store or telemetry); None without a demand tariff."""
    cfg = site.features.demand_charge
    if cfg is None or not cfg.enabled:
        return None
    peak = 0.0
    if store is not None:
        month_start = pd.Timestamp(now).tz_convert(site.timezone).normalize().replace(day=1).tz_convert("UTC")
        imports = read_interval_imports(store, site.id, cfg.interval_minutes, start=month_start, end=pd.Timestamp(now))
        peak = month_peak_so_far(imports, cfg, site.timezone, now)
    return demand_charge_for(index, cfg, site.timezone, peak)


def record_month_peak(store: HistoryStore, site: SiteConfig, now: pd.Timestamp) -> dict | None:
    """Store the billing month's peak so far for ``site`` (``demand_month_peaks``) from its telemetry up to
    ``now``; the row, or None for a site without a demand tariff."""
    cfg = site.features.demand_charge
    if cfg is None or not cfg.enabled:
        return None
    now = pd.Timestamp(now)
    local = now.tz_convert(site.timezone)
    month_start = local.normalize().replace(day=1).tz_convert("UTC")
    step = pd.Timedelta(minutes=cfg.interval_minutes)
    imports = read_interval_imports(store, site.id, cfg.interval_minutes, start=month_start, end=now)
    ended = imports[imports.index + step <= now]
    inside = ended[window_mask(ended.index, cfg, site.timezone)] if len(ended) else ended
    peak = float(inside.max()) if len(inside) else 0.0
    row = {"site_id": site.id, "month": local.strftime("%Y-%m"), "peak_kw": peak,
           "peak_at": inside.idxmax() if len(inside) else None, "charge": peak * cfg.price_per_kw_month,
           "price_per_kw_month": cfg.price_per_kw_month, "interval_minutes": cfg.interval_minutes,
           "intervals": len(inside), "updated_at": pd.Timestamp.now(tz="UTC")}
    store.upsert("demand_month_peaks", pd.DataFrame([row]), ["site_id", "month"])
    return row
