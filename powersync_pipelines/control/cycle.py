"""The planning cycle: prices -> solar and load forecasts -> the plan -> the current slot to the battery -> the
EV charger's current (sites with an ``ev:`` section, ``control.ev``).

Each stage is a plain function the Dagster assets, ``sync_now`` and the CLI share. Every stage writes its
result to the DuckDB history store, keyed so that a re-run replaces, never duplicates, and a failure part-way
keeps everything earlier. The plan comes from the one planner (``optimizer.Planner``, the backtest's planner
too), kept warm per site while the process lives on; the current slot reaches the battery through the
arbiter as owner ``optimizer``, so a manual force, a spike or an automation holding the battery is never
overridden: the optimizer's request is yielded and recorded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..demand import site_demand_charge
from ..forecasts.blend import blend_price_horizon
from ..forecasts.load import load_forecast_kw
from ..forecasts.nowcast import RECENT_STEPS, load_nowcast
from ..forecasts.price_mapping import RetailMap, reserve_rule
from ..forecasts.price_registry import load_latest_model, record_forecast, stored_history
from ..forecasts.solar import site_solar_forecast, store_solar_forecast
from ..forecasts.strategy_choice import current_strategy
from ..optimizer import Planner, PlannerSettings, ReplanResult, ScheduleResult
from ..prices.errors import PriceDataError
from ..prices.fallback import fetch_with_fallback
from ..prices.registry import fetch_price_frame
from ..storage import HistoryStore
from ..timegrid import HORIZON_HOURS, STEP, horizon_index
from . import ledger
from .arbiter import Outcome, Request
from .context import ControlContext
from .ev import ev_step
from .switches import in_effect

TELEMETRY_FORECAST_COLUMNS = ("load_kw", "solar_kw")  # the measured series the forecasts read
# The optimizer's hold of the battery outlives its slot by this much, so the next 5-minute cycle renews it
# before it lapses; if the pipeline stops, the restore watch puts the battery back after it.
OPTIMIZER_GRACE = pd.Timedelta(minutes=5)


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
    """Solar kW on the horizon grid (:func:`.forecasts.solar.site_solar_forecast`: Solcast where configured,
    else pvlib, corrected by the last half hour's measured production); stored in ``forecasts`` (kind
    ``solar``, P10/P90 beside it). ``attrs["provenance"]`` says where it came from."""
    recent = recent_intervals(telemetry_series(store, site, now, "solar_kw", RECENT_STEPS * STEP), now)
    fc = site_solar_forecast(site, horizon_index(now), store, now, recent=recent)
    if store is not None:
        store_solar_forecast(store, site.id, fc, now)
    fc.kw.attrs["provenance"] = fc.provenance.as_dict()
    return fc.kw


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


# -- the plan ---------------------------------------------------------------------------------------------
_planners: dict[str, Planner] = {}
_planners_lock = threading.Lock()


def planner_for(site: SiteConfig) -> Planner:
    """The site's planner, warm from its last replan while this process lives on (cold on first use, or when
    the site's battery or limits changed)."""
    settings = PlannerSettings.from_site(site)
    with _planners_lock:
        planner = _planners.get(site.id)
        if planner is None or planner.settings != settings:
            planner = _planners[site.id] = Planner(settings)
        return planner


def plan_id_for(site_id: str, now: pd.Timestamp) -> str:
    """One plan per site per 5-minute slot: re-running the same slot replaces that plan."""
    return f"{site_id}:{now.strftime('%Y%m%dT%H%MZ')}"


@dataclass
class Plan:
    plan_id: str
    result: ScheduleResult
    soc_initial: float
    meta: dict[str, Any] = field(default_factory=dict)
    replan: ReplanResult | None = None  # the planner's own result (None for the stale-price fallback)


def plan_schedule(site: SiteConfig, now: pd.Timestamp, prices: pd.DataFrame, solar: pd.Series, load: pd.Series,
                  soc: float, store: HistoryStore | None = None, stale_prices: str | None = None) -> Plan:
    """Plan with the site's planner and store it (summary in ``plans``, intervals in ``schedule``).

    ``stale_prices`` (the reason) switches to plain self-consumption: prices too old to trade on must not
    drive grid charging or exports (SPEC section 3).
    """
    planner = planner_for(site)
    imp = prices["import_price"].to_numpy(dtype=float)
    exp = prices["export_price"].to_numpy(dtype=float)
    replan = None
    if stale_prices:
        result = planner.follow_house(now, imp, exp, solar.to_numpy(float), load.to_numpy(float), soc,
                                      f"stale prices: {stale_prices}")
    else:
        demand = site_demand_charge(store, site, now, pd.date_range(now, periods=len(imp), freq=STEP))
        replan = planner.plan(now, imp, exp, solar.to_numpy(float), load.to_numpy(float), soc, demand_charge=demand)
        result = replan.to_schedule()
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
    if "demand_cost_avoided" in result.extras:  # the demand charge's share of the savings, beside the energy's
        meta["demand_peak_kw"] = result.extras["demand_peak_kw"]
        meta["demand_cost_avoided"] = result.extras["demand_cost_avoided"]
    if store is not None:
        store.write_plan(site.id, pid, meta, result.intervals)
    return Plan(plan_id=pid, result=result, soc_initial=soc, meta=meta, replan=replan)


# -- the current slot to the battery ------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """One plan interval as the battery is told it."""

    start: pd.Timestamp
    action: str
    power_kw: float

    @classmethod
    def from_row(cls, row: pd.Series) -> Slot:
        return cls(pd.Timestamp(row.name), str(row["action"]),
                   float(max(row["battery_charge_kw"], row["battery_discharge_kw"])))

    @property
    def until(self) -> pd.Timestamp:
        return self.start + STEP

    def describe(self) -> str:
        return f"{self.action} {self.power_kw:.2f} kW until {self.until.isoformat()}"


