"""Warm re-solves for live replanning and the backtest: one HiGHS model per (battery, length, grid).

Full horizon: the ring layout of ``model.py`` (slot = absolute interval index mod N+1), so a replan five
minutes later finds every period where the last solve left it and HiGHS restarts from its basis.
Tiered horizon: a fixed-size line of the most periods any start phase needs; unused periods have zero
length. Either way only costs, bounds and the initial energy change between replans.

The hot path avoids pandas: a replan returns a ``ReplanResult`` of numpy arrays; ``to_schedule()`` builds
the full ``ScheduleResult`` (DataFrame, baseline and self-consumption costs) only when asked.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .grid import Aggregator, full_bounds, max_tiered_periods, tiered_bounds
from .heuristics import Plan, greedy_plan, ramp_floor, self_consumption_plan
from .highs_util import LAST_RESORT_S
from .model import BatteryLp, LpOutcome, PeriodInputs
from .problem import (
    HORIZONS,
    BatteryParams,
    DemandCharge,
    OptimizationProblem,
    ProblemError,
    check_demand_charge,
)
from .repair import repair_burn
from .result import ACTION_NAMES, ScheduleResult, classify_actions
from .solve import (
    SELF_CONSUMPTION_PRICE_WEIGHT,
    build_result,
    demand_groups,
    expand_outcome,
    prepare,
    terminal_value_from,
)


@dataclass
class ReplanResult:
    """One replan on the interval grid (numpy arrays, length N; powers kW, ``soc`` fraction at interval end).

    ``action`` is the first interval's action, the one to execute now; ``actions`` holds all of them.
    """

    status: str  # "optimal" | "near_optimal" | "fallback_greedy" | "fallback_self_consumption"
    solver: str  # "lp" | "greedy" | "self_consumption"
    fallback_reason: str | None
    objective: float
    solve_ms: float
    iterations: int
    warm: bool
    actions: np.ndarray  # str names
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    curtail_kw: np.ndarray
    soc: np.ndarray
    marginal_value: np.ndarray
    repaired_intervals: int = 0
    demand_peak_kw: float | None = None  # the LP's peak (kW, >= the month's so far) when a demand charge was planned
    _inputs: tuple | None = field(default=None, repr=False)
    _plan: Plan | None = field(default=None, repr=False)
    _horizon: str = "tiered"

    @property
    def action(self) -> str:
        return str(self.actions[0])

    def first(self) -> dict[str, float | str]:
        """The interval to execute now."""
        return {
            "action": self.action,
            "grid_import_kw": float(self.grid_import_kw[0]),
            "grid_export_kw": float(self.grid_export_kw[0]),
            "battery_charge_kw": float(self.battery_charge_kw[0]),
            "battery_discharge_kw": float(self.battery_discharge_kw[0]),
            "curtail_kw": float(self.curtail_kw[0]),
            "soc": float(self.soc[0]),
        }

    def to_schedule(self) -> ScheduleResult:
        """The full result (DataFrame, costs vs baseline and self-consumption); slower, for storage/UI."""
        assert self._inputs is not None and self._plan is not None
        rp, *args = self._inputs
        prep = prepare(rp._problem(*args))
        res = build_result(prep, self._plan, self.status, self.solver, self.fallback_reason, self.solve_ms, self._horizon)
        res.repaired_intervals = self.repaired_intervals
        return res


SOC_TOL = 1e-6
REPLAN_OPTIONS = frozenset({"interval_minutes", "export_limit_kw", "import_limit_kw", "wear_cost_per_kwh",
                            "terminal_value", "cost_function", "time_limit_s"})


def check_replan_options(problem_kwargs: dict, allowed: frozenset[str], who: str) -> float:
    """Refuse options the kept model cannot take (EV/demand extras change its rows); pop and return the
    per-solve last-resort time limit (default ``LAST_RESORT_S``; work limits bound every normal solve)."""
    unknown = set(problem_kwargs) - allowed
    if unknown:
        raise ProblemError(f"{who} does not take {sorted(unknown)} (use solve() for EV/demand extras)")
    return float(problem_kwargs.pop("time_limit_s", LAST_RESORT_S))


class Replanner:
    """Build once for a battery, a horizon length and a grid; then ``solve()`` every interval.

    ``problem_kwargs`` are the scalar options of ``OptimizationProblem``: ``interval_minutes``,
    ``export_limit_kw``, ``import_limit_kw``, ``wear_cost_per_kwh``, ``terminal_value``, ``cost_function``,
    plus ``time_limit_s``. EV extras change the model's rows: use ``solve()`` for those. ``demand_rows=True``
    adds a demand row per slot and the peak, so ``solve(demand_charge=...)`` plans against a demand tariff and
    stays warm: a replan rewrites only the coefficients of the blocks that moved (``BatteryLp.set_demand``).
    """

    def __init__(self, battery: BatteryParams, n_periods: int, horizon: str = "tiered", *, demand_rows: bool = False,
                 **problem_kwargs):
        if horizon not in HORIZONS:
            raise ProblemError(f"horizon must be one of {', '.join(HORIZONS)}, got {horizon!r}")
        self.time_limit_s = check_replan_options(problem_kwargs, REPLAN_OPTIONS, "Replanner")
        self.battery = battery
        self.n = int(n_periods)
        self.horizon = horizon
        self.interval_minutes = int(problem_kwargs.get("interval_minutes", 5))
        self.kw = problem_kwargs
        # validate the options once with a dummy problem (same rules as solve())
        z = np.zeros(self.n)
        probe = OptimizationProblem(pd.Timestamp("2024-01-01", tz="UTC"), z, z, z, z, battery, **problem_kwargs)
        probe.validate()
        self.export_limit = float(probe.export_limit_kw)  # type: ignore[arg-type]
        self.import_limit = float(probe.import_limit_kw)  # type: ignore[arg-type]
        self.wear = float(probe.wear_cost_per_kwh)
        self.terminal = probe.terminal_value
        self.cost_function = probe.cost_function
        self.dt = self.interval_minutes / 60.0
        b = battery
        self.cap = b.capacity_kwh
        self.reserve_kwh = b.reserve * b.capacity_kwh
        if horizon == "full":
            self.S = self.n + 1
            self._full_agg = Aggregator(full_bounds(self.n), self.dt)
        else:
            self.S = max_tiered_periods(self.n, self.interval_minutes) + 1
            self._aggs: dict[int, Aggregator] = {}
        self.lp = BatteryLp(
            self.S, self.cap, b.max_charge_kw, b.max_discharge_kw, b.charge_efficiency, b.discharge_efficiency,
            import_limit_kw=self.import_limit, export_limit_kw=self.export_limit, wear_cost_per_kwh=self.wear,
            demand_rows=demand_rows, time_limit_s=self.time_limit_s, presolve=False,
        )  # fmt: skip
        self.demand_rows = bool(demand_rows)
        self._arange = np.arange(self.n)
        self._reserve_floor = np.full(self.n, self.reserve_kwh)
        self.replans = 0
        self.cold_retries = 0

    # ----- helpers -----
    def _agg_for(self, start: pd.Timestamp) -> Aggregator:
        if self.horizon == "full":
            return self._full_agg
        key = (int(start.value // 10**9 // 60) // self.interval_minutes) % (60 // self.interval_minutes)
        agg = self._aggs.get(key)
        if agg is None:
            agg = self._aggs[key] = Aggregator(tiered_bounds(start, self.n, self.interval_minutes), self.dt)
        return agg

    def _weights(self, ip: np.ndarray, ep: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        if self.cost_function == "self_consumption":
            iw, ew = 1.0 + SELF_CONSUMPTION_PRICE_WEIGHT * ip, SELF_CONSUMPTION_PRICE_WEIGHT * ep
        else:
            iw, ew = ip, ep
        v = terminal_value_from(self.terminal, self.cost_function, iw, self.battery.discharge_efficiency)
        return iw, ew, v

    def _problem(self, start, ip, ep, solar, load, soc, demand_charge=None) -> OptimizationProblem:
        b = self.battery
        bat = BatteryParams(b.capacity_kwh, soc, b.max_charge_kw, b.max_discharge_kw, b.charge_efficiency, b.discharge_efficiency, b.reserve)
        return OptimizationProblem(start, ip, ep, solar, load, bat, demand_charge=demand_charge, **self.kw)

    def _set_demand(self, dc: DemandCharge | None, start: pd.Timestamp, bounds: np.ndarray, slots: np.ndarray) -> None:
        if dc is None:
            if self.demand_rows:
                self.lp.set_demand([], 0.0, 0.0)
            return
        if not self.demand_rows:
            raise ProblemError("this Replanner has no demand rows: build it with demand_rows=True for a demand charge")
        check_demand_charge(dc, self.n, self.interval_minutes)
        blocks = demand_groups(dc, start, self.interval_minutes, bounds) if dc.window.any() else []
        self.lp.set_demand([(slots[b.periods], b.hours) for b in blocks], dc.price_per_kw, dc.existing_peak_kw)

    # ----- the replan -----
    def solve(
        self,
        start: pd.Timestamp,
        import_price: np.ndarray,
        export_price: np.ndarray,
        solar_kw: np.ndarray,
        load_kw: np.ndarray,
        soc_initial: float,
        soc_final: float | None = None,
        demand_charge: DemandCharge | None = None,
    ) -> ReplanResult:
        """Plan from ``start`` with these forecasts and the measured SOC; ``soc_final`` pins the horizon end;
        ``demand_charge`` prices the window's peak import above the month's peak so far."""
        t0 = time.perf_counter()
        n = self.n
        ip = np.asarray(import_price, dtype=float)
        ep = np.asarray(export_price, dtype=float)
        solar = np.asarray(solar_kw, dtype=float)
        load = np.asarray(load_kw, dtype=float)
        if not (len(ip) == len(ep) == len(solar) == len(load) == n):
            raise ProblemError(f"length mismatch: Replanner built for {n} intervals, got {len(ip)}/{len(ep)}/{len(solar)}/{len(load)}")
        if not (np.isfinite(ip).all() and np.isfinite(ep).all() and np.isfinite(solar).all() and np.isfinite(load).all()):
            raise ProblemError("prices/solar/load contain a non-finite value")
        if not (-SOC_TOL <= soc_initial <= 1.0 + SOC_TOL) or math.isnan(soc_initial):
            raise ProblemError(f"soc_initial must be a fraction in [0, 1], got {soc_initial}")
        soc_initial = min(1.0, max(0.0, float(soc_initial)))  # a previous plan's 1.0000000002 is 1
        b = self.battery
        e0 = soc_initial * self.cap
        if e0 >= self.reserve_kwh:
            floor = self._reserve_floor
        else:
            floor = ramp_floor(e0, self.reserve_kwh, solar, load, self.dt, b.max_charge_kw, b.charge_efficiency, self.import_limit)
        iw, ew, tv = self._weights(ip, ep)
        agg = self._agg_for(start)
        npd = agg.n_periods
        if self.horizon == "full":
            tau0 = int(start.value // 10**9 // 60) // self.interval_minutes
            prev = (tau0 - 1) % self.S
            slots = (tau0 + self._arange) % self.S
            inp = PeriodInputs(self._full_agg.dt, iw, -ew, solar, load, floor)
        else:
            pad = self.S - 1 - npd
            prev = 0
            slots = np.arange(1, self.S)

            def padded(a: np.ndarray, fill: float = 0.0) -> np.ndarray:
                return np.concatenate([a, np.full(pad, fill)]) if pad else a

            fl = agg.last(floor)
            inp = PeriodInputs(
                padded(agg.dt), padded(agg.mean(iw)), padded(-agg.mean(ew)), padded(agg.mean(solar)),
                padded(agg.mean(load)), padded(fl, float(fl[-1])),
            )  # fmt: skip
        if soc_final is not None:
            if not 0.0 <= soc_final <= 1.0:
                raise ProblemError(f"soc_final must be a fraction in [0, 1], got {soc_final}")
            inp.final_kwh = soc_final * self.cap
        self._set_demand(demand_charge, start, agg.bounds, slots)
        out = self.lp.solve(inp, slots, prev, e0, tv)
        if out.status == "optimal":
            out = repair_burn(self.lp, inp, slots, out, self.time_limit_s)
        self.replans += 1
        self.cold_retries += int(out.cold_retry)
        fallback_reason: str | None = None
        if out.status in ("optimal", "near_optimal"):
            if npd < len(slots):
                _trim(out, npd)
            plan = expand_outcome(solar, load, e0, agg, out, self.export_limit)
            status, solver = out.status, "lp"
            objective = out.objective
            if out.status == "near_optimal":
                fallback_reason = out.detail
        elif out.status == "infeasible":
            plan = self_consumption_plan(solar, load, self.dt, self.cap, e0, self.reserve_kwh, b.max_charge_kw, b.max_discharge_kw, b.charge_efficiency, b.discharge_efficiency, self.export_limit)
            status, solver = "fallback_self_consumption", "self_consumption"
            fallback_reason = f"LP infeasible ({out.detail}): following the house"
            objective = float("nan")
        else:
            plan = greedy_plan(
                ip, ep, solar, load, self.dt, self.cap, e0, floor, b.max_charge_kw, b.max_discharge_kw,
                b.charge_efficiency, b.discharge_efficiency, self.import_limit, self.export_limit, self.wear, tv,
                import_weight=iw, export_weight=ew,
            )  # fmt: skip
            status, solver = "fallback_greedy", "greedy"
            fallback_reason = f"LP {out.status.replace('_', ' ')} ({out.detail})"
            objective = float("nan")
        soc = np.clip(plan.soc_kwh / self.cap, 0.0, 1.0)
        soc_start = np.empty(n)
        soc_start[0] = soc_initial
        soc_start[1:] = soc[:-1]
        codes = classify_actions(plan.imp, plan.exp, plan.chg, plan.dis, plan.cur, plan.ev, solar, load, soc_start, b.reserve)
        res = ReplanResult(
            status=status, solver=solver, fallback_reason=fallback_reason, objective=objective,
            solve_ms=(time.perf_counter() - t0) * 1000.0, iterations=out.iterations, warm=out.warm,
            actions=ACTION_NAMES[codes], grid_import_kw=plan.imp, grid_export_kw=plan.exp,
            battery_charge_kw=plan.chg, battery_discharge_kw=plan.dis, curtail_kw=plan.cur, soc=soc,
            marginal_value=plan.marginal, repaired_intervals=out.repaired_intervals,
        )  # fmt: skip
        if solver == "lp" and len(self.lp._dem_used) and out.col is not None:
            res.demand_peak_kw = float(out.col[self.lp.col_peak])
        res._plan = plan
        res._horizon = self.horizon
        res._inputs = (self, start, ip, ep, solar, load, soc_initial, demand_charge)
        return res


def _trim(out: LpOutcome, k: int) -> None:
    for name in ("imp", "exp", "chg", "dis", "cur", "soc", "ev", "marginal"):
        v = getattr(out, name)
        if v is not None:
            setattr(out, name, v[:k])
