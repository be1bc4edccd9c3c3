"""``solve()``: one plan for one problem, with the LP, the burn repair, the fallbacks and the savings."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .grid import Aggregator, full_bounds, tiered_bounds
from .heuristics import Plan, baseline_plan, greedy_plan, ramp_floor, self_consumption_plan
from .highs_util import LAST_RESORT_S
from .model import CURTAIL_TIE_BREAK, EV_SHORTFALL_PENALTY, BatteryLp, DemandBlock, LpOutcome, PeriodInputs
from .problem import HORIZONS, SOLVERS, DemandCharge, OptimizationProblem, ProblemError
from .repair import repair_burn
from .result import ACTION_NAMES, ScheduleResult, classify_actions, energy_cost

PROFIT_TERMINAL_WEIGHT = 0.3  # "profit": value leftover energy at 30% so the plan sells more within the horizon
SELF_CONSUMPTION_PRICE_WEIGHT = 1e-3  # "self_consumption": import kWh dominate, prices only break ties
SELF_CONSUMPTION_TERMINAL_WEIGHT = 0.5
EV_TARGET_TOL_KWH = 1e-3  # an EV plan short by less than this is the target met (solver tolerance)


@dataclass
class Prepared:
    """Everything derived from a problem before any solver runs (shared by LP, greedy and fallbacks)."""

    problem: OptimizationProblem
    dt: float
    cap: float
    e0: float
    reserve_kwh: float
    import_weight: np.ndarray  # objective coefficient per kWh imported
    export_weight: np.ndarray  # objective value per kWh exported
    floor_kwh: np.ndarray  # per interval
    terminal_value: float  # objective units per kWh stored at the end
    ev_max_kw: np.ndarray | None  # per interval


def objective_weights(problem: OptimizationProblem) -> tuple[np.ndarray, np.ndarray]:
    if problem.cost_function == "self_consumption":
        w = SELF_CONSUMPTION_PRICE_WEIGHT
        return 1.0 + w * problem.import_price, w * problem.export_price
    return problem.import_price, problem.export_price


def terminal_value_for(problem: OptimizationProblem, import_weight: np.ndarray) -> float:
    return terminal_value_from(problem.terminal_value, problem.cost_function, import_weight, problem.battery.discharge_efficiency)


def terminal_value_from(tv: str | float, cost_function: str, import_weight: np.ndarray, eta_d: float) -> float:
    """Objective units credited per kWh stored at the horizon end.

    ``auto``: the cheapest import in the second half of the horizon, times the discharge efficiency (what a
    stored kWh saves when it later displaces that import), floored at 0. Buying at that cheapest price to
    store costs price/eta_c > value, so it never pays to fill up for the end. ``profit`` values leftover
    energy at 30% (sell more now); ``self_consumption`` at 50%, so covering the house now always beats
    keeping energy for after the horizon, while storing surplus solar still beats exporting it.
    """
    if tv == "none":
        return 0.0
    if tv == "auto":
        v = max(0.0, float(import_weight[len(import_weight) // 2 :].min())) * eta_d
        if cost_function == "self_consumption":
            v *= SELF_CONSUMPTION_TERMINAL_WEIGHT
    else:
        v = float(tv)
    if cost_function == "profit":
        v *= PROFIT_TERMINAL_WEIGHT
    return v


def prepare(problem: OptimizationProblem) -> Prepared:
    b = problem.battery
    dt = problem.dt_hours
    cap = b.capacity_kwh
    e0 = b.soc_initial * cap
    reserve = b.reserve * cap
    iw, ew = objective_weights(problem)
    floor = ramp_floor(e0, reserve, problem.solar_kw, problem.load_kw, dt, b.max_charge_kw, b.charge_efficiency, problem.import_limit_kw)
    ev_max = None
    if problem.ev is not None:
        ends = problem.index() + pd.Timedelta(minutes=problem.interval_minutes)
        ev_max = np.where(ends <= problem.ev.deadline, problem.ev.max_kw, 0.0)
    return Prepared(problem, dt, cap, e0, reserve, iw, ew, floor, terminal_value_for(problem, iw), ev_max)


def demand_blocks(problem: OptimizationProblem, bounds: np.ndarray) -> list[DemandBlock]:
    """Rows for the demand peak: periods grouped by the UTC-aligned measurement interval (longer periods stand alone)."""
    dc = problem.demand_charge
    if dc is None or not dc.window.any():
        return []
    return demand_groups(dc, problem.start, problem.interval_minutes, bounds)


def demand_groups(dc: DemandCharge, start: pd.Timestamp, interval_minutes: int, bounds: np.ndarray) -> list[DemandBlock]:
    """The demand blocks of a plan from ``start`` on the period grid ``bounds`` (see ``demand_blocks``)."""
    im = interval_minutes
    first = int(start.value // 10**9 // 60 // im)  # absolute interval index
    per30 = max(1, dc.interval_minutes // im)
    window = dc.window
    groups: dict[tuple[int, int], list[int]] = {}
    hours: dict[tuple[int, int], float] = {}
    for k in range(len(bounds) - 1):
        a, z = int(bounds[k]), int(bounds[k + 1])
        if not window[a:z].any():
            continue
        key = (0, (first + a) // per30) if z - a <= per30 else (1, k)
        groups.setdefault(key, []).append(k)
        hours[key] = hours.get(key, 0.0) + (z - a) * im / 60.0
    return [DemandBlock(np.asarray(v, dtype=np.int64), hours[key]) for key, v in groups.items()]


def period_inputs(prep: Prepared, agg: Aggregator) -> PeriodInputs:
    p = prep.problem
    return PeriodInputs(
        dt=agg.dt,
        import_cost=agg.mean(prep.import_weight),
        export_cost=-agg.mean(prep.export_weight),
        solar_kw=agg.mean(p.solar_kw),
        load_kw=agg.mean(p.load_kw),
        floor_kwh=agg.last(prep.floor_kwh),
        ev_max_kw=None if prep.ev_max_kw is None else _period_ev(prep.ev_max_kw, agg),
        final_kwh=None if p.soc_final is None else p.soc_final * prep.cap,
    )


def _period_ev(ev_max: np.ndarray, agg: Aggregator) -> np.ndarray:
    # a period may charge the EV only if every interval in it is before the deadline
    return np.minimum.reduceat(ev_max, agg.bounds[:-1]) if not agg.trivial else ev_max


def expand_outcome(solar_kw: np.ndarray, load_kw: np.ndarray, e0: float, agg: Aggregator, out: LpOutcome,
                   export_limit_kw: float = math.inf) -> Plan:
    """Period energies → interval powers on the original grid (balance recomputed per interval).

    Within a coarse period the battery power is constant, curtailment follows the solar shape, and grid
    import/export is re-netted per interval, so every interval balances exactly; SOC is linear in between.
    The period respects the export limit on average; an interval whose solar peaks above that average is
    clipped to the limit by curtailing the excess, as the inverter's export limiter does.
    """
    assert out.imp is not None and out.soc is not None
    n = len(load_kw)
    dtp = np.where(agg.dt > 0, agg.dt, 1.0)
    soc_end = out.soc[: agg.n_periods]
    marginal = out.marginal if out.marginal is not None else np.zeros(agg.n_periods)
    if agg.trivial:
        return Plan(out.imp / dtp, out.exp / dtp, out.chg / dtp, out.dis / dtp, out.cur / dtp, soc_end.copy(), out.ev / dtp, marginal.copy())
    chg = agg.expand(out.chg / dtp)
    dis = agg.expand(out.dis / dtp)
    ev = agg.expand(out.ev / dtp)
    sol_mean = agg.mean(solar_kw) * agg.dt
    frac = np.divide(out.cur, sol_mean, out=np.zeros_like(out.cur), where=sol_mean > 1e-12)
    cur = np.clip(agg.expand(frac), 0.0, 1.0) * solar_kw
    g = load_kw - solar_kw + cur + chg - dis + ev
    over = np.minimum(np.maximum(-g - export_limit_kw, 0.0), solar_kw - cur) if math.isfinite(export_limit_kw) else 0.0
    cur = cur + over
    g = g + over
    imp, exp = np.maximum(g, 0.0), np.maximum(-g, 0.0)
    soc_start_p = np.concatenate([[e0], soc_end[:-1]])
    pos = np.arange(n) - agg.bounds[agg.period_of] + 1
    m = agg.lengths[agg.period_of]
    soc = agg.expand(soc_start_p) + (agg.expand(soc_end) - agg.expand(soc_start_p)) * pos / m
    return Plan(imp, exp, chg, dis, cur, soc, ev, agg.expand(marginal))


def plan_objective(prep: Prepared, plan: Plan) -> float:
    """The objective the LP minimises, evaluated on an interval-grid plan (comparable across solvers)."""
    p = prep.problem
    dt = prep.dt
    obj = float(np.sum((prep.import_weight * plan.imp - prep.export_weight * plan.exp) * dt))
    obj += 0.5 * p.wear_cost_per_kwh * float(np.sum(plan.chg + plan.dis)) * dt
    obj += CURTAIL_TIE_BREAK * float(np.sum(plan.cur)) * dt
    obj -= prep.terminal_value * float(plan.soc_kwh[-1])
    if p.ev is not None:
        obj += EV_SHORTFALL_PENALTY * max(0.0, p.ev.energy_kwh - float(np.sum(plan.ev)) * dt)
    if p.demand_charge is not None and p.demand_charge.window.any():
        obj += p.demand_charge.price_per_kw * demand_peak(p, plan.imp)
    return obj


def demand_peak(problem: OptimizationProblem, imp_kw: np.ndarray) -> float:
    """Peak half-hour average import (kW) in the demand window, at least the month's existing peak."""
    dc = problem.demand_charge
    assert dc is not None
    peak = dc.existing_peak_kw
    for blk in demand_blocks(problem, full_bounds(problem.n)):
        peak = max(peak, float(np.sum(imp_kw[blk.periods])) * problem.dt_hours / blk.hours)
    return peak


