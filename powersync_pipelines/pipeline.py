"""One planning cycle for one site, as plain functions of data (the Dagster assets and the CLI both call these).

price frame -> solar & load forecasts -> optimizer plan -> tariff payload / current command -> telemetry.
Every stage writes its result to the DuckDB history store, keyed so that a re-run replaces, never duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import SiteConfig
from .forecasts.load import load_forecast_kw
from .forecasts.nowcast import RECENT_STEPS, load_nowcast, solar_nowcast
from .forecasts.solar import solar_forecast_kw
from .optimizer import BatteryParams, OptimizationProblem, ScheduleResult, self_consumption_schedule, solve
from .prices.registry import fetch_price_frame
from .prices.replay import default_replay_now, replay_window
from .storage import HistoryStore

HORIZON_HOURS = 48
STEP = pd.Timedelta(minutes=5)
TELEMETRY_FORECAST_COLUMNS = ("load_kw", "solar_kw")  # the measured series the forecasts read


def site_now(site: SiteConfig, wall_now: pd.Timestamp | None = None, fixed: str | None = None) -> pd.Timestamp:
    """The planning instant for a site, on the 5-minute grid.

    Live providers use the wall clock. A ``replay`` site maps the wall clock onto its replay file (cycling
    through the window so the UI keeps moving), unless ``fixed`` pins it; the demo pins it to
    ``provider.replay_start`` so every ``make demo`` is the same run.
    """
    if fixed:
        return pd.Timestamp(fixed).tz_convert("UTC").floor("5min")
    wall = (wall_now or pd.Timestamp.now(tz="UTC")).floor("5min")
    if site.provider.kind != "replay":
        if site.provider.file:  # a live provider read from saved payloads runs on the payload's own clock
            from .prices.saved import default_saved_now

            return default_saved_now(site)
        return wall
    start, end = replay_window(site)
    first = default_replay_now(site)
    usable = (end - pd.Timedelta(hours=HORIZON_HOURS)) - first
    if usable <= pd.Timedelta(0):
        return first
    offset = (wall - pd.Timestamp("2020-01-01", tz="UTC")) % usable
    return (first + offset).floor("5min")


def horizon_index(now: pd.Timestamp, hours: float = HORIZON_HOURS) -> pd.DatetimeIndex:
    return pd.date_range(now, periods=int(hours * 12), freq="5min", tz="UTC", name="interval_start")


@dataclass
class PriceForecast:
    frame: pd.DataFrame  # the price frame over the planning horizon (5-min grid)
    filled: int  # intervals filled from the last known price (flagged is_forecast)
    coverage: float  # fraction of the horizon the provider covered
    source: str = "live"  # live | last_good (the provider failed; the last good stored frame is served)
    stale: bool = False  # too old to plan on: the plan falls back to self-consumption
    message: str = ""  # what happened, for logs and the asset check


def price_forecast(site: SiteConfig, now: pd.Timestamp, store: HistoryStore | None = None,
                   **fetch_kwargs: Any) -> PriceForecast:
    """Fetch prices, store everything fetched, and return the horizon on the 5-min grid.

    A horizon the provider does not cover (e.g. Octopus before 16:00) is filled with the last known price
    and flagged ``filled`` so that the UI and the tariff sync can tell real prices from padding.
    """
    if store is None:
        return horizon_prices(fetch_price_frame(site, now, horizon_hours=HORIZON_HOURS, **fetch_kwargs), now)
    from .prices.errors import PriceDataError
    from .prices.fallback import fetch_with_fallback

    # fetch, check, store; on a provider failure the last good stored frame is served with its age
    frame, status = fetch_with_fallback(site, now, store, horizon_hours=HORIZON_HOURS, **fetch_kwargs)
    if frame.empty or frame.index[-1] < now:
        raise PriceDataError(site.provider.kind, status.problem or "no_prices",
                             f"site {site.id!r}: no usable prices at {now.isoformat()}: {status.message}")
    pf = horizon_prices(frame, now)
    pf.source, pf.stale, pf.message = status.source, status.stale, status.message
    blend_learned(site, frame, now, store, pf)
    return pf


def blend_learned(site: SiteConfig, frame: pd.DataFrame, now: pd.Timestamp, store: HistoryStore,
                  pf: PriceForecast) -> None:
    """Where a price model has been fitted (the ``price_model`` asset), blend it with the provider by horizon
    and fill the provider's gaps with it instead of the last price; record the served horizon. In place."""
    from .forecasts.blend import blend_price_horizon
    from .forecasts.price_mapping import RetailMap, reserve_rule
    from .forecasts.price_registry import load_latest_model, record_forecast, stored_history
    from .forecasts.strategy_choice import current_strategy

    stored = load_latest_model(store, site.id, now)
    if stored is None:
        if "provenance" not in pf.frame:
            pf.frame["provenance"] = "provider"
        pf.frame.loc[pf.frame["filled"], "provenance"] = "filled"
        return
    retail = (RetailMap.from_retail(**site.provider.retail.model_dump())
              if site.provider.kind in ("replay", "aemo", "flow_power", "globird") else None)
    rule = reserve_rule(site.features.spike_reserve)
    # Enough realised history for the model's features and the reserve rule's look-back gates.
    history = stored_history(store, site.id, now + STEP, days=rule.lookback_days())
    blended = blend_price_horizon(frame, history, now, stored.model, provider_kind=site.provider.kind,
                                  retail=retail, horizon=len(pf.frame), reserve=rule,
                                  strategy=current_strategy(store, site.id, now))
    for col in ("import_price", "export_price", "p10", "p50", "p90", "provenance"):
        pf.frame[col] = blended[col].to_numpy()
    record_forecast(store, site.id, now, blended, stored.model_id)


