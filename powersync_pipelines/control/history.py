"""Calendar history of a site from its own DuckDB history: energy per flow and cost against the no-battery
baseline, per local day, week, month or year (what an app's history view plots).

Energy comes from ``telemetry`` (kW samples). Each sample holds until the next one, but never longer than
:data:`GAP_LIMIT`: a site that was offline for a day contributes nothing for that day instead of its last reading
stretched over it. The integral is kept as a piecewise-linear cumulative curve, so a bucket edge (local midnight,
also across a DST change) that falls inside a sample's interval splits that interval exactly.

Cost uses the stored ``prices`` ($/kWh) of the interval containing each sample: actual = import x import price -
export x export price; the baseline is the same site without the battery (grid = load - solar). Only priced
energy with a load reading is costed (actual and baseline over the same samples, so the savings compare like
with like), and ``priced_hours`` says how much of the bucket that was. ``planned_cost`` is the same bucket
priced from the latest plan covering each interval of ``schedule`` (what the optimizer expected). Pure: no Dagster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..storage import HistoryStore
from ..timegrid import STEP

PERIODS = ("day", "week", "month", "year", "lifetime")
FLOWS = ("grid_import", "grid_export", "battery_charge", "battery_discharge", "solar", "load")
GAP_LIMIT = pd.Timedelta(minutes=15)  # a sample never stands for longer than this
MAX_PRICE_INTERVAL = pd.Timedelta(minutes=30)  # the longest settlement interval a stored price covers
MAX_BUCKETS = 3660  # ten years of days: a bigger request is a typo, not a history view


class HistoryInputError(ValueError):
    """A period or date range that cannot be answered (one line saying why)."""


@dataclass(frozen=True)
class Window:
    """Bucket edges as UTC instants, ``edges[i]`` to ``edges[i + 1]`` being bucket ``i`` (local labels)."""

    edges: pd.DatetimeIndex
    labels: list[str]


def _period_start(t: pd.Timestamp, period: str) -> pd.Timestamp:
    """The local start of the ``period`` containing local ``t`` (computed on the wall clock, then localized)."""
    day = t.tz_localize(None).normalize()
    if period == "week":
        day = day - pd.Timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    elif period == "year":
        day = day.replace(month=1, day=1)
    return day.tz_localize(t.tz, ambiguous=True, nonexistent="shift_forward")


def _next_start(t: pd.Timestamp, period: str) -> pd.Timestamp:
    """The local start of the period after the one starting at ``t``, by calendar (a DST day is 23 or 25 h)."""
    naive = t.tz_localize(None)
    step = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1),
            "year": pd.DateOffset(years=1)}[period]
    return (naive + step).tz_localize(t.tz, ambiguous=True, nonexistent="shift_forward")


def _label(t: pd.Timestamp, period: str) -> str:
    if period == "week":
        year, week, _ = t.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return t.strftime("%Y-%m")
    if period == "year":
        return t.strftime("%Y")
    return t.strftime("%Y-%m-%d")


def parse_when(text: str, tz: ZoneInfo, what: str) -> pd.Timestamp:
    """``YYYY-MM-DD`` (a local day) or an ISO instant, as a local timestamp."""
    try:
        if len(text.strip()) == 10:
            day = dt.date.fromisoformat(text.strip())
            return pd.Timestamp(day).tz_localize(tz)
        t = pd.Timestamp(text.strip())
    except ValueError:
        raise HistoryInputError(f"--{what} must be a date YYYY-MM-DD or an ISO time, got {text!r}") from None
    return (t.tz_localize(tz) if t.tzinfo is None else t.tz_convert(tz))


def window(period: str, tz: ZoneInfo, now: pd.Timestamp, start: str | None = None, end: str | None = None,
           first_sample: pd.Timestamp | None = None) -> Window:
    """The buckets of ``period`` covering ``start`` .. ``end`` (both local dates inclusive, or instants);
    without them the period containing ``now``. ``lifetime`` is one bucket from the first sample to now."""
    if period not in PERIODS:
        raise HistoryInputError(f"--period must be one of {', '.join(PERIODS)}, got {period!r}")
    local_now = now.tz_convert(tz)
    if period == "lifetime":
        lo = (first_sample if first_sample is not None else local_now).tz_convert(tz)
        return Window(pd.DatetimeIndex([lo, max(lo, local_now)]).tz_convert("UTC"), ["lifetime"])
    lo = parse_when(start, tz, "start") if start else local_now
    hi = parse_when(end, tz, "end") if end else (lo if start else local_now)
    if hi < lo:
        raise HistoryInputError(f"--end {end} is before --start {start}")
    t = _period_start(lo, period)
    edges, labels = [t], []
    while t <= hi:
        labels.append(_label(t, period))
        t = _next_start(t, period)
        edges.append(t)
        if len(labels) > MAX_BUCKETS:
            raise HistoryInputError(f"--start {start} .. --end {end} spans more than {MAX_BUCKETS} {period}s")
    return Window(pd.DatetimeIndex(edges).tz_convert("UTC"), labels)


def _ns(index: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns").asi8


def integrate(starts: np.ndarray, ends: np.ndarray, rate: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per bucket between ``edges``: the sum of ``rate`` (per hour) x the hours of each ``[start, end)`` that
    falls in it. Intervals must be sorted and not overlap; NaN rates count as zero."""
    if len(starts) == 0:
        return np.zeros(len(edges) - 1)
    hours = (ends - starts) / 3.6e12
    amount = np.nan_to_num(rate, nan=0.0) * hours
    before = np.concatenate([[0.0], np.cumsum(amount)[:-1]])
    x = np.empty(2 * len(starts))
    y = np.empty(2 * len(starts))
    x[0::2], x[1::2] = starts, ends
    y[0::2], y[1::2] = before, before + amount
    cum = np.interp(edges.astype(float), x.astype(float), y)
    return np.diff(cum)