def _lp(prep: Prepared, horizon: str, time_limit_s: float) -> tuple[LpOutcome, Aggregator]:
    p = prep.problem
    b = p.battery
    bounds = full_bounds(p.n) if horizon == "full" else tiered_bounds(p.start, p.n, p.interval_minutes)
    agg = Aggregator(bounds, prep.dt)
    inp = period_inputs(prep, agg)
    slots = np.arange(1, agg.n_periods + 1)  # slot 0 holds the measured "now"
    blocks = [DemandBlock(slots[blk.periods], blk.hours) for blk in demand_blocks(p, bounds)]
    lp = BatteryLp(
        agg.n_periods + 1, prep.cap, b.max_charge_kw, b.max_discharge_kw, b.charge_efficiency, b.discharge_efficiency,
        import_limit_kw=p.import_limit_kw, export_limit_kw=p.export_limit_kw, wear_cost_per_kwh=p.wear_cost_per_kwh,
        has_ev=p.ev is not None, ev_energy_kwh=p.ev.energy_kwh if p.ev else 0.0,
        battery_to_ev=p.ev.battery_to_ev if p.ev else True, ev_max_kw=p.ev.max_kw if p.ev else 0.0,
        demand_blocks=blocks, demand_price_per_kw=p.demand_charge.price_per_kw if p.demand_charge else 0.0,
        existing_peak_kw=p.demand_charge.existing_peak_kw if p.demand_charge else 0.0,
        time_limit_s=time_limit_s, presolve=True,
    )  # fmt: skip
    out = lp.solve(inp, slots, 0, prep.e0, prep.terminal_value)
    if out.status == "optimal":
        out = repair_burn(lp, inp, slots, out, max(0.05, time_limit_s - out.solve_s))
    return out, agg