def _stored_blend(store: HistoryStore, site_id: str, now: pd.Timestamp, idx: pd.DatetimeIndex) -> pd.DataFrame | None:
    try:
        df = store.query(
            "SELECT interval_start, import_price, export_price, provenance FROM price_forecast_horizon "
            "WHERE site_id = ? AND issued_at = ? AND interval_start >= ? ORDER BY interval_start",
            [site_id, now.to_pydatetime(), now.to_pydatetime()])
    except Exception:  # no forecasting tables in this store yet
        return None
    if len(df) < len(idx):
        return None
    df.index = pd.to_datetime(df.pop("interval_start"), utc=True)
    return df.reindex(idx)


def stored_price_forecast(site: SiteConfig, now: pd.Timestamp, store: HistoryStore) -> PriceForecast:
    """The horizon as the last ``price_forecast`` stored it (downstream assets read this, not the network)."""
    frame = store.read_prices(site.id, now - pd.Timedelta(hours=1), now + pd.Timedelta(hours=HORIZON_HOURS))
    if frame.empty or frame.index[-1] < now:
        raise LookupError(f"site {site.id!r}: no stored prices at {now.isoformat()}; materialise price_forecast first")
    pf = horizon_prices(frame, now)
    age_min = (now - frame["fetched_at"].max()).total_seconds() / 60
    if age_min > site.provider.stale_after_minutes:
        pf.source, pf.stale = "last_good", True
        pf.message = f"stored prices are {age_min:.0f} min old (limit {site.provider.stale_after_minutes})"
    blended = _stored_blend(store, site.id, now, pf.frame.index)
    if blended is not None:  # the learned blend price_forecast served for this slot
        for col in ("import_price", "export_price", "provenance"):
            pf.frame[col] = blended[col].to_numpy()
    return pf


def horizon_prices(frame: pd.DataFrame, now: pd.Timestamp) -> PriceForecast:
    """A price frame cut and padded to the planning horizon on the 5-minute grid."""
    idx = horizon_index(now)
    native = frame.loc[frame.index < idx[-1] + STEP]
    with pd.option_context("future.no_silent_downcasting", True):
        grid = native.reindex(native.index.union(idx)).sort_index().ffill().bfill().reindex(idx).infer_objects()
    known = native.index.intersection(idx)
    covered = len(known) / len(idx)
    grid["filled"] = ~grid.index.isin(native.index)
    grid.loc[grid["filled"], "is_forecast"] = True
    return PriceForecast(frame=grid, filled=int(grid["filled"].sum()), coverage=covered)


