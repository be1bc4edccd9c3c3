"""What the page shows for one site, gathered read-only through ``control`` (status, calendar history, spike and
curtailment state) and the stored plan. Plain data: the HTML and the charts are built from it elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ..config import SiteConfig
from ..control import live_store
from ..control.context import ControlContext
from ..control.curtailment import load_state
from ..control.history import calendar_history
from ..control.status import site_status
from ..reporting import action_blocks

SAVINGS_PERIODS = (("today", "day"), ("this month", "month"), ("since start", "lifetime"))
NEXT_HOURS = 12


@dataclass
class SiteView:
    """One site's page: status, the plan ahead, savings, special states and recent commands (UTC index)."""

    site: SiteConfig
    status: dict[str, Any]
    now: pd.Timestamp
    plan: dict[str, Any] | None = None
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)
    blocks: pd.DataFrame = field(default_factory=pd.DataFrame)
    price_now: tuple[float | None, float | None] = (None, None)
    savings: dict[str, float | None] = field(default_factory=dict)
    spike: dict[str, Any] | None = None
    curtailed: bool = False
    curtailed_since: pd.Timestamp | None = None
    commands: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)

    @property
    def currency(self) -> str:
        return "£" if self.site.currency == "GBP" else "$"

    def reason(self) -> str:
        """Why the battery does what it does now, in one sentence from the plan's prices and the holder."""
        st = self.status
        if st["holder"] not in ("none", "optimizer"):
            until = _local(st["held_until"], self.tz)
            return (f"{st['holder']} holds the battery{f' until {until}' if until else ''}"
                    f"{': ' + st['held_reason'] if st.get('held_reason') else ''}; the plan waits until it lets go.")
        if self.intervals.empty or st["action"] is None:
            return "No plan stored yet: the battery runs its own self-consumption."
        imp, exp = self.price_now
        cur = self.currency
        ahead = self.intervals.loc[self.intervals.index > self.now].iloc[:288]
        if ahead.empty or imp is None or exp is None:
            return f"The plan says {st['action'].lower().replace('_', ' ')}."
        hi_t, hi = ahead["import_price"].idxmax(), float(ahead["import_price"].max())
        lo_t, lo = ahead["import_price"].idxmin(), float(ahead["import_price"].min())
        hx_t, hx = ahead["export_price"].idxmax(), float(ahead["export_price"].max())

        def fmt(t: pd.Timestamp) -> str | None:
            return _local(t, self.tz, "%a %H:%M")

        action = st["action"]
        if action == "CHARGE":
            return (f"Charging from the grid while import costs {imp:.3f} {cur}/kWh: the next 24 h reach "
                    f"{hi:.3f} {cur}/kWh at {fmt(hi_t)}, when the stored energy is worth more.")
        if action == "EXPORT":
            soc_now = float(self.intervals["soc"].asof(self.now))
            soc_then = float(self.intervals["soc"].asof(hx_t - pd.Timedelta(minutes=5)))
            later = (f"the plan refills it to {soc_then * 100:.0f} % before export peaks at {hx:.3f} {cur}/kWh "
                     f"at {fmt(hx_t)}" if soc_then > soc_now + 0.01 else
                     f"export pays at most {hx:.3f} {cur}/kWh later (at {fmt(hx_t)})")
            return f"Selling to the grid at {exp:.3f} {cur}/kWh now; {later}."
        if action == "IDLE":
            return (f"Holding the charge: import is {imp:.3f} {cur}/kWh now and {hi:.3f} {cur}/kWh at "
                    f"{fmt(hi_t)}, so the energy is kept for then.")
        return (f"Covering the house from solar and the battery (import {imp:.3f} {cur}/kWh now; cheapest ahead "
                f"{lo:.3f} {cur}/kWh at {fmt(lo_t)}, dearest {hi:.3f} {cur}/kWh at {fmt(hi_t)}).")


def _local(ts: Any, tz: ZoneInfo, fmt: str = "%a %d %b %H:%M") -> str | None:
    if ts is None or (isinstance(ts, float) and pd.isna(ts)):
        return None
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t
    return t.tz_convert(tz).strftime(fmt)


def site_view(ctx: ControlContext, site: SiteConfig) -> SiteView:
    """Everything the page shows for ``site`` (read-only: every read goes through ``ctx.store``)."""
    store = ctx.store
    now = ctx.clock.site_now(site)
    view = SiteView(site=site, status=site_status(ctx, site), now=now)
    latest = store.read_latest_plan(site.id)
    if latest is not None and not latest[1].empty:
        view.plan, intervals = latest
        view.intervals = intervals
        at = now if intervals.index[0] <= now < intervals.index[-1] else intervals.index[0]
        ahead = intervals.loc[intervals.index >= at.floor("5min")]
        view.blocks = action_blocks(ahead.loc[ahead.index < at + pd.Timedelta(hours=NEXT_HOURS)], site.timezone,
                                    limit=12)
        row = ahead.iloc[0] if not ahead.empty else intervals.iloc[-1]
        view.price_now = (float(row["import_price"]), float(row["export_price"]))
    wall = ctx.clock.wall()  # telemetry is stamped with the wall clock: savings are counted on it
    for label, period in SAVINGS_PERIODS:
        totals = calendar_history(store, site.id, view.tz, period, wall)["totals"]
        view.savings[label] = totals["savings"]
    event = live_store.open_event(store, site.id)
    if event is not None:
        view.spike = {"status": event.status, "peak_rrp": event.peak_rrp, "since": event.start_interval,
                      "threshold": event.threshold_per_mwh, "response": event.response}
    state, _applied = load_state(store, site.id)
    view.curtailed, view.curtailed_since = bool(state.curtailed), state.since
    view.commands = store.query(
        "SELECT issued_at, owner, command, params, outcome, error FROM commands WHERE site_id = ? "
        "ORDER BY issued_at DESC LIMIT 8", [site.id])
    return view