def _telemetry(store: HistoryStore, site_id: str, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    cols = ", ".join(f"{f}_kw" for f in FLOWS)
    df = store.query(f"SELECT ts, {cols} FROM telemetry WHERE site_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
                     [site_id, (lo - GAP_LIMIT).to_pydatetime(), hi.to_pydatetime()])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    for f in FLOWS:  # a negative reading of a one-directional flow is a sensor sign error: not energy
        df[f"{f}_kw"] = pd.to_numeric(df[f"{f}_kw"], errors="coerce").clip(lower=0)
    return df


def _sample_ends(ts: pd.Series) -> np.ndarray:
    """Each sample holds until the next one, capped at :data:`GAP_LIMIT`; the last one for one typical spacing."""
    t = _ns(ts)
    gaps = np.diff(t)
    typical = float(np.median(gaps)) if len(gaps) else STEP.value
    nxt = np.concatenate([t[1:], [t[-1] + min(typical, GAP_LIMIT.value)]])
    return np.minimum(nxt, t + GAP_LIMIT.value)


def _prices_at(store: HistoryStore, site_id: str, ts: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    """Import and export price ($/kWh) of the stored interval containing each sample (NaN where none)."""
    p = store.query("SELECT interval_start, import_price, export_price FROM prices WHERE site_id = ? "
                    "AND interval_start >= ? AND interval_start < ? ORDER BY interval_start",
                    [site_id, (lo - MAX_PRICE_INTERVAL).to_pydatetime(), hi.to_pydatetime()])
    out = pd.DataFrame({"ts": ts.reset_index(drop=True)})
    if p.empty:
        out["import_price"] = out["export_price"] = np.nan
        return out
    p["interval_start"] = pd.to_datetime(p["interval_start"], utc=True).astype(out["ts"].dtype)
    spacing = p["interval_start"].diff().median() if len(p) > 1 else MAX_PRICE_INTERVAL
    length = min(max(spacing, STEP), MAX_PRICE_INTERVAL) if pd.notna(spacing) else MAX_PRICE_INTERVAL
    merged = pd.merge_asof(out, p, left_on="ts", right_on="interval_start", direction="backward")
    stale = merged["ts"] - merged["interval_start"] >= length
    merged.loc[stale | merged["interval_start"].isna(), ["import_price", "export_price"]] = np.nan
    return merged


def planned_rates(store: HistoryStore, site_id: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Each 5-minute interval in [start, end) priced by the latest plan that covers it: ``interval_start`` and
    ``rate`` (import x price - export x price, currency per hour)."""
    return store.query(
        "SELECT DISTINCT ON (s.interval_start) s.interval_start, "
        "s.import_price * s.grid_import_kw - s.export_price * s.grid_export_kw AS rate "
        "FROM schedule s JOIN plans p ON p.plan_id = s.plan_id "
        "WHERE s.site_id = ? AND s.interval_start >= ? AND s.interval_start < ? "
        "ORDER BY s.interval_start, p.created_at DESC",
        [site_id, pd.Timestamp(start).tz_convert("UTC").to_pydatetime(),
         pd.Timestamp(end).tz_convert("UTC").to_pydatetime()])


def _planned_cost(store: HistoryStore, site_id: str, edges: pd.DatetimeIndex) -> np.ndarray:
    """Per bucket, the grid cost the latest plan covering each 5-minute interval expected (NaN: none)."""
    rows = planned_rates(store, site_id, edges[0], edges[-1])
    out = np.full(len(edges) - 1, np.nan)
    if rows.empty:
        return out
    starts = _ns(pd.to_datetime(rows["interval_start"], utc=True))
    e = _ns(edges)
    cost = integrate(starts, starts + STEP.value, rows["rate"].to_numpy(float), e)
    covered = integrate(starts, starts + STEP.value, np.ones(len(starts)), e)
    return np.where(covered > 0, cost, np.nan)


def _round(x: float, nd: int = 3) -> float | None:
    return None if not np.isfinite(x) else round(float(x), nd)


def calendar_history(store: HistoryStore, site_id: str, tz: ZoneInfo, period: str, now: pd.Timestamp,
                     start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """The history JSON: ``{"period", "time_zone", "start", "end", "totals", "buckets": [...]}``; each bucket has
    its local label and start/end, kWh per flow, coverage hours, and cost/baseline/savings where priced."""
    first = None
    if period == "lifetime":
        row = store.query("SELECT min(ts) AS first FROM telemetry WHERE site_id = ?", [site_id])
        if not row.empty and pd.notna(row["first"].iloc[0]):
            first = pd.Timestamp(row["first"].iloc[0]).tz_convert("UTC")
    win = window(period, tz, now, start, end, first)
    edges = win.edges
    e = _ns(edges)
    tel = _telemetry(store, site_id, edges[0], edges[-1])
    n = len(win.labels)
    energy = {f: np.zeros(n) for f in FLOWS}
    covered = priced = cost = baseline = np.zeros(n)
    if not tel.empty:
        s, t_end = _ns(tel["ts"]), _sample_ends(tel["ts"])
        for f in FLOWS:
            energy[f] = integrate(s, t_end, tel[f"{f}_kw"].to_numpy(float), e)
        covered = integrate(s, t_end, np.ones(len(s)), e)
        pr = _prices_at(store, site_id, tel["ts"], edges[0], edges[-1])
        ip, ep = pr["import_price"].to_numpy(float), pr["export_price"].to_numpy(float)
        load = tel["load_kw"].to_numpy(float)
        has = np.isfinite(ip) & np.isfinite(ep) & np.isfinite(load)  # no load reading: no baseline to compare
        imp, exp = tel["grid_import_kw"].to_numpy(float), tel["grid_export_kw"].to_numpy(float)
        net = np.nan_to_num(load) - np.nan_to_num(tel["solar_kw"].to_numpy(float))
        rate = np.where(has, np.nan_to_num(imp) * ip - np.nan_to_num(exp) * ep, 0.0)
        base = np.where(has, np.clip(net, 0, None) * ip - np.clip(-net, 0, None) * ep, 0.0)
        cost = integrate(s, t_end, rate, e)
        baseline = integrate(s, t_end, base, e)
        priced = integrate(s, t_end, has.astype(float), e)
    planned = _planned_cost(store, site_id, edges)
    buckets = []
    for i, label in enumerate(win.labels):
        is_priced = priced[i] > 0
        buckets.append({
            "label": label,
            "start": edges[i].tz_convert(tz).isoformat(), "end": edges[i + 1].tz_convert(tz).isoformat(),
            "hours": round((e[i + 1] - e[i]) / 3.6e12, 4),
            "covered_hours": _round(covered[i], 4), "priced_hours": _round(priced[i], 4),
            "energy_kwh": {f: _round(energy[f][i]) for f in FLOWS},
            "cost": _round(cost[i], 4) if is_priced else None,
            "baseline_cost": _round(baseline[i], 4) if is_priced else None,
            "savings": _round(baseline[i] - cost[i], 4) if is_priced else None,
            "planned_cost": _round(planned[i], 4),
        })
    any_priced = bool(np.any(np.asarray(priced) > 0))
    totals = {
        "covered_hours": _round(float(np.sum(covered)), 4),
        "energy_kwh": {f: _round(float(np.sum(energy[f]))) for f in FLOWS},
        "cost": _round(float(np.sum(cost)), 4) if any_priced else None,
        "baseline_cost": _round(float(np.sum(baseline)), 4) if any_priced else None,
        "savings": _round(float(np.sum(baseline) - np.sum(cost)), 4) if any_priced else None,
    }
    return {"period": period, "time_zone": str(tz), "start": edges[0].tz_convert(tz).isoformat(),
            "end": edges[-1].tz_convert(tz).isoformat(), "gap_limit_minutes": GAP_LIMIT.total_seconds() / 60,
            "source": "duckdb", "totals": totals, "buckets": buckets}