def telemetry_series(store: HistoryStore | None, site: SiteConfig, now: pd.Timestamp, column: str,
                     since: pd.Timedelta) -> pd.Series | None:
    """Measured ``column`` (``load_kw`` / ``solar_kw``) from ``telemetry`` in [now - since, now); None if none."""
    if store is None:
        return None
    if column not in TELEMETRY_FORECAST_COLUMNS:
        raise ValueError(f"telemetry column {column!r} is not one of {TELEMETRY_FORECAST_COLUMNS}")
    df = store.query(
        f"SELECT ts, {column} AS v FROM telemetry WHERE site_id = ? AND ts >= ? AND ts < ? AND {column} IS NOT NULL "
        "ORDER BY ts",
        [site.id, (now - since).to_pydatetime(), now.to_pydatetime()],
    )
    if df.empty:
        return None
    return pd.Series(df["v"].to_numpy(dtype=float), index=pd.to_datetime(df["ts"], utc=True))


def load_history(store: HistoryStore | None, site: SiteConfig, now: pd.Timestamp, days: int = 14) -> pd.Series | None:
    return telemetry_series(store, site, now, "load_kw", pd.Timedelta(days=days))


def recent_intervals(measured: pd.Series | None, now: pd.Timestamp) -> pd.Series | None:
    """5-minute means of the measurements in the last half hour before ``now`` (the nowcast's input)."""
    if measured is None:
        return None
    recent = measured[measured.index >= now - RECENT_STEPS * STEP].dropna()
    if recent.empty:
        return None
    return recent.resample("5min").mean().dropna()


def solar_forecast(site: SiteConfig, now: pd.Timestamp, store: HistoryStore | None = None) -> pd.Series:
    """Solar kW on the horizon grid, corrected by the last half hour's measured production where telemetry has
    it (:func:`.forecasts.nowcast.solar_nowcast`); stored in ``forecasts`` (kind ``solar``)."""
    solar = solar_forecast_kw(site, horizon_index(now))
    model = "pvlib_clearsky_climatology"
    recent = recent_intervals(telemetry_series(store, site, now, "solar_kw", RECENT_STEPS * STEP), now)
    if recent is not None and len(solar):
        grid = pd.date_range(now - RECENT_STEPS * STEP, periods=RECENT_STEPS, freq=STEP)
        modelled = solar_forecast_kw(site, grid).reindex(recent.index)
        values = solar_nowcast(solar.to_numpy(), recent.to_numpy(), modelled.to_numpy())
        if site.solar is not None:  # a bright half hour never lifts the forecast above the array's rating
            values = np.minimum(values, site.solar.peak_kw)
        if not np.array_equal(values, solar.to_numpy()):
            solar, model = pd.Series(values, index=solar.index, name=solar.name), model + "+nowcast"
    if store is not None:
        store.upsert_forecasts(site.id, "solar", solar, model, now)
    return solar


def load_forecast(site: SiteConfig, now: pd.Timestamp, store: HistoryStore | None = None) -> tuple[pd.Series, str]:
    """(load kW on the horizon grid, model name); stored in ``forecasts`` (kind ``load``).

    The profile (measured history or the shipped household) is corrected by the last half hour's measured load
    where telemetry has it (:func:`.forecasts.nowcast.load_nowcast`; the model name then ends in ``+nowcast``).
    """
    history = load_history(store, site, now)
    load, model = load_forecast_kw(site, horizon_index(now), history)
    recent = recent_intervals(history, now)
    if recent is not None and len(load):
        # what the profile said for those intervals before they were measured (as issued half an hour ago)
        modelled, _ = load_forecast_kw(site, recent.index, history[history.index < recent.index[0]])
        values = load_nowcast(load.to_numpy(), recent.to_numpy(), modelled.to_numpy())
        load, model = pd.Series(values, index=load.index, name=load.name), model + "+nowcast"
    if store is not None:
        store.upsert_forecasts(site.id, "load", load, model, now)
    return load, model


def forecasts(site: SiteConfig, now: pd.Timestamp, store: HistoryStore | None = None) -> tuple[pd.Series, pd.Series, str]:
    """(solar_kw, load_kw, load model name) on the horizon grid, both stored."""
    load, model = load_forecast(site, now, store)
    return solar_forecast(site, now, store), load, model


def battery_params(site: SiteConfig, soc: float) -> BatteryParams:
    b = site.battery
    return BatteryParams(
        capacity_kwh=b.capacity_kwh,
        soc_initial=float(np.clip(soc, 0.0, 1.0)),
        max_charge_kw=b.max_charge_kw,
        max_discharge_kw=b.max_discharge_kw,
        charge_efficiency=b.charge_efficiency,
        discharge_efficiency=b.discharge_efficiency,
        reserve=b.reserve_fraction,
    )


