"""What the bridge publishes for a site, read from the DuckDB history: the state document the sensors' value
templates read, and the forecast lists of the latest stored plan.

The holder, current slot, SOC and price age come from ``control.status.site_status`` (the same reading as
``powersync status``); this module adds the current prices, today's predicted cost, the plan's next change of
action, the curtailment state, the energy counters and money (``energy``), the car's charger and session, the
values last set through the command entities, and the plan's 5-minute points. It writes only the counters'
high-water marks (``memory.monotone``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..config.switches import on_off
from ..control.context import ControlContext
from ..control.curtailment import load_state
from ..control.history import planned_rates
from ..control.status import site_status
from ..ev.state import ev_status, load_settings
from ..redaction import excerpt
from ..storage import HistoryStore
from ..timegrid import DT_H, STEP
from .discovery import FORECASTS, Discovery
from .energy import energy_counters, money

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
    rows = planned_rates(store, site.id, start, end)
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


def next_action(intervals: pd.DataFrame, now: pd.Timestamp) -> dict[str, Any]:
    """The plan's next change of action after the run containing ``now``: the action, the battery power of its
    first interval, when it starts and until when it lasts. Nones when the plan holds its action to the end."""
    out: dict[str, Any] = {"next_action": None, "next_action_power_kw": None, "next_action_at": None,
                           "next_action_until": None}
    if intervals.empty:
        return out
    actions = intervals["action"].astype(str).to_numpy()
    pos = max(int((intervals.index <= now).sum()) - 1, 0)
    change = pos + 1
    while change < len(actions) and actions[change] == actions[pos]:
        change += 1
    if change >= len(actions):
        return out
    end = change + 1
    while end < len(actions) and actions[end] == actions[change]:
        end += 1
    row = intervals.iloc[change]
    power = max(float(row["battery_charge_kw"]), float(row["battery_discharge_kw"]))
    out.update(next_action=actions[change], next_action_power_kw=_num(power, 3),
               next_action_at=_iso(intervals.index[change]), next_action_until=_iso(intervals.index[end - 1] + STEP))
    return out


def curtailment(store: HistoryStore, site_id: str) -> dict[str, Any]:
    """The curtailment rule's state (``normal`` until it has ever curtailed) and since when."""
    state, applied = load_state(store, site_id)
    return {"curtailment": "curtailed" if state.curtailed else "normal",
            "curtailment_since": _iso(state.since) if state.since is not None else None,
            "curtailment_applied": applied}


def _ocpp_power_kw(store: HistoryStore, charge_point_id: str | None) -> float | None:
    """The last total active power an OCPP charge point reported for its running transaction (W -> kW)."""
    rows = store.query(
        "SELECT m.value FROM ocpp_meter_values m JOIN ocpp_transactions t USING (transaction_id) "
        "WHERE m.charge_point_id = ? AND t.status = 'active' AND m.measurand = 'Power.Active.Import' "
        "AND m.phase = '' ORDER BY m.ts DESC LIMIT 1", [charge_point_id])
    return None if rows.empty else _num(float(rows["value"].iloc[0]) / 1000, 3)


def ev_readings(ctx: ControlContext, site: SiteConfig, status: dict[str, Any]) -> dict[str, Any]:
    """The EV keys of the state document: mode, departure, target, who holds the charger, its status, power,
    current limit (A) and the session's energy. OCPP chargers as the central system stored them; other chargers
    are read now (an unreachable one leaves its readings empty, the rest of the site is still published)."""
    cfg = site.ev
    assert cfg is not None
    ev = status.get("ev") or {}
    settings = load_settings(ctx.store, site.id, cfg)
    reading: dict[str, Any] = {"status": ev.get("charger_status"), "session": ev.get("session"),
                               "current_limit": ev.get("current_limit"), "power_kw": None}
    if cfg.charger == "ocpp":
        reading["power_kw"] = _ocpp_power_kw(ctx.store, cfg.charge_point_id)
    else:
        try:
            with ctx.charger(site) as charger:
                live = charger.read_status()
        except Exception as exc:  # any charger failure: its readings empty, the battery's entities still published
            reading["status"] = f"unreachable: {excerpt(exc)}"[:255]
        else:
            full = ev_status(ctx.store, site, live)
            reading.update(status=live.state, session=full["session"], current_limit=full["current_limit"],
                           power_kw=_num(live.power_kw, 3) if live.charging else 0.0)
    limit = reading["current_limit"] or {}
    amps = _num(limit.get("value"), 2)
    if amps is not None and limit.get("unit") == "W":  # a total-power profile: per-phase amps
        amps = round(amps / (cfg.voltage * cfg.phases), 2)
    session = reading["session"] or {}
    return {"ev_mode": settings.mode, "ev_departure": settings.departure, "ev_target_kwh": settings.target_kwh,
            "ev_holder": ev.get("holder", "none"), "ev_held_until": ev.get("held_until"),
            "ev_charger_status": reading["status"], "ev_power_kw": reading["power_kw"],
            "ev_current_limit_a": amps, "ev_session_energy_kwh": _num(session.get("energy_kwh"), 3)}


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
        **curtailment(ctx.store, site.id),
        **energy_counters(ctx.store, site, now),
        **money(ctx.store, site, now),
        **{k: None for k in ("next_action", "next_action_power_kw", "next_action_at", "next_action_until")},
    }
    for d in controls:  # numbers, selects and switches show the value last set through their service
        cmd = d.command
        if cmd is not None and cmd.service is not None and cmd.param is not None and not d.object_id.startswith("ev_"):
            value = last_set(ctx.store, site.id, cmd.service.removeprefix("sungrow_"), cmd.param.name)
            state[d.object_id] = on_off(value) if cmd.kind == "switch" and isinstance(value, bool) else value
    if site.ev is not None:
        state.update(ev_readings(ctx, site, status))
    if state.get("backup_reserve") is None:
        state["backup_reserve"] = site.battery.backup_reserve_pct
    switches = status["switches"]  # in effect (file or service), not the last command: a switch writes no command
    state.update({k: switches[k] for k in ("optimization", "auto_tou_sync", "cost_function")})
    forecasts: dict[str, dict[str, Any]] = {}
    latest = ctx.store.read_latest_plan(site.id)
    if latest is not None and not latest[1].empty:
        intervals = latest[1]
        forecasts = forecast_lists(intervals)
        state.update(next_action(intervals, now))
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
