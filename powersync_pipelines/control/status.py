"""What each site's battery is doing and why: who holds it, the plan's current slot, SOC, the last command and
how fresh the prices are (``powersync status``, the UI, Home Assistant); for a site with an EV charger, who holds
the charger and the car's session (``ev``). Read-only."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..ev.state import ev_status
from ..owners import CONTROLS
from . import ledger
from .context import ControlContext
from .cycle import current_slot
from .switches import effective


def _iso(ts: Any) -> str | None:
    if ts is None or ts is pd.NaT or (isinstance(ts, float) and pd.isna(ts)):
        return None
    t = pd.Timestamp(ts)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()


def site_status(ctx: ControlContext, site: SiteConfig) -> dict[str, Any]:
    """One site's status (the ``powersync status --format json`` object)."""
    store, wall = ctx.store, ctx.clock.wall()
    holds = {c: ledger.holder(store, site.id, c, wall) for c in CONTROLS}
    battery = holds["battery"]
    out: dict[str, Any] = {
        "site_id": site.id,
        "holder": battery.owner if battery is not None else "none",
        "held_until": _iso(battery.lease_until) if battery is not None else None,
        "held_by_command": battery.command if battery is not None else None,
        "held_reason": battery.reason if battery is not None else None,
        "controls": {c: {"holder": h.owner, "command": h.command, "held_until": _iso(h.lease_until)}
                     for c, h in holds.items() if h is not None},
        "action": None, "power_kw": None, "slot_until": None, "plan_id": None, "plan_current": False,
        "soc": None, "soc_at": None, "last_command": None, "last_outcome": None, "last_command_owner": None,
        "last_command_at": None, "last_error": None, "prices_fetched_at": None, "price_age_minutes": None,
        "prices_stale": None, "switches": effective(store, site).as_dict(),
    }
    latest = store.read_latest_plan(site.id)
    if latest is not None:
        meta, intervals = latest
        now = ctx.clock.site_now(site)
        current = not intervals.empty and intervals.index[0] <= now < intervals.index[-1]
        slot = current_slot(intervals, now if current else intervals.index[0])
        out.update(plan_id=meta["plan_id"], plan_current=bool(current), action=slot.action,
                   power_kw=round(slot.power_kw, 3), slot_until=slot.until.isoformat())
    tel = store.query("SELECT ts, soc FROM telemetry WHERE site_id = ? AND soc IS NOT NULL ORDER BY ts DESC LIMIT 1",
                      [site.id])
    if not tel.empty:
        out.update(soc=round(float(tel["soc"].iloc[0]), 4), soc_at=_iso(tel["ts"].iloc[0]))
    cmd = store.query("SELECT command, outcome, owner, issued_at, error FROM commands WHERE site_id = ? "
                      "AND NOT (device_kind = 'ocpp' OR starts_with(device_kind, 'ev_')) "  # the battery's, not the car's
                      "ORDER BY issued_at DESC LIMIT 1", [site.id])
    if not cmd.empty:
        c = cmd.iloc[0]
        out.update(last_command=c["command"], last_outcome=c["outcome"],
                   last_command_owner=c["owner"] if pd.notna(c["owner"]) else None,
                   last_command_at=_iso(c["issued_at"]), last_error=c["error"] if pd.notna(c["error"]) else None)
    fetched = store.query("SELECT max(fetched_at) AS f FROM prices WHERE site_id = ?", [site.id])
    if not fetched.empty and pd.notna(fetched["f"].iloc[0]):
        at = pd.Timestamp(fetched["f"].iloc[0])
        at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
        age = (wall - at).total_seconds() / 60
        out.update(prices_fetched_at=at.isoformat(), price_age_minutes=round(age, 1),
                   prices_stale=bool(age > site.provider.stale_after_minutes))
    if site.ev is not None:
        out["ev"] = _ev(ctx, site, holds["ev_charger"])
    return out


def _ev(ctx: ControlContext, site: SiteConfig, hold: ledger.Hold | None) -> dict[str, Any]:
    """The charger's holder and the car's session as stored (an OCPP charger: what the central system recorded)."""
    ev = ev_status(ctx.store, site)
    charger = ev["chargers"][0] if ev["chargers"] else {}
    return {"holder": hold.owner if hold is not None else "none",
            "held_until": _iso(hold.lease_until) if hold is not None else None,
            "held_by_command": hold.command if hold is not None else None,
            "charger": charger.get("kind"), "charger_connected": charger.get("connected"),
            "charger_status": charger.get("status"), "mode": ev["mode"], "session": ev["session"],
            "current_limit": ev["current_limit"], "energy_delivered_kwh": ev["energy_delivered_kwh"]}


def fleet_status(ctx: ControlContext, sites: list[SiteConfig]) -> list[dict[str, Any]]:
    return [site_status(ctx, s) for s in sites]
