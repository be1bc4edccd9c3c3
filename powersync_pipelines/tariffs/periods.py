"""The rolling 24 h of local half hours a TOU payload describes, and the rate for each.

A battery that follows a TOU tariff reads it by its *wall clock*: period ``PERIOD_14_30`` applies whenever the
local clock shows 14:30-14:59, every day. So a payload can only describe one day, and the product refreshes it
all the time ("rolling 24 h"): each of the 48 local half hours carries the price of its *next* real occurrence,
counted from the current local half hour.

DST makes this subtle, which is why the mapping is done by walking real (UTC) half hours forward from "now":
* fall-back day: a wall-clock half hour occurs twice; the first occurrence from now wins (the next refresh
  moves on to the second once the first has passed);
* spring-forward day: the skipped half hours never occur, so they borrow the rate of the half hour after the
  gap (the clock jumps straight into it).
Time zones with 30-minute offsets (Adelaide +10:30/+9:30) need nothing special: local half hours start at
UTC :00/:30 there too; the walk never assumes that anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

HALF_HOUR = pd.Timedelta(minutes=30)
PERIOD_NAMES: tuple[str, ...] = tuple(f"PERIOD_{h:02d}_{m:02d}" for h in range(24) for m in (0, 30))


class TariffError(ValueError):
    """Prices that cannot become a tariff (none at all in the window, wrong index); the message says why."""


@dataclass(frozen=True)
class HalfHour:
    """One wall-clock half hour of the payload and the real interval whose price it carries."""

    name: str
    hour: int
    minute: int
    start_utc: pd.Timestamp
    order: int  # 0 for the current half hour, counting forward in real time


def period_name(hour: int, minute: int) -> str:
    return f"PERIOD_{hour:02d}_{minute:02d}"


def current_half_hour_start(now: pd.Timestamp, tz: ZoneInfo | str) -> pd.Timestamp:
    """UTC instant at which the local half hour containing ``now`` began."""
    now = _utc(now, "now")
    local = now.tz_convert(tz)
    into = pd.Timedelta(minutes=local.minute % 30, seconds=local.second, microseconds=local.microsecond)
    return (now - into - pd.Timedelta(nanoseconds=local.nanosecond)).tz_convert("UTC")


def rolling_half_hours(now: pd.Timestamp, tz: ZoneInfo | str) -> list[HalfHour]:
    """The 48 local half hours in name order (00:00 … 23:30), each tied to its next real occurrence."""
    start = current_half_hour_start(now, tz)
    found: dict[str, HalfHour] = {}
    prev_wall: pd.Timestamp | None = None
    k = 0
    while len(found) < 48:
        if k > 52:  # a 24 h walk plus one DST hour always covers every name; more means a broken zone
            raise TariffError(f"could not map 48 local half hours in {tz} from {start}")
        t = start + k * HALF_HOUR
        wall = t.tz_convert(tz).tz_localize(None)
        if prev_wall is not None and wall - prev_wall > HALF_HOUR:  # spring forward: skipped wall times
            skipped = prev_wall + HALF_HOUR
            while skipped < wall:
                name = period_name(skipped.hour, skipped.minute)
                found.setdefault(name, HalfHour(name, skipped.hour, skipped.minute, t, k))
                skipped += HALF_HOUR
        name = period_name(wall.hour, wall.minute)
        found.setdefault(name, HalfHour(name, wall.hour, wall.minute, t, k))
        prev_wall = wall
        k += 1
    return [found[n] for n in PERIOD_NAMES]


def _utc(ts: pd.Timestamp, what: str) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        raise TariffError(f"{what} must be timezone-aware (got naive {ts})")
    return ts.tz_convert("UTC")


def half_hour_rates(prices: pd.DataFrame, tz: ZoneInfo | str, now: pd.Timestamp,
                    plan: pd.DataFrame | None = None) -> pd.DataFrame:
    """Buy/sell per local half hour for the rolling 24 h, indexed by period name (00:00 … 23:30).

    Rate = mean of the price-frame rows inside the real half hour (5-min or 30-min frames alike). Where a plan
    is given and it mostly CHARGEs in that half hour, buy is the half hour's cheapest import (the plan charges
    into the dip); where it mostly EXPORTs, sell is the best export. Half hours marked ``spike_protected`` (see
    ``adjustments``) keep their highest buy so one protected 5-min row is not averaged away.
    Columns: start_utc, buy, sell, points (rows averaged), filled (no data: carried from a neighbour),
    order (0 = current half hour).
    """
    if not isinstance(prices.index, pd.DatetimeIndex) or prices.index.tz is None:
        raise TariffError("price frame index must be a tz-aware DatetimeIndex of interval starts")
    for col in ("import_price", "export_price"):
        if col not in prices:
            raise TariffError(f"price frame has no {col!r} column")
    halves = rolling_half_hours(now, tz)
    idx = prices.index.tz_convert("UTC")
    order = np.argsort(idx.asi8, kind="stable")
    stamps = idx.asi8[order]
    buy_all = prices["import_price"].to_numpy(dtype=float)[order]
    sell_all = prices["export_price"].to_numpy(dtype=float)[order]
    protected = (prices["spike_protected"].to_numpy(dtype=bool)[order] if "spike_protected" in prices
                 else np.zeros(len(prices), dtype=bool))
    actions = _plan_actions(plan)
    rows = []
    for hh in halves:
        lo = np.searchsorted(stamps, hh.start_utc.value, side="left")
        hi = np.searchsorted(stamps, (hh.start_utc + HALF_HOUR).value, side="left")
        b, s = buy_all[lo:hi], sell_all[lo:hi]
        ok = ~(np.isnan(b) | np.isnan(s))
        b, s, prot = b[ok], s[ok], protected[lo:hi][ok]
        if len(b) == 0:
            rows.append((hh.name, hh.start_utc, np.nan, np.nan, 0, True, hh.order))
            continue
        buy, sell = float(b.mean()), float(s.mean())
        intent = actions.get(hh.start_utc) if actions else None
        if intent == "CHARGE":
            buy = float(b.min())
        elif intent == "EXPORT":
            sell = float(s.max())
        if prot.any():
            buy = float(b.max())
        rows.append((hh.name, hh.start_utc, buy, sell, int(len(b)), False, hh.order))
    out = pd.DataFrame(rows, columns=["name", "start_utc", "buy", "sell", "points", "filled", "order"]).set_index("name")
    if out["filled"].all():
        first = min(h.start_utc for h in halves)
        raise TariffError(f"price frame has no prices in the 24 h from {first} (UTC)")
    # Fill gaps in real-time order: carry the last known rate forward, and back-fill a leading gap.
    chron = out.sort_values("order")
    chron[["buy", "sell"]] = chron[["buy", "sell"]].ffill().bfill()
    return chron.loc[list(PERIOD_NAMES)]


def _plan_actions(plan: pd.DataFrame | None) -> dict[pd.Timestamp, str]:
    """Majority plan action per UTC half hour (the plan is on the 5-min grid)."""
    if plan is None or plan.empty or "action" not in plan:
        return {}
    idx = pd.DatetimeIndex(plan.index).tz_convert("UTC")
    rows = pd.DataFrame({"bucket": idx.floor("30min"), "action": plan["action"].to_numpy()}).dropna()
    # the most frequent action per half hour; a tie goes to the alphabetically first (as Series.mode orders)
    counts = rows.groupby(["bucket", "action"]).size().reset_index(name="n")
    first = counts.sort_values(["bucket", "n", "action"], ascending=[True, False, True]).drop_duplicates("bucket")
    return {pd.Timestamp(b): str(a) for b, a in zip(first["bucket"], first["action"], strict=True)}


def missing_fraction(prices: pd.DataFrame, now: pd.Timestamp, hours: float = 24.0, step_minutes: int = 5) -> float:
    """Share of the ``step_minutes`` slots in [now, now + hours) that have no usable price.

    A 30-min frame covers six 5-min slots per row, so the grid is inferred from the data's own spacing. Rows
    flagged ``filled`` (padded by the pipeline, not provider data) count as missing.
    """
    now = _utc(now, "now")
    start = now.floor(f"{step_minutes}min")
    grid = pd.date_range(start, start + pd.Timedelta(hours=hours), freq=f"{step_minutes}min", inclusive="left")
    if prices.empty:
        return 1.0
    idx = prices.index.tz_convert("UTC")
    good = ~(prices["import_price"].isna().to_numpy() | prices["export_price"].isna().to_numpy())
    if "filled" in prices:
        good &= ~prices["filled"].fillna(False).astype(bool).to_numpy()
    step = pd.Series(idx[good]).diff().median() if good.sum() > 1 else pd.Timedelta(minutes=step_minutes)
    step = max(pd.Timedelta(step), pd.Timedelta(minutes=step_minutes)) if pd.notna(step) else pd.Timedelta(minutes=step_minutes)
    # each good row covers the grid slots in [t, t + step): mark the ranges with a difference array
    slots = grid.as_unit("ns").asi8
    starts = idx[good].as_unit("ns").asi8
    lo = np.searchsorted(slots, starts, side="left")
    hi = np.searchsorted(slots, starts + pd.Timedelta(step).value, side="left")
    edges = np.zeros(len(grid) + 1, dtype=np.int64)
    np.add.at(edges, lo, 1)
    np.add.at(edges, hi, -1)
    covered = np.cumsum(edges)[:-1] > 0
    return float(1.0 - covered.mean())