def greedy_for(prep: Prepared) -> Plan:
    p = prep.problem
    b = p.battery
    return greedy_plan(
        p.import_price, p.export_price, p.solar_kw, p.load_kw, prep.dt, prep.cap, prep.e0, prep.floor_kwh,
        b.max_charge_kw, b.max_discharge_kw, b.charge_efficiency, b.discharge_efficiency,
        p.import_limit_kw, p.export_limit_kw, p.wear_cost_per_kwh, prep.terminal_value,
        import_weight=prep.import_weight, export_weight=prep.export_weight,
    )  # fmt: skip


def self_consumption_for(prep: Prepared) -> Plan:
    p = prep.problem
    b = p.battery
    return self_consumption_plan(
        p.solar_kw, p.load_kw, prep.dt, prep.cap, prep.e0, prep.reserve_kwh, b.max_charge_kw, b.max_discharge_kw,
        b.charge_efficiency, b.discharge_efficiency, p.export_limit_kw,
    )  # fmt: skip


def solve(
    problem: OptimizationProblem, horizon: str = "full", solver: str = "lp", time_limit_s: float = LAST_RESORT_S
) -> ScheduleResult:
    """Plan the battery for ``problem``. Never raises for a well-formed problem: solver failures fall back.

    * ``solver="lp"``: the exact LP (plus the burn repair), bounded by work limits, so the same problem gives
      the same plan on any machine; on a solver error, a work limit without a plan, or the last-resort wall
      clock ``time_limit_s`` → greedy (``status="fallback_greedy"``); on an infeasible problem →
      self-consumption (``status="fallback_self_consumption"``); a burn repair stopped by its node limit with
      a physically possible plan → that plan (``status="near_optimal"``). ``fallback_reason`` says why.
    * ``solver="greedy"``: the heuristic only (``status="greedy"``).
    """
    if horizon not in HORIZONS:
        raise ProblemError(f"horizon must be one of {', '.join(HORIZONS)}, got {horizon!r}")
    if solver not in SOLVERS:
        raise ProblemError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    problem.validate()
    t0 = time.perf_counter()
    prep = prepare(problem)
    fallback_reason = None
    lp_periods = 0
    repaired = 0
    lp_objective = None
    if solver == "greedy":
        plan, status, used = greedy_for(prep), "greedy", "greedy"
    else:
        out, agg = _lp(prep, horizon, time_limit_s)
        lp_periods = agg.n_periods
        if out.status in ("optimal", "near_optimal"):
            plan = expand_outcome(problem.solar_kw, problem.load_kw, prep.e0, agg, out, problem.export_limit_kw)
            status, used = out.status, "lp"
            repaired = out.repaired_intervals
            lp_objective = out.objective
            if out.status == "near_optimal":
                fallback_reason = out.detail
        elif out.status == "infeasible":
            fallback_reason = f"LP infeasible ({out.detail}): the site cannot be supplied within its limits; following the house"
            plan, status, used = self_consumption_for(prep), "fallback_self_consumption", "self_consumption"
        else:
            fallback_reason = f"LP {out.status.replace('_', ' ')} ({out.detail})"
            plan, status, used = greedy_for(prep), "fallback_greedy", "greedy"
    solve_ms = (time.perf_counter() - t0) * 1000.0
    res = build_result(prep, plan, status, used, fallback_reason, solve_ms, horizon)
    res.lp_periods = lp_periods
    res.repaired_intervals = repaired
    if status == "optimal" and problem.ev is not None and not res.extras["ev_target_met"]:
        # the LP prices undelivered EV energy far above any tariff, so its plan is the most the car can get
        res.status = "ev_target_infeasible"
        res.fallback_reason = (f"EV target {problem.ev.energy_kwh:g} kWh by {problem.ev.deadline.isoformat()} cannot be "
                               f"met: at most {res.extras['ev_energy_kwh']:g} kWh within the charger and grid limits; "
                               "the plan delivers that")
    if lp_objective is not None:
        res.extras["lp_objective"] = lp_objective
    return res


