"""The four charging modes as pure planning functions over the site's horizon (SPEC §10).

Every mode starts from the battery-only plan of the same problem (``optimizer.solve``) and adds the car:

* ``solar_only``: the car takes only the solar surplus left after the house and the battery's planned
  charging, in whole amps (below ``min_amps`` it waits). The target may stay unmet: that is the mode.
* ``solar_preferred``: the same surplus first, then the cheapest import intervals before departure, until the
  target is met.
* ``cost_optimized``: the car's energy is a variable of the battery LP (``EvRequirement`` with the departure
  deadline), so battery and car share the cheap intervals and the connection limit at least total cost.
* ``time_critical``: as much as the connection allows from now until the target is met.

The car never takes more than the connection leaves: per interval ``import_limit - (load - solar + battery
charging)``, capped at the charger's max (battery discharge is not counted as room: it may stop at any time).
A target that even ``time_critical`` cannot meet by departure is reported with the best achievable energy and
planned at max (every mode but ``solar_only``, which never imports for the car).

The session plan uses ``solve()``, not the warm ``Replanner``: the car adds rows (the energy row, and the rows
that keep the battery out of the car) that exist only while a car is plugged in, and a fresh ``solve()`` on the
site's horizon costs tens of milliseconds (``benchmarks/bench_ev.py``), nothing next to a 5-minute cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..optimizer import EvRequirement, OptimizationProblem, ScheduleResult, solve
from ..optimizer.result import energy_cost
from .session import ChargerLimits, EvSession

EPS_KWH = 1e-6


@dataclass
class EvPlan:
    """One session planned: the car's AC power and charger current per interval, and what it costs.

    ``energy_kwh`` is what reaches the car's battery by departure; ``ev_cost`` is the site's energy cost with the
    car minus without it (battery-only plan), with the change in stored energy at the horizon end valued at the
    plan's terminal value, so modes compare on the same footing.
    """

    mode: str
    index: pd.DatetimeIndex
    ev_kw: np.ndarray
    amps: np.ndarray
    target_kwh: float
    energy_kwh: float
    feasible: bool
    best_achievable_kwh: float
    site_cost: float
    site_cost_without_ev: float
    ev_cost: float
    reason: str = ""
    schedule: ScheduleResult | None = field(default=None, repr=False)

    @property
    def target_met(self) -> bool:
        return self.energy_kwh >= self.target_kwh - 1e-3

    @property
    def first_amps(self) -> int:
        return int(self.amps[0]) if len(self.amps) else 0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ev_kw": self.ev_kw, "amps": self.amps}, index=self.index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "target_kwh": round(self.target_kwh, 4), "energy_kwh": round(self.energy_kwh, 4),
            "target_met": self.target_met, "feasible": self.feasible,
            "best_achievable_kwh": round(self.best_achievable_kwh, 4), "ev_cost": round(self.ev_cost, 4),
            "site_cost": round(self.site_cost, 4), "site_cost_without_ev": round(self.site_cost_without_ev, 4),
            "reason": self.reason, "first_amps": self.first_amps,
        }


@dataclass
class _Ctx:
    problem: OptimizationProblem
    session: EvSession
    base: ScheduleResult  # battery-only plan
    dt: float
    before: np.ndarray  # bool: the interval ends by departure
    headroom_kw: np.ndarray  # what the connection and charger leave for the car, per interval
    surplus_kw: np.ndarray  # solar after house and battery charging

    @property
    def limits(self) -> ChargerLimits:
        return self.session.limits


def _context(problem: OptimizationProblem, session: EvSession, base: ScheduleResult | None, horizon: str) -> _Ctx:
    problem.validate()
    if base is None:
        base = solve(replace(problem, ev=None), horizon=horizon)
    df = base.intervals
    chg = df["battery_charge_kw"].to_numpy()
    ends = problem.index() + pd.Timedelta(minutes=problem.interval_minutes)
    before = np.asarray(ends <= session.departure)
    lim = session.limits
    room = problem.import_limit_kw - (problem.load_kw - problem.solar_kw + chg)
    head = np.where(before, np.clip(room, 0.0, lim.max_kw), 0.0)
    surplus = np.where(before, np.maximum(problem.solar_kw - problem.load_kw - chg, 0.0), 0.0)
    return _Ctx(problem, session, base, problem.dt_hours, before, head, np.minimum(surplus, head))


def _whole_amps(kw: np.ndarray, limits: ChargerLimits) -> np.ndarray:
    return np.array([limits.amps_for(float(x)) for x in kw], dtype=np.int64)


def _stop_at(amps: np.ndarray, need_grid_kwh: float, limits: ChargerLimits, dt: float) -> np.ndarray:
    """Cut a current schedule once the need is met: the last interval gets the fewest whole amps (>= min) that
    finish it, or none when the remainder is below what ``min_amps`` delivers in half an interval."""
    out = np.zeros_like(amps)
    left = need_grid_kwh
    for t, a in enumerate(amps):
        if left <= EPS_KWH:
            break
        if a <= 0:
            continue
        e = limits.kw_for(a) * dt
        if e <= left + EPS_KWH:
            out[t] = a
            left -= e
            continue
        fewest = max(math.ceil(left / dt / limits.kw_per_amp - 1e-9), math.ceil(limits.min_amps))
        if fewest <= a and (fewest > limits.min_amps or left >= 0.5 * limits.min_kw * dt):
            out[t] = fewest
            left -= min(left, limits.kw_for(fewest) * dt)
        break
    return out


def _quantize(kw: np.ndarray, cap_kw: np.ndarray, need_grid_kwh: float, limits: ChargerLimits, dt: float,
              price: np.ndarray) -> np.ndarray:
    """Continuous kW -> whole amps (0 or min..cap), keeping the cumulative energy close to the continuous plan;
    what rounding left short is then added in the cheapest intervals with room, so the target is still met."""
    out = np.zeros(len(kw), dtype=np.int64)
    caps = np.array([limits.amps_for(float(c)) for c in cap_kw], dtype=np.int64)
    wanted = delivered = 0.0
    for t in range(len(kw)):
        wanted += max(0.0, float(kw[t])) * dt
        if caps[t] <= 0:
            continue
        gap = min(wanted, need_grid_kwh) - delivered
        if gap <= 0.5 * limits.min_kw * dt:
            continue
        a = max(math.ceil(limits.min_amps), round(gap / dt / limits.kw_per_amp))
        out[t] = min(a, caps[t])
        delivered += limits.kw_for(out[t]) * dt
    left = need_grid_kwh - delivered
    for t in np.argsort(price, kind="stable"):
        if left <= EPS_KWH:
            break
        if caps[t] <= out[t]:
            continue
        a = min(caps[t], max(out[t] + math.ceil(left / dt / limits.kw_per_amp - 1e-9), math.ceil(limits.min_amps)))
        left -= limits.kw_for(a - out[t]) * dt
        out[t] = a
    return out


def _site_costs(ctx: _Ctx, ev_kw: np.ndarray) -> tuple[float, float, float]:
    """(site cost with the car added to the battery-only plan, the same without the car, kWh kept in the battery).

    The meter nets each interval, so a battery planned to export while the car charges would in effect charge
    the car. Unless the site allows that, the battery's discharge is cut to the house's own deficit in those
    intervals and the energy it keeps is returned (valued by the caller at the terminal value).
    """
    p, df, dt = ctx.problem, ctx.base.intervals, ctx.dt
    imp0, exp0 = df["grid_import_kw"].to_numpy(), df["grid_export_kw"].to_numpy()
    dis0 = df["battery_discharge_kw"].to_numpy()
    without = float(energy_cost(imp0, exp0, p.import_price, p.export_price, dt).sum())
    g = imp0 - exp0 + ev_kw
    kept_kwh = 0.0
    if not ctx.session.allow_battery_to_ev:
        deficit = np.maximum(p.load_kw - p.solar_kw, 0.0)
        cut = np.where(ev_kw > 0, np.maximum(dis0 - deficit, 0.0), 0.0)
        g = g + cut
        kept_kwh = float(cut.sum()) * dt / p.battery.discharge_efficiency
    exp = np.minimum(np.maximum(-g, 0.0), p.export_limit_kw)
    with_ev = float(energy_cost(np.maximum(g, 0.0), exp, p.import_price, p.export_price, dt).sum())
    return with_ev, without, kept_kwh


def _result(ctx: _Ctx, mode: str, amps: np.ndarray, feasible: bool, best: float, reason: str,
            site_cost: float | None = None, stored_delta_kwh: float = 0.0, schedule: ScheduleResult | None = None) -> EvPlan:
    lim, s = ctx.limits, ctx.session
    ev_kw = np.array([lim.kw_for(a) for a in amps], dtype=float)
    with_ev, without, kept = _site_costs(ctx, ev_kw)
    if site_cost is not None:
        with_ev, kept = site_cost, 0.0
    ev_cost = with_ev - without - ctx.base.terminal_value * (stored_delta_kwh + kept)
    energy = float(ev_kw[ctx.before].sum()) * ctx.dt * s.efficiency
    return EvPlan(mode, ctx.problem.index(), ev_kw, amps, s.energy_kwh, energy, feasible, best, with_ev, without,
                  ev_cost, reason, schedule)


def best_achievable_kwh(ctx: _Ctx) -> float:
    """Energy at the car if it charged at every whole amp the connection allows until departure."""
    amps = _whole_amps(ctx.headroom_kw, ctx.limits)
    return float(sum(ctx.limits.kw_for(a) for a in amps)) * ctx.dt * ctx.session.efficiency


def _time_critical(ctx: _Ctx) -> np.ndarray:
    return _stop_at(_whole_amps(ctx.headroom_kw, ctx.limits), ctx.session.grid_energy_kwh, ctx.limits, ctx.dt)


def _solar_amps(ctx: _Ctx) -> np.ndarray:
    return _stop_at(_whole_amps(ctx.surplus_kw, ctx.limits), ctx.session.grid_energy_kwh, ctx.limits, ctx.dt)


def plan_solar_only(ctx: _Ctx) -> EvPlan:
    amps = _solar_amps(ctx)
    plan = _result(ctx, "solar_only", amps, True, best_achievable_kwh(ctx), "")
    if not plan.target_met:
        plan.reason = f"solar surplus before departure gives {plan.energy_kwh:.2f} of {plan.target_kwh:.2f} kWh"
    return plan


def plan_solar_preferred(ctx: _Ctx) -> EvPlan:
    lim, dt = ctx.limits, ctx.dt
    amps = _solar_amps(ctx)
    left = ctx.session.grid_energy_kwh - float(sum(lim.kw_for(a) for a in amps)) * dt
    cap = _whole_amps(ctx.headroom_kw, lim)
    for t in np.argsort(ctx.problem.import_price, kind="stable"):  # cheapest first; ties: earliest
        if left <= EPS_KWH:
            break
        if not ctx.before[t] or cap[t] <= amps[t]:
            continue
        room_kwh = lim.kw_for(cap[t] - amps[t]) * dt
        if room_kwh <= left:
            amps[t] = cap[t]
            left -= room_kwh
        else:
            a = max(amps[t] + math.ceil(left / dt / lim.kw_per_amp - 1e-9), math.ceil(lim.min_amps))
            amps[t] = min(a, cap[t])
            left = 0.0
    return _result(ctx, "solar_preferred", amps, True, best_achievable_kwh(ctx), "solar surplus first, then the cheapest import")


def plan_time_critical(ctx: _Ctx) -> EvPlan:
    return _result(ctx, "time_critical", _time_critical(ctx), True, best_achievable_kwh(ctx), "max power until the target is met")


def plan_cost_optimized(ctx: _Ctx, horizon: str = "full", time_limit_s: float = 5.0) -> EvPlan:
    p, s, lim = ctx.problem, ctx.session, ctx.limits
    req = EvRequirement(s.grid_energy_kwh, s.departure, lim.max_kw, battery_to_ev=s.allow_battery_to_ev)
    joint = solve(replace(p, ev=req), horizon=horizon, time_limit_s=time_limit_s)
    df = joint.intervals
    if joint.status != "optimal" or "ev_kw" not in df:
        plan = plan_solar_preferred(ctx)
        plan.mode = "cost_optimized"
        plan.reason = f"the joint plan fell back ({joint.status}: {joint.fallback_reason}); charging in the cheapest intervals"
        return plan
    chg = df["battery_charge_kw"].to_numpy()
    room = np.where(ctx.before, np.clip(p.import_limit_kw - (p.load_kw - p.solar_kw + chg), 0.0, lim.max_kw), 0.0)
    amps = _quantize(df["ev_kw"].to_numpy(), room, s.grid_energy_kwh, lim, ctx.dt, p.import_price)
    stored_delta = float(df["soc"].iloc[-1] - ctx.base.intervals["soc"].iloc[-1]) * p.battery.capacity_kwh
    ev_kw = np.array([lim.kw_for(a) for a in amps], dtype=float)
    # the joint plan's grid flows, re-netted for the whole-amp car power (same battery schedule)
    g = df["grid_import_kw"].to_numpy() - df["grid_export_kw"].to_numpy() + ev_kw - df["ev_kw"].to_numpy()
    cost = float(energy_cost(np.maximum(g, 0.0), np.maximum(-g, 0.0), p.import_price, p.export_price, ctx.dt).sum())
    return _result(ctx, "cost_optimized", amps, True, best_achievable_kwh(ctx), "planned with the battery at least cost",
                   site_cost=cost, stored_delta_kwh=stored_delta, schedule=joint)


def plan_session(problem: OptimizationProblem, session: EvSession, mode: str | None = None, *,
                 base: ScheduleResult | None = None, horizon: str = "full") -> EvPlan:
    """Plan ``session`` in ``mode`` (default: the session's) on ``problem``'s horizon (the battery-only problem).

    ``base`` is the battery-only plan when the caller has it (saves one solve); ``horizon`` is the joint LP's
    (``full``: the car can take the cheapest 5-minute intervals, which a tiered grid would average away). A
    target no mode can meet by
    departure is reported (``feasible=False`` with ``best_achievable_kwh``) and planned at max power.
    """
    mode = mode or session.mode
    ctx = _context(problem, session, base, horizon)
    best = best_achievable_kwh(ctx)
    if mode == "solar_only":
        return plan_solar_only(ctx)
    if best < session.energy_kwh - 1e-3:
        plan = _result(ctx, mode, _time_critical(ctx), False, best,
                       f"target {session.energy_kwh:.2f} kWh is not reachable by departure: at most {best:.2f} kWh; charging at max")
        return plan
    if mode == "time_critical":
        return plan_time_critical(ctx)
    if mode == "solar_preferred":
        return plan_solar_preferred(ctx)
    if mode == "cost_optimized":
        return plan_cost_optimized(ctx, horizon=horizon)
    raise ValueError(f"unknown EV mode {mode!r}")