def current_slot(intervals: pd.DataFrame, now: pd.Timestamp) -> Slot:
    """The plan interval containing ``now`` (the first one if the plan starts later)."""
    started = intervals.loc[intervals.index <= now]
    return Slot.from_row(started.iloc[-1] if not started.empty else intervals.iloc[0])


def push_slot(ctx: ControlContext, site: SiteConfig, slot: Slot) -> Outcome | None:
    """Ask the arbiter, as ``optimizer``, to carry out ``slot`` on the battery; the driver verifies each write by
    reading it back and records it in ``commands``. Yielded when a higher owner holds the battery.

    A site with ``optimization`` off gets no slot: the battery is handed back to its own self-consumption if the
    optimizer still holds it (:func:`hand_back`), else nothing is written and None is returned."""
    if not site.optimization:
        return hand_back(ctx, site)
    lease = max(slot.until, ctx.clock.wall() + STEP) + OPTIMIZER_GRACE
    request = Request(site.id, "battery", "optimizer", f"apply:{slot.action}",
                      f"plan slot {slot.start.isoformat()}: {slot.describe()}", lease_until=lease,
                      device_kind=site.battery.kind)
    with ctx.battery(site) as device:
        return ctx.arbiter.act(request, lambda: device.apply(slot.action, slot.power_kw, lease))


def hand_back(ctx: ControlContext, site: SiteConfig) -> Outcome | None:
    """Optimization switched off: if the optimizer holds the battery, put it back into its normal
    (self-consumption) mode and release the hold, once; None when the optimizer holds nothing (the battery is
    already its own, or a higher owner has it and keeps it)."""
    hold = ledger.holder(ctx.store, site.id, "battery", ctx.clock.wall())
    if hold is None or hold.owner != "optimizer":
        return None
    request = Request(site.id, "battery", "optimizer", "restore_normal", "optimization switched off: the battery "
                      "runs its own self-consumption", releases=True, device_kind=site.battery.kind)
    with ctx.battery(site) as device:
        return ctx.arbiter.act(request, lambda: device.restore_normal())


def read_soc(ctx: ControlContext, site: SiteConfig) -> tuple[float, str, str | None]:
    """(SOC, where it came from, error): the battery now (stored as telemetry); else the last stored telemetry;
    else the configured initial SOC. The plan is still useful, and stored, when the battery is unreachable."""
    error = None
    try:
        with ctx.battery(site) as device:
            t = device.read_telemetry()
        ctx.store.upsert_telemetry(site.id, t.ts, t.as_row())
        return float(t.soc), "device", None
    except Exception as exc:  # any transport or driver failure: plan from what is known
        error = f"{type(exc).__name__}: {exc}"
    last = ctx.store.query("SELECT soc FROM telemetry WHERE site_id = ? ORDER BY ts DESC LIMIT 1", [site.id])
    if not last.empty and last["soc"].notna().iloc[0]:
        return float(last["soc"].iloc[0]), "stored_telemetry", error
    return site.battery.initial_soc_pct / 100.0, "configured_initial", error


def run_cycle(ctx: ControlContext, site: SiteConfig) -> dict[str, Any]:
    """One full planning cycle for one site outside Dagster (the ``sync_now`` service): prices, forecasts, the
    battery's SOC, the plan, the current slot pushed through the arbiter, the read-back, and (a site with an
    ``ev:`` section) the car's current sent through the arbiter as ``ev`` (``out["ev"]``). The site's switches
    in effect (:mod:`.switches`) decide the objective and whether the slot is pushed at all.

    Each stage stores what it produced before the next starts, so a failure part-way keeps everything earlier;
    the returned dict says how far it got.
    """
    site = in_effect(ctx.store, site)
    t = ctx.clock.site_now(site)
    out: dict[str, Any] = {"now": t.isoformat(), "ok": False, "optimization": site.optimization,
                           "cost_function": site.cost_function}
    pf = price_forecast(site, t, ctx.store)
    solar, load, _ = forecasts(site, t, ctx.store)
    soc, soc_source, soc_error = read_soc(ctx, site)
    if soc_error:
        out["telemetry_error"] = soc_error
    plan = plan_schedule(site, t, pf.frame, solar, load, soc, ctx.store,
                         stale_prices=pf.message if pf.stale else None)
    slot = current_slot(plan.result.intervals, t)
    pushed = push_slot(ctx, site, slot)
    try:
        with ctx.battery(site) as device:
            after = device.read_telemetry()
        ctx.store.upsert_telemetry(site.id, after.ts, after.as_row())
        out["soc_after"] = float(after.soc)
    except Exception as exc:  # the command's own outcome is what matters; a failed read-back is reported
        out["readback_error"] = f"{type(exc).__name__}: {exc}"
    r = plan.result
    out.update({
        "plan_id": plan.plan_id, "status": r.status, "solver": r.solver, "cost": r.cost,
        "baseline_cost": r.baseline_cost, "action": slot.action, "power_kw": slot.power_kw,
        "soc_source": soc_source,
    })
    if pushed is None:  # optimization off and the battery already its own: nothing written
        out.update(command="optimization_off", command_error=None, arbiter=None, ok=True)
    else:
        out.update(command=pushed.outcome, command_error=pushed.as_dict()["error"], arbiter=pushed.as_dict(),
                   ok=pushed.ok or pushed.yielded)
    if site.ev is not None:
        out["ev"] = ev_step(ctx, site, t, pf.frame, solar, load, soc, base=r)
    return out