def self_consumption_schedule(problem: OptimizationProblem, reason: str, horizon: str = "full") -> ScheduleResult:
    """The battery simply follows the house (no grid charging, no battery exports): the plan for inputs that
    must not be traded on, e.g. stale prices. Reported as ``fallback_self_consumption`` with ``reason``."""
    problem.validate()
    t0 = time.perf_counter()
    prep = prepare(problem)
    plan = self_consumption_for(prep)
    return build_result(prep, plan, "fallback_self_consumption", "self_consumption", reason,
                        (time.perf_counter() - t0) * 1000.0, horizon)


def build_result(
    prep: Prepared, plan: Plan, status: str, solver: str, fallback_reason: str | None, solve_ms: float, horizon: str
) -> ScheduleResult:
    p = prep.problem
    dt = prep.dt
    n24 = min(p.n, int(round(24 * 60 / p.interval_minutes)))
    costs = energy_cost(plan.imp, plan.exp, p.import_price, p.export_price, dt)
    base = baseline_plan(p.solar_kw, p.load_kw, prep.e0, p.export_limit_kw)
    base_costs = energy_cost(base.imp, base.exp, p.import_price, p.export_price, dt)
    sc = self_consumption_for(prep) if solver != "self_consumption" else plan
    sc_cost = float(energy_cost(sc.imp, sc.exp, p.import_price, p.export_price, dt).sum())
    soc_frac = np.clip(plan.soc_kwh / prep.cap, 0.0, 1.0)
    soc_start = np.concatenate([[p.battery.soc_initial], soc_frac[:-1]])
    codes = classify_actions(plan.imp, plan.exp, plan.chg, plan.dis, plan.cur, plan.ev, p.solar_kw, p.load_kw, soc_start, p.battery.reserve)
    df = pd.DataFrame(
        {
            "action": ACTION_NAMES[codes],
            "grid_import_kw": plan.imp,
            "grid_export_kw": plan.exp,
            "battery_charge_kw": plan.chg,
            "battery_discharge_kw": plan.dis,
            "curtail_kw": plan.cur,
            "soc": soc_frac,
            "solar_kw": p.solar_kw,
            "load_kw": p.load_kw,
            "import_price": p.import_price,
            "export_price": p.export_price,
            "marginal_value": plan.marginal,
        },
        index=p.index(),
    )
    if p.ev is not None:
        df["ev_kw"] = plan.ev
    cost = float(costs.sum())
    baseline_cost = float(base_costs.sum())
    res = ScheduleResult(
        status=status,
        solver=solver,
        fallback_reason=fallback_reason,
        objective=plan_objective(prep, plan),
        cost=cost,
        baseline_cost=baseline_cost,
        self_consumption_cost=sc_cost,
        savings_24h=float(base_costs[:n24].sum() - costs[:n24].sum()),
        savings_horizon=baseline_cost - cost,
        solve_ms=solve_ms,
        intervals=df,
        horizon=horizon,
        terminal_value=prep.terminal_value,
    )
    res.extras["wear_cost"] = round(0.5 * p.wear_cost_per_kwh * float(np.sum(plan.chg + plan.dis)) * dt, 6)
    res.extras["final_soc"] = round(float(soc_frac[-1]), 6)
    if p.demand_charge is not None and p.demand_charge.window.any():
        # both peaks are at least the month's so far: only what the plan keeps below the no-battery peak is avoided
        peak, peak_without = demand_peak(p, plan.imp), demand_peak(p, base.imp)
        res.extras["demand_peak_kw"] = round(peak, 6)
        res.extras["demand_peak_without_battery_kw"] = round(peak_without, 6)
        res.extras["demand_cost_avoided"] = round(max(0.0, peak_without - peak) * p.demand_charge.price_per_kw, 6)
    if p.ev is not None:
        delivered = float(np.sum(plan.ev)) * dt
        res.extras["ev_target_kwh"] = round(float(p.ev.energy_kwh), 6)
        res.extras["ev_energy_kwh"] = round(delivered, 6)
        res.extras["ev_shortfall_kwh"] = round(max(0.0, p.ev.energy_kwh - delivered), 6)
        res.extras["ev_target_met"] = bool(p.ev.energy_kwh - delivered <= EV_TARGET_TOL_KWH)
    return res
