"""Expected-value planning over price scenarios: one LP, K battery chains, one shared first interval.

Why: a single price path makes a linear planner either hold energy for a spike (if the path carries it)
or not; it cannot weigh "a spike at 18:00 in one week out of seven" against "spend the energy on this
evening's ordinary peak in the other six". With K scenarios the LP plans each scenario's future on its own
(chain ``c`` sees prices ``import_prices[c]``) and minimises the probability-weighted cost, while the
decision for the current interval (charge, discharge, curtail in period 0) is the same in every chain
(non-anticipativity): that is what the battery is told now, and the replan five minutes later sees the
next realised price. Energy bought now is therefore valued at what it earns across the scenarios, not at
what it would earn in their average.

**When a scenario reveals itself** (``split_at``): sharing only the first interval lets every scenario
foresee its own future from the next interval on, so a scenario with a spike at 18:00 "knows" it can buy just
before and sees no value in holding energy now. Prices are only known when their interval starts, so chain
``c`` may leave chain 0's decisions only from interval ``split_at[c]`` on (e.g. when its spike begins):
until then it shares chain 0's charge, discharge and curtailment. Chain 0 is then the "nothing unusual has
happened yet" trajectory (it may carry weight 0), and the plan holds the energy a spike would need because
it cannot tell beforehand which evening the spike comes. ``split_at`` = 1 everywhere is the two-stage
problem with one shared interval.

Layout (per chain ``c``, period ``k`` of the tiered grid, a line of P periods padded with zero-length ones):
``imp, exp, chg, dis, cur, soc`` energies per period as in :mod:`.model`; rows ``balance`` and ``dynamics``
per period (period 0 starts from the measured energy), then for chains 1..K-1 and every period three rows
``x[c, k] - x[0, k]`` for ``chg``, ``dis`` and ``cur``: fixed at 0 before the chain's split period, free
after it. The matrix is fixed; a replan only changes costs and bounds, so HiGHS restarts from the last
basis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import pandas as pd

from .grid import Aggregator, max_tiered_periods, tiered_bounds
from .heuristics import ramp_floor
from .highs_util import INFEASIBLE_STATUSES, OPTIMAL, new_highs, run_timed
from .model import CURTAIL_TIE_BREAK
from .problem import BatteryParams, OptimizationProblem, ProblemError
from .replanner import REPLAN_OPTIONS, check_replan_options
from .result import ACTION_NAMES, classify_actions
from .solve import terminal_value_from

INF = highspy.kHighsInf
N_FLOW = 5  # imp, exp, chg, dis, cur
IMP, EXP, CHG, DIS, CUR, SOC = range(6)


@dataclass
class ScenarioSet:
    """Price scenarios for one replan: rows (K, n) of import/export prices, their probabilities and the
    interval from which each may differ from chain 0 (see the module docstring)."""

    import_price: np.ndarray
    export_price: np.ndarray
    weights: np.ndarray | None = None  # None: equally likely
    split_at: np.ndarray | None = None  # None: only the current interval is shared


@dataclass
class ScenarioDecision:
    """What to do now, and the scenario chains' stored energy (fraction, period ends) for inspection."""

    status: str  # "optimal" | "infeasible" | "time_limit" | "failed"
    action: str
    battery_charge_kw: float
    battery_discharge_kw: float
    curtail_kw: float
    grid_import_kw: float
    grid_export_kw: float
    expected_cost: float  # probability-weighted objective
    soc: np.ndarray  # (K, periods): stored energy fraction at each period's end, per scenario
    solve_ms: float
    iterations: int


