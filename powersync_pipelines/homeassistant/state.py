"""What the bridge publishes for a site, read from the DuckDB history: the state document the sensors' value
templates read, and the forecast lists of the latest stored plan.

The holder, current slot, SOC and price age come from ``control.status.site_status`` (the same reading as
``powersync status``); this module adds the current prices, today's predicted cost, the values last set through
the command entities, and the plan's 5-minute points. Read-only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..control.context import ControlContext
from ..control.status import site_status
from ..storage import HistoryStore
from ..timegrid import DT_H
from .discovery import FORECASTS, Discovery

PRICE_LOOKBACK = pd.Timedelta(hours=1)  # a price interval older than this is not "the current price"


@dataclass(frozen=True)
class Snapshot:
    """One site's state document and forecast lists (object id -> ``{"forecast": [...]}``)."""

    state: dict[str, Any]
    forecasts: dict[str, dict[str, Any]]


def _num(x: Any, nd: int = 4) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return round(v, nd) if math.isfinite(v) else None


def _iso(ts: pd.Timestamp) -> str:
    t = pd.Timestamp(ts)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()


def current_prices(store: HistoryStore, site_id: str, now: pd.Timestamp) -> tuple[float | None, float | None, str | None]:
    """(import, export, spike status) of the stored price interval containing ``now``; Nones when none is recent."""
    prices = store.read_prices(site_id, start=now - PRICE_LOOKBACK, end=now + pd.Timedelta(seconds=1))
    if prices.empty:
        return None, None, None
    row = prices.iloc[-1]
    return _num(row["import_price"]), _num(row["export_price"]), str(row["spike_status"])


def power_flows(store: HistoryStore, site_id: str) -> dict[str, Any]:
    """The last telemetry's flows in kW: battery (+ discharging), grid (+ importing), solar, load."""
    rows = store.query("SELECT ts, battery_charge_kw, battery_discharge_kw, grid_import_kw, grid_export_kw, solar_kw, "
                       "load_kw FROM telemetry WHERE site_id = ? ORDER BY ts DESC LIMIT 1", [site_id])
    out: dict[str, Any] = {"battery_power_kw": None, "grid_power_kw": None, "solar_power_kw": None,
                           "load_power_kw": None, "telemetry_at": None}
    if rows.empty:
        return out
    r = rows.iloc[0]

    def diff(a: str, b: str) -> float | None:
        x, y = _num(r[a], 3), _num(r[b], 3)
        return None if x is None or y is None else round(x - y, 3)

    out.update(battery_power_kw=diff("battery_discharge_kw", "battery_charge_kw"),
               grid_power_kw=diff("grid_import_kw", "grid_export_kw"), solar_power_kw=_num(r["solar_kw"], 3),
               load_power_kw=_num(r["load_kw"], 3), telemetry_at=_iso(r["ts"]))
    return out


def predicted_cost(store: HistoryStore, site: SiteConfig, now: pd.Timestamp) -> float | None:
    """Today's grid cost (site-local day of ``now``) as planned: each 5-minute interval priced by the latest plan
    that covers it (import x price - export x price). None when no plan covers today."""
    local = now.tz_convert(site.tz)
    start = local.normalize()
    end = start + pd.Timedelta(days=1)
    rows = store.query(
        "SELECT DISTINCT ON (s.interval_start) s.interval_start, "
        "s.import_price * s.grid_import_kw - s.export_price * s.grid_export_kw AS rate "
        "FROM schedule s JOIN plans p ON p.plan_id = s.plan_id "
        "WHERE s.site_id = ? AND s.interval_start >= ? AND s.interval_start < ? "
        "ORDER BY s.interval_start, p.created_at DESC",
        [site.id, start.tz_convert("UTC").to_pydatetime(), end.tz_convert("UTC").to_pydatetime()])
    if rows.empty:
        return None
    return round(float(rows["rate"].sum() * DT_H), 4)


def last_set(store: HistoryStore, site_id: str, command: str, param: str) -> Any:
    """The value of ``param`` in the last successful ``command`` (what a number or select shows as its state)."""
    rows = store.query("SELECT params FROM commands WHERE site_id = ? AND command = ? AND outcome = 'ok' "
                       "ORDER BY issued_at DESC LIMIT 1", [site_id, command])
    if rows.empty:
        return None
    try:
        return json.loads(rows["params"].iloc[0]).get(param)
    except (TypeError, ValueError, AttributeError):
        return None


def forecast_lists(intervals: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every point of the plan for each forecast sensor, ``[{"datetime": iso, "value": x}, ...]``."""
    out: dict[str, dict[str, Any]] = {}
    stamps = [_iso(t) for t in intervals.index]
    for f in FORECASTS:
        values = intervals[f.column] if f.column in intervals else pd.Series(float("nan"), index=intervals.index)
        out[f.object_id] = {"forecast": [{"datetime": s, "value": _num(v * f.scale)}
                                         for s, v in zip(stamps, values, strict=True)]}
    return out


def snapshot(ctx: ControlContext, site: SiteConfig, settings: dict[str, Any], controls: list[Discovery]) -> Snapshot:
    """The state document and forecasts of ``site``; ``settings`` are the bridge's own (force duration)."""
    status = site_status(ctx, site)
    now = ctx.clock.site_now(site)
    imp, exp, spike = current_prices(ctx.store, site.id, now)
    state: dict[str, Any] = {
        "site_id": site.id,
        "soc": _num(status["soc"] * 100, 2) if status["soc"] is not None else None,
        "import_price": imp, "export_price": exp, "spike_status": spike,
        **power_flows(ctx.store, site.id),
        "action": status["action"], "action_power_kw": _num(status["power_kw"], 3),
        "action_until": status["slot_until"], "plan_id": status["plan_id"], "plan_current": status["plan_current"],
        "holder": status["holder"], "held_until": status["held_until"], "held_by_command": status["held_by_command"],
        "price_age_minutes": status["price_age_minutes"], "prices_stale": status["prices_stale"],
        "cost_today": predicted_cost(ctx.store, site, now),
        "last_command": status["last_command"], "last_outcome": status["last_outcome"],
        **settings,
    }
    for d in controls:  # numbers and selects show the value last set through their service
        if d.command is not None and d.command.service is not None and d.command.param is not None:
            state[d.object_id] = last_set(ctx.store, site.id, d.command.service.removeprefix("sungrow_"),
                                          d.command.param.name)
    if state.get("backup_reserve") is None:
        state["backup_reserve"] = site.battery.backup_reserve_pct
    switches = status["switches"]  # in effect (file or service), not the last command: a switch writes no command
    state.update({k: switches[k] for k in ("optimization", "auto_tou_sync", "cost_function")})
    forecasts: dict[str, dict[str, Any]] = {}
    latest = ctx.store.read_latest_plan(site.id)
    if latest is not None and not latest[1].empty:
        intervals = latest[1]
        forecasts = forecast_lists(intervals)
        started = intervals.loc[intervals.index <= now]
        row = started.iloc[-1] if not started.empty else intervals.iloc[0]
        for f in FORECASTS:  # the current prices stay the stored ones; the plan's slot fills in a missing one
            value = row.get(f.column)
            if state.get(f.key) is None:
                state[f.key] = _num(value * f.scale) if value is not None and pd.notna(value) else None
    else:
        state.update({f.key: None for f in FORECASTS if f.key not in ("import_price", "export_price")})
        forecasts = {f.object_id: {"forecast": []} for f in FORECASTS}
    return Snapshot(state, forecasts)