def build_problem(site: SiteConfig, now: pd.Timestamp, prices: pd.DataFrame, solar: pd.Series, load: pd.Series,
                  soc: float) -> OptimizationProblem:
    return OptimizationProblem(
        start=now,
        interval_minutes=5,
        import_price=prices["import_price"].to_numpy(dtype=float),
        export_price=prices["export_price"].to_numpy(dtype=float),
        solar_kw=solar.to_numpy(dtype=float),
        load_kw=load.to_numpy(dtype=float),
        battery=battery_params(site, soc),
        export_limit_kw=site.limits.export_kw,
        import_limit_kw=site.limits.import_kw,
        wear_cost_per_kwh=site.battery.wear_cost_per_kwh,
        terminal_value="auto",
    )


def plan_id_for(site_id: str, now: pd.Timestamp) -> str:
    """One plan per site per 5-minute slot: re-running the same slot replaces that plan."""
    return f"{site_id}:{now.strftime('%Y%m%dT%H%MZ')}"


@dataclass
class Plan:
    plan_id: str
    result: ScheduleResult
    soc_initial: float
    meta: dict[str, Any] = field(default_factory=dict)


def plan_schedule(site: SiteConfig, now: pd.Timestamp, prices: pd.DataFrame, solar: pd.Series, load: pd.Series,
                  soc: float, store: HistoryStore | None = None, horizon: str = "full",
                  stale_prices: str | None = None) -> Plan:
    """Solve the schedule and store it (plan summary in ``plans``, intervals in ``schedule``).

    ``stale_prices`` (the reason) switches to plain self-consumption: prices too old to trade on must not
    drive grid charging or exports (SPEC §3).
    """
    problem = build_problem(site, now, prices, solar, load, soc)
    if stale_prices:
        result = self_consumption_schedule(problem, f"stale prices: {stale_prices}", horizon)
    else:
        result = solve(problem, horizon=horizon)
    pid = plan_id_for(site.id, now)
    meta = {
        "created_at": pd.Timestamp.now(tz="UTC"),
        "plan_start": now,
        "status": result.status,
        "solver": result.solver,
        "fallback_reason": result.fallback_reason,
        "objective": result.objective,
        "cost": result.cost,
        "baseline_cost": result.baseline_cost,
        "self_consumption_cost": result.self_consumption_cost,
        "savings_24h": result.savings_24h,
        "savings_horizon": result.savings_horizon,
        "solve_ms": result.solve_ms,
        "soc_initial": soc,
    }
    if store is not None:
        store.write_plan(site.id, pid, meta, result.intervals)
    return Plan(plan_id=pid, result=result, soc_initial=soc, meta=meta)



def push_action(device: Any, site: SiteConfig, store: HistoryStore | None, action: str, power_kw: float,
                until: pd.Timestamp, slot: pd.Timestamp) -> dict[str, Any]:
    """Send one plan slot to the battery; on failure put the battery back in self-consumption (safe mode).

    The driver verifies every write by reading it back and records each command in ``commands``.
    """
    try:
        result = device.apply(action, power_kw, until)
    except Exception as exc:  # the driver refused (stale telemetry, limits) or the transport failed
        outcome = {"outcome": "error", "error": f"{type(exc).__name__}: {exc}", "written": {}, "safe_mode": None}
        outcome["safe_mode"] = _safe_mode(device)
        if store is not None:
            store.record_command(site.id, site.battery.kind, f"apply:{action}", "error",
                                 params={"power_kw": power_kw, "until": until.isoformat()},
                                 error=outcome["error"], interval_start=slot)
        return outcome
    outcome = {"outcome": result.outcome if not result.ok else "ok", "error": result.error,
               "written": result.written, "readback": result.readback, "safe_mode": None}
    if not result.ok:
        outcome["safe_mode"] = _safe_mode(device)
    return outcome


def _safe_mode(device: Any) -> str:
    try:
        r = device.restore_normal()
        return "self_consumption" if r.ok else f"restore failed: {r.error}"
    except Exception as exc:
        return f"restore failed: {type(exc).__name__}: {exc}"