class ScenarioReplanner:
    """Build once for a battery, a horizon length and K scenarios; then ``solve()`` every interval.

    ``problem_kwargs``: the :class:`.Replanner`'s scalar options (``interval_minutes``, ``export_limit_kw``,
    ``import_limit_kw``, ``wear_cost_per_kwh``, ``terminal_value``, ``time_limit_s``), with the same
    defaults; the cost function is "cost" (money).
    """

    def __init__(self, battery: BatteryParams, n_periods: int, n_scenarios: int, **problem_kwargs):
        if n_scenarios < 1:
            raise ProblemError(f"n_scenarios must be >= 1, got {n_scenarios}")
        self.time_limit_s = check_replan_options(problem_kwargs, REPLAN_OPTIONS - {"cost_function"},
                                                 "ScenarioReplanner")
        self.battery = battery
        self.n = int(n_periods)
        self.K = int(n_scenarios)
        # the same option rules and defaults (wear cost...) as solve() and the Replanner
        z = np.zeros(self.n)
        probe = OptimizationProblem(pd.Timestamp("2024-01-01", tz="UTC"), z, z, z, z, battery, **problem_kwargs)
        probe.validate()
        self.interval_minutes = int(probe.interval_minutes)
        self.dt = self.interval_minutes / 60.0
        self.export_limit = float(probe.export_limit_kw)  # type: ignore[arg-type]
        self.import_limit = float(probe.import_limit_kw)  # type: ignore[arg-type]
        self.wear_half = 0.5 * float(probe.wear_cost_per_kwh)
        self.terminal = probe.terminal_value
        self.cap = battery.capacity_kwh
        self.reserve_kwh = battery.reserve * battery.capacity_kwh
        self.P = max_tiered_periods(self.n, self.interval_minutes)
        self._aggs: dict[int, Aggregator] = {}
        self.n_col = self.K * 6 * self.P
        self.n_row = self.K * 2 * self.P + 3 * (self.K - 1) * self.P
        self.h = new_highs(self.time_limit_s, presolve=False)
        self._pass_model()
        self._floor = np.full(self.n, self.reserve_kwh)
        self.cost = np.zeros(self.n_col)
        self.lo = np.zeros(self.n_col)
        self.hi = np.zeros(self.n_col)
        self.rlo = np.zeros(self.n_row)
        self.rhi = np.zeros(self.n_row)
        self._cols = np.arange(self.n_col, dtype=np.int32)
        self._rows = np.arange(self.n_row, dtype=np.int32)
        self.solves = 0

    # ----- structure -----
    def col(self, c: int, g: int) -> int:
        """First column of group ``g`` in chain ``c`` (period k is ``col(c, g) + k``)."""
        return (c * 6 + g) * self.P

    def _na_row(self, c: int, j: int) -> int:
        """First row tying group ``j`` (0 chg, 1 dis, 2 cur) of chain ``c`` >= 1 to chain 0 (period k: + k)."""
        return self.K * 2 * self.P + ((c - 1) * 3 + j) * self.P

    def _pass_model(self) -> None:
        P, b = self.P, self.battery
        k = np.arange(P)
        cols, rows, vals = [], [], []

        def add(col, row, val) -> None:
            col = np.asarray(col)
            cols.append(col)
            rows.append(np.asarray(row))
            vals.append(np.broadcast_to(np.asarray(val, dtype=float), col.shape).copy())

        for c in range(self.K):
            bal, dyn = c * 2 * P, c * 2 * P + P
            add(self.col(c, IMP) + k, bal + k, 1.0)
            add(self.col(c, EXP) + k, bal + k, -1.0)
            add(self.col(c, CHG) + k, bal + k, -1.0)
            add(self.col(c, CHG) + k, dyn + k, -b.charge_efficiency)
            add(self.col(c, DIS) + k, bal + k, 1.0)
            add(self.col(c, DIS) + k, dyn + k, 1.0 / b.discharge_efficiency)
            add(self.col(c, CUR) + k, bal + k, -1.0)
            add(self.col(c, SOC) + k, dyn + k, 1.0)
            add(self.col(c, SOC) + k[:-1], dyn + k[1:], -1.0)
        for c in range(1, self.K):
            for j, g in enumerate((CHG, DIS, CUR)):
                r = self._na_row(c, j) + k
                add(self.col(0, g) + k, r, 1.0)
                add(self.col(c, g) + k, r, -1.0)
        c_, r_, v_ = np.concatenate(cols), np.concatenate(rows), np.concatenate(vals)
        order = np.lexsort((r_, c_))
        c_, r_, v_ = c_[order], r_[order], v_[order]
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n_col, self.n_row
        lp.col_cost_ = np.zeros(self.n_col)
        lp.col_lower_ = np.zeros(self.n_col)
        lp.col_upper_ = np.zeros(self.n_col)
        lp.row_lower_ = np.zeros(self.n_row)
        lp.row_upper_ = np.zeros(self.n_row)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(c_, np.arange(self.n_col + 1)).astype(np.int32)
        lp.a_matrix_.index_ = r_.astype(np.int32)
        lp.a_matrix_.value_ = v_
        self.h.passModel(lp)

    def _agg_for(self, start: pd.Timestamp) -> Aggregator:
        key = (int(start.value // 10**9 // 60) // self.interval_minutes) % (60 // self.interval_minutes)
        agg = self._aggs.get(key)
        if agg is None:
            agg = self._aggs[key] = Aggregator(tiered_bounds(start, self.n, self.interval_minutes), self.dt)
        return agg

    # ----- the replan -----
    def solve(self, start: pd.Timestamp, import_prices: np.ndarray, export_prices: np.ndarray,
              weights: np.ndarray | None, solar_kw: np.ndarray, load_kw: np.ndarray,
              soc_initial: float, split_at: np.ndarray | None = None) -> ScenarioDecision:
        """Plan over the scenarios (rows of the price arrays, ``weights`` summing to 1; None = equal).

        ``split_at[c]``: the first interval at which chain ``c`` may act differently from chain 0 (>= 1; None:
        1 for every chain, only the current interval shared; ``split_at[0]`` is ignored).
        """
        t0 = time.perf_counter()
        ip = np.atleast_2d(np.asarray(import_prices, dtype=float))
        ep = np.atleast_2d(np.asarray(export_prices, dtype=float))
        solar = np.asarray(solar_kw, dtype=float)
        load = np.asarray(load_kw, dtype=float)
        K, n, P, b = self.K, self.n, self.P, self.battery
        if ip.shape != (K, n) or ep.shape != (K, n) or len(solar) != n or len(load) != n:
            raise ProblemError(f"shape mismatch: built for {K} scenarios x {n} intervals, got prices {ip.shape}/"
                               f"{ep.shape}, solar {len(solar)}, load {len(load)}")
        if not (np.isfinite(ip).all() and np.isfinite(ep).all() and np.isfinite(solar).all() and np.isfinite(load).all()):
            raise ProblemError("scenario prices/solar/load contain a non-finite value")
        w = np.full(K, 1.0 / K) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (K,) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
            raise ProblemError(f"weights must be {K} non-negative values summing to 1, got {w}")
        split = np.ones(K, dtype=int) if split_at is None else np.asarray(split_at, dtype=int)
        if split.shape != (K,) or (split[1:] < 1).any():
            raise ProblemError(f"split_at must be {K} interval indices >= 1, got {split_at}")
        if not 0.0 <= soc_initial <= 1.0 + 1e-6:
            raise ProblemError(f"soc_initial must be a fraction in [0, 1], got {soc_initial}")
        e0 = min(1.0, max(0.0, float(soc_initial))) * self.cap
        floor = self._floor if e0 >= self.reserve_kwh else ramp_floor(
            e0, self.reserve_kwh, solar, load, self.dt, b.max_charge_kw, b.charge_efficiency, self.import_limit)
        agg = self._agg_for(start)
        npd = agg.n_periods
        dt = np.zeros(P)
        dt[:npd] = agg.dt
        s_p = np.zeros(P)
        s_p[:npd] = agg.mean(solar)
        l_p = np.zeros(P)
        l_p[:npd] = agg.mean(load)
        fl = agg.last(floor)
        fl_p = np.full(P, float(fl[-1]))
        fl_p[:npd] = fl
        net = (l_p - s_p) * dt
        cost, lo, hi, rlo, rhi = self.cost, self.lo, self.hi, self.rlo, self.rhi
        cost.fill(0.0)
        lo.fill(0.0)
        hi.fill(0.0)
        for c in range(K):
            ipc = np.zeros(P)
            ipc[:npd] = agg.mean(ip[c])
            epc = np.zeros(P)
            epc[:npd] = agg.mean(ep[c])
            tv = terminal_value_from(self.terminal, "cost", ip[c], b.discharge_efficiency)
            sl = slice(self.col(c, IMP), self.col(c, IMP) + P)
            cost[sl] = w[c] * ipc
            cost[self.col(c, EXP):self.col(c, EXP) + P] = -w[c] * epc
            cost[self.col(c, CHG):self.col(c, CHG) + P] = w[c] * self.wear_half
            cost[self.col(c, DIS):self.col(c, DIS) + P] = w[c] * self.wear_half
            cost[self.col(c, CUR):self.col(c, CUR) + P] = w[c] * CURTAIL_TIE_BREAK
            cost[self.col(c, SOC) + P - 1] = -w[c] * tv
            hi[sl] = np.minimum(self.import_limit, l_p + b.max_charge_kw) * dt
            hi[self.col(c, EXP):self.col(c, EXP) + P] = np.minimum(self.export_limit, s_p + b.max_discharge_kw) * dt
            hi[self.col(c, CHG):self.col(c, CHG) + P] = b.max_charge_kw * dt
            hi[self.col(c, DIS):self.col(c, DIS) + P] = b.max_discharge_kw * dt
            hi[self.col(c, CUR):self.col(c, CUR) + P] = s_p * dt
            lo[self.col(c, SOC):self.col(c, SOC) + P] = fl_p
            hi[self.col(c, SOC):self.col(c, SOC) + P] = self.cap
            bal, dyn = c * 2 * P, c * 2 * P + P
            rlo[bal:bal + P] = rhi[bal:bal + P] = net
            rlo[dyn:dyn + P] = rhi[dyn:dyn + P] = 0.0
            rlo[dyn] = rhi[dyn] = e0  # period 0 starts from the measured energy
        # Chain c shares chain 0's decisions in the periods before the one holding interval split[c].
        split_period = agg.period_of[np.minimum(split, n - 1)]
        split_period[split >= n] = npd
        rows = np.arange(P)
        for c in range(1, K):
            tied = rows < split_period[c]
            for j in range(3):
                r = self._na_row(c, j)
                rlo[r:r + P] = np.where(tied, 0.0, -INF)
                rhi[r:r + P] = np.where(tied, 0.0, INF)
        h = self.h
        h.changeColsCost(self.n_col, self._cols, cost)
        h.changeColsBounds(self.n_col, self._cols, lo, hi)
        h.changeRowsBounds(self.n_row, self._rows, rlo, rhi)
        run_timed(h, self.time_limit_s)
        ms = h.getModelStatus()
        if ms != OPTIMAL and ms not in INFEASIBLE_STATUSES:
            h.clearSolver()  # a stale basis: retry cold once
            run_timed(h, self.time_limit_s)
            ms = h.getModelStatus()
        self.solves += 1
        iterations = int(h.getInfo().simplex_iteration_count)
        if ms != OPTIMAL:
            h.clearSolver()
            status = "infeasible" if ms in INFEASIBLE_STATUSES else "failed"
            return ScenarioDecision(status, "SELF_CONSUMPTION", 0.0, 0.0, 0.0, max(load[0] - solar[0], 0.0),
                                    max(solar[0] - load[0], 0.0), float("nan"), np.full((K, npd), np.nan),
                                    (time.perf_counter() - t0) * 1000.0, iterations)
        x = np.asarray(h.getSolution().col_value)
        d0 = float(dt[0])
        imp0, exp0, chg0, dis0, cur0 = (x[self.col(0, g)] / d0 for g in (IMP, EXP, CHG, DIS, CUR))
        # A simultaneous charge and discharge (only ever a tie at a negative price) nets to one direction.
        netb = chg0 - dis0
        chg0, dis0 = max(netb, 0.0), max(-netb, 0.0)
        code = classify_actions(np.array([imp0]), np.array([exp0]), np.array([chg0]), np.array([dis0]),
                                np.array([cur0]), np.zeros(1), solar[:1], load[:1], np.array([e0 / self.cap]),
                                b.reserve)[0]
        soc = x[[self.col(c, SOC) + np.arange(npd) for c in range(K)]] / self.cap
        return ScenarioDecision("optimal", str(ACTION_NAMES[code]), chg0, dis0, cur0, imp0, exp0,
                                float(h.getInfo().objective_function_value), soc,
                                (time.perf_counter() - t0) * 1000.0, iterations)
