"""The battery LP on HiGHS with a fixed sparse matrix, so a replan changes only costs and bounds.

Variables are *energies per period* (kWh), not powers: then no matrix coefficient depends on the period
length, and one matrix serves the full 5-min grid, a tiered grid, and every replan of either. Per slot j:

    imp_j, exp_j, chg_j, dis_j, cur_j >= 0      grid import/export, AC battery charge/discharge, solar curtailed
    soc_j in [floor_j, capacity]                stored energy at the END of the slot's period
    (ev_j >= 0)                                 EV energy, when an EV is planned
    (no_b2e_j:  dis + P_dis/P_ev * ev <= (max(load - solar, 0) + P_dis) * dt)  while the car may charge and the
                battery must not feed it: the linear hull of "car charging => battery covers only the house";
                exact when the car charges at full power or not at all, and free of export/import exploits
    (demand_b:  sum(imp_j for j in block b) <= hours_b * peak)  with a demand charge; peak >= the month's peak
                so far, priced per kW; a block is the periods of one measurement interval in the window
    balance_j:  imp - exp - chg + dis - cur - ev = (load - solar) * dt
    dynamics_j: soc_j - soc_{j-1 mod S} - eta_c * chg_j + dis_j / eta_d = 0

Slots form a ring of S = N + 1: period k of a plan lives in slot ``(offset + 1 + k) mod S`` and the slot
``offset`` before "now" holds the measured energy (its flows fixed at 0, its two rows made free, which also
cuts the ring). A replan that moves the clock by one interval advances ``offset`` by one: every other
period keeps its slot, so HiGHS' basis stays a near-optimal start (SPEC §5). ``offset = 0`` is a plain line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from .highs_util import (
    INFEASIBLE_STATUSES,
    LAST_RESORT_S,
    OPTIMAL,
    TIME_LIMIT_STATUSES,
    WORK_LIMIT_STATUSES,
    new_highs,
    run_timed,
)

INF = highspy.kHighsInf
# Simplex iterations one solve may take, per model row. Cold solves of the broadest corpus measured take at
# most 0.59 per row (154 cold solves from the crash basis), warm re-solves ~0.01; see
# benchmarks/bench_optimizer.py ``limits``. A solve that reaches it is retried cold, then falls back.
LP_ITERATIONS_PER_ROW = 25
CURTAIL_TIE_BREAK = 1e-6  # $/kWh: curtail only when it pays (export price < 0), never on a tie
EV_SHORTFALL_PENALTY = 50.0  # $/kWh undelivered: above any realistic import price, so it is soft but binding
N_GROUPS = 6
IMP, EXP, CHG, DIS, CUR, SOC = range(N_GROUPS)


@dataclass
class PeriodInputs:
    """Per-period LP data (length N). Costs are per kWh in the objective's units."""

    dt: np.ndarray  # hours (0 = padding period: every flow fixed at 0)
    import_cost: np.ndarray  # objective coefficient per kWh imported
    export_cost: np.ndarray  # objective coefficient per kWh exported (negative = revenue)
    solar_kw: np.ndarray
    load_kw: np.ndarray
    floor_kwh: np.ndarray  # lower bound on stored energy at period end
    ev_max_kw: np.ndarray | None = None
    final_kwh: float | None = None  # fix the stored energy at the horizon end (None: free, terminal value)


@dataclass
class DemandBlock:
    """One demand-charge row: sum of import over ``periods`` <= ``hours`` * peak (``BatteryLp`` reads
    ``periods`` as slots)."""

    periods: np.ndarray
    hours: float


@dataclass
class LpOutcome:
    status: str  # "optimal" | "near_optimal" | "infeasible" | "time_limit" | "work_limit" | "failed"
    detail: str
    imp: np.ndarray | None = None  # kWh per period
    exp: np.ndarray | None = None
    chg: np.ndarray | None = None
    dis: np.ndarray | None = None
    cur: np.ndarray | None = None
    soc: np.ndarray | None = None  # kWh at period end
    ev: np.ndarray | None = None
    marginal: np.ndarray | None = None  # $/kWh of stored energy (minus the dynamics row's dual)
    objective: float = float("nan")
    iterations: int = 0
    warm: bool = False
    cold_retry: bool = False
    repaired_intervals: int = 0
    solve_s: float = 0.0
    col: np.ndarray | None = None  # the raw column values (for the burn repair)