def record_unreachable(site: SiteConfig, store: HistoryStore | None, action: str, power_kw: float,
                       slot: pd.Timestamp, exc: Exception) -> dict[str, Any]:
    err = f"device unreachable: {type(exc).__name__}: {exc}"
    if store is not None:
        store.record_command(site.id, site.battery.kind, f"apply:{action}", "error",
                             params={"power_kw": power_kw}, error=err, interval_start=slot)
    return {"outcome": "error", "error": err, "written": {}, "safe_mode": None}


def plan_violations(intervals: pd.DataFrame, site: SiteConfig, soc_initial: float, tol: float = 1e-4) -> list[str]:
    """Physical invariants of a stored plan; an empty list means feasible.

    Energy balance per interval, SOC within [min(reserve, start SOC), 1] (the plan may ramp back up to a
    reserve it starts below), power and grid limits, and no simultaneous charge and discharge.
    """
    b, df = site.battery, intervals
    out: list[str] = []
    curtail = df["curtail_kw"].fillna(0.0) if "curtail_kw" in df else 0.0
    balance = (df["grid_import_kw"] - df["grid_export_kw"] + df["battery_discharge_kw"] - df["battery_charge_kw"]
               + df["solar_kw"] - curtail - df["load_kw"])
    if (balance.abs() > 1e-3).any():
        out.append(f"energy balance off by up to {balance.abs().max():.4f} kW")
    floor = min(b.reserve_fraction, soc_initial)
    if (df["soc"] < floor - tol).any() or (df["soc"] > 1 + tol).any():
        out.append(f"SOC outside [{floor:.3f}, 1]: min {df['soc'].min():.4f}, max {df['soc'].max():.4f}")
    if (df["battery_charge_kw"] > b.max_charge_kw + tol).any():
        out.append(f"charge above {b.max_charge_kw} kW")
    if (df["battery_discharge_kw"] > b.max_discharge_kw + tol).any():
        out.append(f"discharge above {b.max_discharge_kw} kW")
    if (df["grid_export_kw"] > site.limits.export_kw + tol).any():
        out.append(f"export above {site.limits.export_kw} kW")
    if (df["grid_import_kw"] > site.limits.import_kw + tol).any():
        out.append(f"import above {site.limits.import_kw} kW")
    both = (df["battery_charge_kw"] > tol) & (df["battery_discharge_kw"] > tol)
    if both.any():
        out.append(f"{int(both.sum())} intervals charge and discharge at once")
    return out


def run_cycle(site: SiteConfig, store: HistoryStore, now: str | pd.Timestamp | None = None) -> dict[str, Any]:
    """One full planning cycle for one site outside Dagster (the ``sync_now`` service): prices, forecasts,
    the battery's SOC, the plan, the current slot pushed to the battery, and the read-back.

    Each stage stores what it produced before the next starts, so a failure part-way keeps everything
    earlier; the returned dict says how far it got.
    """
    from .devices.base import open_device

    t = site_now(site, fixed=str(now) if now is not None else None)
    out: dict[str, Any] = {"now": t.isoformat(), "ok": False}
    pf = price_forecast(site, t, store)
    solar, load, _ = forecasts(site, t, store)
    with open_device(site, store) as device:
        try:
            tel = device.read_telemetry()
            store.upsert_telemetry(site.id, tel.ts, tel.as_row())
            soc = float(tel.soc)
        except Exception as exc:  # plan from the configured SOC; the push below will refuse on stale telemetry
            out["telemetry_error"] = f"{type(exc).__name__}: {exc}"
            soc = site.battery.initial_soc_pct / 100.0
        plan = plan_schedule(site, t, pf.frame, solar, load, soc, store, stale_prices=pf.message if pf.stale else None)
        first = plan.result.intervals.iloc[0]
        power = float(max(first["battery_charge_kw"], first["battery_discharge_kw"]))
        pushed = push_action(device, site, store, str(first["action"]), power, t + STEP, t)
        try:
            after = device.read_telemetry()
            store.upsert_telemetry(site.id, after.ts, after.as_row())
            out["soc_after"] = float(after.soc)
        except Exception as exc:
            out["readback_error"] = f"{type(exc).__name__}: {exc}"
    r = plan.result
    out.update({
        "plan_id": plan.plan_id, "status": r.status, "solver": r.solver, "cost": r.cost,
        "baseline_cost": r.baseline_cost, "action": str(first["action"]), "power_kw": power,
        "command": pushed["outcome"], "command_error": pushed.get("error"), "ok": pushed["outcome"] == "ok",
    })
    return out
