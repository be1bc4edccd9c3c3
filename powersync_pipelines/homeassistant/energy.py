"""The calendar history as HA statistics sensors: lifetime energy counters per flow, and today's and this
month's money against the no-battery baseline, all from ``control.history.calendar_history`` (the same numbers
as ``powersync service get_calendar_history``).

The counters integrate telemetry up to the newest sample only (not to "now"): each sample's interval then ends
at the next sample, so appending telemetry can only add energy, and the published value is held at its stored
high-water mark (``memory.monotone``) against the rest (a corrected row). Money sensors are HA ``total`` sensors
whose ``last_reset`` is the local start of their day or month.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..control.history import FLOWS, calendar_history
from ..storage import HistoryStore
from .discovery import energy_key
from .memory import monotone


def _last_sample(store: HistoryStore, site_id: str) -> pd.Timestamp | None:
    row = store.query("SELECT max(ts) AS last FROM telemetry WHERE site_id = ?", [site_id])
    if row.empty or pd.isna(row["last"].iloc[0]):
        return None
    return pd.Timestamp(row["last"].iloc[0]).tz_convert("UTC")


def energy_counters(store: HistoryStore, site: SiteConfig, now: pd.Timestamp) -> dict[str, Any]:
    """Lifetime kWh per flow (never decreasing) and lifetime savings, as state-document keys."""
    last = _last_sample(store, site.id)
    raw: dict[str, float | None] = {energy_key(f): None for f in FLOWS}
    savings = None
    if last is not None:
        history = calendar_history(store, site.id, site.tz, "lifetime", last)
        raw = {energy_key(f): history["totals"]["energy_kwh"][f] for f in FLOWS}
        savings = history["totals"]["savings"]
    return {**monotone(store, site.id, raw, now), "savings_lifetime": savings}


def money(store: HistoryStore, site: SiteConfig, now: pd.Timestamp) -> dict[str, Any]:
    """Today's actual and no-battery grid cost and savings, this month's savings (site-local calendar), and the
    instants they count from (``last_reset``). None where nothing was priced."""
    local = now.tz_convert(site.tz)
    history = calendar_history(store, site.id, site.tz, "day", now, start=local.strftime("%Y-%m-01"),
                               end=local.strftime("%Y-%m-%d"))
    buckets = history["buckets"]
    today = buckets[-1]
    month = [b["savings"] for b in buckets if b["savings"] is not None]
    return {"cost_actual_today": today["cost"], "cost_baseline_today": today["baseline_cost"],
            "savings_today": today["savings"], "savings_month": round(sum(month), 4) if month else None,
            "today_start": today["start"], "month_start": buckets[0]["start"]}