class BatteryLp:
    """One HiGHS model with S slots, reused across solves (the matrix never changes after construction)."""

    def __init__(
        self,
        n_slots: int,
        capacity_kwh: float,
        max_charge_kw: float,
        max_discharge_kw: float,
        charge_efficiency: float,
        discharge_efficiency: float,
        import_limit_kw: float = INF,
        export_limit_kw: float = INF,
        wear_cost_per_kwh: float = 0.0,
        has_ev: bool = False,
        ev_energy_kwh: float = 0.0,
        battery_to_ev: bool = True,
        ev_max_kw: float = 0.0,
        demand_blocks: list[DemandBlock] | None = None,
        demand_price_per_kw: float = 0.0,
        existing_peak_kw: float = 0.0,
        demand_rows: bool = False,
        time_limit_s: float = LAST_RESORT_S,
        presolve: bool = False,
    ):
        self.S = S = int(n_slots)
        self.cap = float(capacity_kwh)
        self.max_ch, self.max_dis = float(max_charge_kw), float(max_discharge_kw)
        self.eta_c, self.eta_d = float(charge_efficiency), float(discharge_efficiency)
        self.imp_lim = INF if not np.isfinite(import_limit_kw) else float(import_limit_kw)
        self.exp_lim = INF if not np.isfinite(export_limit_kw) else float(export_limit_kw)
        self.wear_half = 0.5 * float(wear_cost_per_kwh)
        self.has_ev = has_ev
        self.ev_energy = float(ev_energy_kwh)
        self.blocks = demand_blocks or []
        self.demand_price = float(demand_price_per_kw)
        self.existing_peak = float(existing_peak_kw)
        # ``demand_rows``: one demand row per slot (a block's row is its first slot's), filled per solve by
        # ``set_demand``; otherwise one row per fixed ``demand_blocks`` entry
        self.demand_rows = bool(demand_rows) and not self.blocks
        self.n_dem = S if self.demand_rows else len(self.blocks)
        self._dem_coef: dict[tuple[int, int], float] = {}
        self._dem_used = np.zeros(0, dtype=np.int64)
        self.n_groups = N_GROUPS + (1 if has_ev else 0)
        self.col_short = self.n_groups * S if has_ev else -1
        has_peak = bool(self.blocks) or self.demand_rows
        self.col_peak = self.n_groups * S + (1 if has_ev else 0) if has_peak else -1
        self.n_col = self.n_groups * S + (1 if has_ev else 0) + (1 if has_peak else 0)
        self.row_ev = 2 * S if has_ev else -1
        self.row_dem0 = 2 * S + (1 if has_ev else 0)
        # battery energy may only serve the house or be exported, never the car (when EV and not allowed)
        self.row_b2e0 = self.row_dem0 + self.n_dem if has_ev and not battery_to_ev and ev_max_kw > 0 else -1
        self.b2e_ratio = self.max_dis / ev_max_kw if ev_max_kw > 0 else 0.0
        self.n_row = self.row_dem0 + self.n_dem + (S if self.row_b2e0 >= 0 else 0)
        self.time_limit_s = time_limit_s
        self.h = new_highs(time_limit_s, presolve)
        self._pass_model()
        self.iteration_limit = LP_ITERATIONS_PER_ROW * self.n_row
        self.h.setOptionValue("simplex_iteration_limit", self.iteration_limit)
        self._solved_once = False
        self._crashed = False
        self.bb_nodes = 0  # branch-and-bound nodes of the last burn repair
        self._all_cols = np.arange(self.n_col, dtype=np.int32)
        self._all_rows = np.arange(self.n_row, dtype=np.int32)
        # reusable work arrays
        self.cost = np.zeros(self.n_col)
        self.lo = np.zeros(self.n_col)
        self.hi = np.zeros(self.n_col)
        self.rlo = np.zeros(self.n_row)
        self.rhi = np.zeros(self.n_row)

    # ----- structure -----
    def _matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        S = self.S
        j = np.arange(S)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []

        def add(col: np.ndarray, row: np.ndarray, val: float | np.ndarray) -> None:
            cols.append(np.asarray(col))
            rows.append(np.asarray(row))
            vals.append(np.broadcast_to(np.asarray(val, dtype=float), np.shape(col)).copy())

        add(IMP * S + j, j, 1.0)
        add(EXP * S + j, j, -1.0)
        add(CHG * S + j, j, -1.0)
        add(CHG * S + j, S + j, -self.eta_c)
        add(DIS * S + j, j, 1.0)
        add(DIS * S + j, S + j, 1.0 / self.eta_d)
        add(CUR * S + j, j, -1.0)
        add(SOC * S + j, S + j, 1.0)
        if S > 1:
            add(SOC * S + j, S + (j + 1) % S, -1.0)
        if self.has_ev:
            add(N_GROUPS * S + j, j, -1.0)
            add(N_GROUPS * S + j, np.full(S, self.row_ev), 1.0)
            add(np.array([self.col_short]), np.array([self.row_ev]), 1.0)
        for b, blk in enumerate(self.blocks):
            add(IMP * S + blk.periods, np.full(len(blk.periods), self.row_dem0 + b), 1.0)
            add(np.array([self.col_peak]), np.array([self.row_dem0 + b]), -blk.hours)
        if self.row_b2e0 >= 0:
            add(DIS * S + j, self.row_b2e0 + j, 1.0)
            add(N_GROUPS * S + j, self.row_b2e0 + j, self.b2e_ratio)
        c, r, v = np.concatenate(cols), np.concatenate(rows), np.concatenate(vals)
        order = np.lexsort((r, c))
        c, r, v = c[order], r[order], v[order]
        start = np.searchsorted(c, np.arange(self.n_col + 1)).astype(np.int32)
        return start, r.astype(np.int32), v

    def _pass_model(self) -> None:
        start, index, value = self._matrix()
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_col
        lp.num_row_ = self.n_row
        lp.col_cost_ = np.zeros(self.n_col)
        lp.col_lower_ = np.zeros(self.n_col)
        lp.col_upper_ = np.zeros(self.n_col)
        lp.row_lower_ = np.full(self.n_row, -INF)
        lp.row_upper_ = np.full(self.n_row, INF)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = value
        self.h.passModel(lp)

    # ----- data -----
    def fill(self, inp: PeriodInputs, slots: np.ndarray, prev: int, e0_kwh: float, terminal_value: float) -> None:
        """Write costs and bounds for a plan whose period k lives in ``slots[k]``; ``prev`` holds ``e0_kwh``."""
        S = self.S
        cost, lo, hi, rlo, rhi = self.cost, self.lo, self.hi, self.rlo, self.rhi
        cost.fill(0.0)
        lo.fill(0.0)
        hi.fill(0.0)
        dt = inp.dt
        net = (inp.load_kw - inp.solar_kw) * dt
        cost[IMP * S + slots] = inp.import_cost
        cost[EXP * S + slots] = inp.export_cost
        cost[CHG * S + slots] = self.wear_half
        cost[DIS * S + slots] = self.wear_half
        cost[CUR * S + slots] = CURTAIL_TIE_BREAK
        last = slots[-1]
        cost[SOC * S + last] = -terminal_value
        # physical caps even without a site limit: import <= load + charge + EV, export <= solar + discharge
        # (true whenever the plan does not import and export at once), so the LP is never unbounded
        ev_cap = inp.ev_max_kw if (self.has_ev and inp.ev_max_kw is not None) else 0.0
        hi[IMP * S + slots] = np.minimum(self.imp_lim, inp.load_kw + self.max_ch + ev_cap) * dt
        hi[EXP * S + slots] = np.minimum(self.exp_lim, inp.solar_kw + self.max_dis) * dt
        hi[CHG * S + slots] = self.max_ch * dt
        hi[DIS * S + slots] = self.max_dis * dt
        hi[CUR * S + slots] = inp.solar_kw * dt
        lo[SOC * S + slots] = inp.floor_kwh
        hi[SOC * S : (SOC + 1) * S] = self.cap
        lo[SOC * S + prev] = hi[SOC * S + prev] = e0_kwh
        if inp.final_kwh is not None:
            lo[SOC * S + last] = hi[SOC * S + last] = inp.final_kwh
        rlo[:S] = rhi[:S] = 0.0
        rlo[slots] = net
        rhi[slots] = net
        rlo[S : 2 * S] = rhi[S : 2 * S] = 0.0
        rlo[prev] = rlo[S + prev] = -INF
        rhi[prev] = rhi[S + prev] = INF
        if self.has_ev:
            assert inp.ev_max_kw is not None
            hi[N_GROUPS * S + slots] = inp.ev_max_kw * dt
            hi[self.col_short] = INF
            cost[self.col_short] = EV_SHORTFALL_PENALTY
            rlo[self.row_ev] = self.ev_energy
            rhi[self.row_ev] = INF
        if self.row_b2e0 >= 0:
            b2e = slice(self.row_b2e0, self.row_b2e0 + S)
            rlo[b2e] = -INF
            rhi[b2e] = INF  # padding and the "now" slot: free
            assert inp.ev_max_kw is not None
            room = (np.maximum(inp.load_kw - inp.solar_kw, 0.0) + self.max_dis) * dt
            rhi[self.row_b2e0 + slots] = np.where(inp.ev_max_kw > 0, room, INF)  # only while the car may charge
        if self.col_peak >= 0:
            dem = slice(self.row_dem0, self.row_dem0 + self.n_dem)
            rlo[dem] = -INF
            if self.demand_rows:
                rhi[dem] = INF  # rows of no block this solve: free (their stale coefficients then bind nothing)
                rhi[self.row_dem0 + self._dem_used] = 0.0
            else:
                rhi[dem] = 0.0
            if len(self._dem_used) or not self.demand_rows:
                lo[self.col_peak] = self.existing_peak
                hi[self.col_peak] = INF
                cost[self.col_peak] = self.demand_price
        h = self.h
        h.changeColsCost(self.n_col, self._all_cols, cost)
        h.changeColsBounds(self.n_col, self._all_cols, lo, hi)
        h.changeRowsBounds(self.n_row, self._all_rows, rlo, rhi)

    def set_demand(self, blocks: list[tuple[np.ndarray, float]], price_per_kw: float, existing_peak_kw: float) -> None:
        """The demand rows of the next solve (a model built with ``demand_rows``): each block is (its periods'
        slots, its hours), ``sum(imp) <= hours * peak``; the peak starts at ``existing_peak_kw``.

        Only the coefficients that differ from the matrix's are changed, so a replan whose window moved by one
        interval touches a few entries and HiGHS restarts from its basis; an empty list frees every row.
        """
        if not self.demand_rows:
            raise ValueError("this model has no demand rows (build it with demand_rows=True)")
        self.demand_price = float(price_per_kw)
        self.existing_peak = float(existing_peak_kw)
        if not blocks:
            self._dem_used = np.zeros(0, dtype=np.int64)
            return
        S = self.S
        new: dict[tuple[int, int], float] = {}
        used = []
        for slots, hours in blocks:
            row = self.row_dem0 + int(slots[0])
            used.append(int(slots[0]))
            for s in slots:
                new[(row, IMP * S + int(s))] = 1.0
            new[(row, self.col_peak)] = -float(hours)
        h = self.h
        for key in self._dem_coef.keys() - new.keys():
            h.changeCoeff(key[0], key[1], 0.0)
        for key, v in new.items():
            if self._dem_coef.get(key) != v:
                h.changeCoeff(key[0], key[1], v)
        self._dem_coef = new
        self._dem_used = np.asarray(used, dtype=np.int64)

    def crash_basis(self, slots: np.ndarray, prev: int) -> None:
        """Start a cold solve from the "battery idle" basis instead of the slack basis.

        Per slot the grid flow that carries the house (import if it needs power, else export) and the stored
        energy are basic; everything else sits at its lower bound. The matrix is triangular in that basis,
        and for a battery at or above its floor it is primal feasible: measured 3-4x fewer simplex iterations
        than HiGHS' own start on real 576-step days.
        """
        S = self.S
        BS = highspy.HighsBasisStatus
        col = np.full(self.n_col, BS.kLower, dtype=object)
        row = np.full(self.n_row, BS.kLower, dtype=object)
        house = self.rlo[slots]  # (load - solar) * dt
        col[IMP * S + slots[house >= 0]] = BS.kBasic
        col[EXP * S + slots[house < 0]] = BS.kBasic
        col[SOC * S + slots] = BS.kBasic
        row[prev] = row[S + prev] = BS.kBasic  # the "now" slot's free rows
        if self.has_ev:
            col[self.col_short] = BS.kBasic  # EV row nonbasic: the shortfall carries the requirement
        if self.n_dem or self.row_b2e0 >= 0:
            row[self.row_dem0 :] = BS.kBasic
        basis = highspy.HighsBasis()
        basis.col_status = col.tolist()
        basis.row_status = row.tolist()
        basis.valid = True
        self.h.setBasis(basis)
        self._crashed = True

    def forget_basis(self) -> None:
        """The next solve starts cold (from the idle crash basis)."""
        self._solved_once = False
        self.h.clearSolver()

    # ----- solve -----
    def run(self) -> tuple[str, str, bool, bool]:
        """Solve; a warm start that does not end optimal (``Unknown``, a work or time limit) is retried cold once.

        Returns (status, detail, warm, retried)."""
        h = self.h
        warm = self._solved_once
        started = warm or self._crashed  # from a basis we gave (previous optimum or the idle crash)
        self._crashed = False
        run_timed(h, self.time_limit_s)
        ms = h.getModelStatus()
        retried = False
        if started and ms != OPTIMAL and ms not in INFEASIBLE_STATUSES:
            h.clearSolver()
            run_timed(h, self.time_limit_s)
            ms = h.getModelStatus()
            retried = True
        elif started and ms in INFEASIBLE_STATUSES:
            # confirm infeasibility from scratch: a stale basis must never turn a plan into a fallback
            h.clearSolver()
            run_timed(h, self.time_limit_s)
            ms = h.getModelStatus()
            retried = True
        self._solved_once = ms == OPTIMAL
        if ms == OPTIMAL:
            return "optimal", "", warm, retried
        name = h.modelStatusToString(ms)
        if not self._solved_once:
            h.clearSolver()
        if ms in INFEASIBLE_STATUSES:
            return "infeasible", name, warm, retried
        if ms in WORK_LIMIT_STATUSES:
            return "work_limit", f"{name} ({self.iteration_limit} simplex iterations)", warm, retried
        if ms in TIME_LIMIT_STATUSES:
            return "time_limit", name, warm, retried
        return "failed", name, warm, retried

    def extract(self, slots: np.ndarray, col: np.ndarray, row_dual: np.ndarray | None) -> dict[str, np.ndarray]:
        S = self.S
        g = col[: N_GROUPS * S].reshape(N_GROUPS, S)[:, slots]
        out = {"imp": g[IMP], "exp": g[EXP], "chg": g[CHG], "dis": g[DIS], "cur": g[CUR], "soc": g[SOC]}
        out["ev"] = col[N_GROUPS * S + slots] if self.has_ev else np.zeros(len(slots))
        if row_dual is not None:
            out["marginal"] = -row_dual[S + slots]
        return out

    def solve(self, inp: PeriodInputs, slots: np.ndarray, prev: int, e0_kwh: float, terminal_value: float) -> LpOutcome:
        t0 = time.perf_counter()
        self.fill(inp, slots, prev, e0_kwh, terminal_value)
        if not self._solved_once:
            self.crash_basis(slots, prev)
        status, detail, warm, retried = self.run()
        out = LpOutcome(status=status, detail=detail, warm=warm, cold_retry=retried)
        out.iterations = int(self.h.getInfo().simplex_iteration_count)
        if status == "optimal":
            sol = self.h.getSolution()
            col = np.asarray(sol.col_value)
            vals = self.extract(slots, col, np.asarray(sol.row_dual))
            for k, v in vals.items():
                setattr(out, k, v)
            out.objective = float(self.h.getInfo().objective_function_value)
            out.col = col
        out.solve_s = time.perf_counter() - t0
        return out
