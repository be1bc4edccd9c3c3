"""Exact repair of physically impossible LP plans ("burning" energy).

With negative prices, or export paid above import, the LP may charge and discharge, or import and export,
in the same interval. The no-simultaneity rule is a disjunction per interval (charge = 0 or discharge = 0;
import = 0 or export = 0), imposed only where the LP used both:

1. ``branch_and_bound``: depth-first over those disjunctions on the LP's own HiGHS model, each node a
   bound change re-solved warm (dual simplex, a few iterations), branching only on intervals that burn in
   the node's solution, pruning by the incumbent. Exact, and typically tens of milliseconds.
2. If it hits its node limit, the MILP route: one binary pair per affected interval added to a copy of the
   model, re-solved by HiGHS' MIP solver, repeated until nothing burns. Exact too: each round relaxes the
   full MILP and ends feasible for it. A round whose plan burns somewhere new widens to every interval
   where burning breaks even at that plan's duals (stored energy worth less than the wear a burn costs, or
   absorbed energy paid for), which finds in one step what adding the newly burning intervals would find
   one interval per round.

Every step is bounded by work, not time: nodes of the depth-first search, simplex iterations per LP
(``model.LP_ITERATIONS_PER_ROW``), nodes and leaves per MIP round, rounds. The wall clock only bounds a
pathological solve as a last resort. A MIP round stopped by its node or leaf limit with a burn-free plan
returns that plan as ``near_optimal`` (its proven gap in ``detail``); without one the caller falls back.
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from .highs_util import INFEASIBLE_STATUSES, MS, OPTIMAL, WORK_LIMIT_STATUSES, new_highs, run_timed
from .model import CHG, DIS, EXP, IMP, INF, BatteryLp, LpOutcome, PeriodInputs

BURN_TOL_KWH = 1e-8  # below the 1e-6 kW a 5-min interval can show
BB_NODE_LIMIT = 150  # then the MILP route
BB_MAX_BURNING = 12  # more burning intervals than this go straight to the MILP route
MAX_ROUNDS = 8  # MILP rounds adding intervals that burned anew; then every interval gets its binaries
# Per MILP round. The broadest corpus measured (real and generated negative-price and all-negative days, DST
# days, 24 h and 48 h, full and tiered) needs at most 102 nodes (benchmarks/bench_optimizer.py ``limits``).
# Days of one constant negative price never prove optimality (a knapsack of equivalent cycles): the limit
# ends them with a plan proven within a fraction of a cent, in ~5 s of CPU, well inside the last resort.
MIP_NODE_LIMIT = 500
MIP_LEAF_LIMIT = 250
BREAK_EVEN_TOL = 1e-9  # $/kWh: an interval whose burn is this close to paying gets its binaries too
TIME_LIMIT = MS.kTimeLimit


def burning_slots(lp: BatteryLp, col: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slots (not periods) where the plan charges+discharges, and where it imports+exports."""
    S = lp.S
    both_cd = np.minimum(col[CHG * S + slots], col[DIS * S + slots]) > BURN_TOL_KWH
    both_ie = np.minimum(col[IMP * S + slots], col[EXP * S + slots]) > BURN_TOL_KWH
    return slots[both_cd], slots[both_ie]


def _big_m(lp: BatteryLp, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Valid upper bounds (kWh) per slot for chg, dis, imp, exp: the column bounds ``fill`` wrote, which
    already cap import at load + charge + EV and export at solar + discharge."""
    S = lp.S
    hi = lp.hi
    return hi[CHG * S : (CHG + 1) * S], hi[DIS * S : (DIS + 1) * S], hi[IMP * S : (IMP + 1) * S], hi[EXP * S : (EXP + 1) * S]


def repair_burn(
    lp: BatteryLp, inp: PeriodInputs, slots: np.ndarray, outcome: LpOutcome, time_limit_s: float
) -> LpOutcome:
    """Return ``outcome`` if it burns nothing, else the repaired optimum (status "optimal") or a failure."""
    assert outcome.col is not None
    cd, ie = burning_slots(lp, outcome.col, slots)
    if cd.size == 0 and ie.size == 0:
        return outcome
    t0 = time.perf_counter()
    # 1. hull cuts a/M_a + b/M_b <= 1 (the convex hull of "a = 0 or b = 0") where burning can pay
    ic, ec = inp.import_cost, inp.export_cost  # export_cost = -(export value)
    n = len(slots)
    risky_cd = slots[(ic[:n] < 0) | (ec[:n] > 0)]
    risky_ie = slots[-ec[:n] > ic[:n]]
    if len(np.union1d(cd, ie)) > BB_MAX_BURNING:
        # many intervals burn: one MILP over every interval where burning can pay beats a long search
        remaining = time_limit_s - (time.perf_counter() - t0)
        return _repair_milp(lp, inp, slots, outcome, np.union1d(cd, risky_cd), np.union1d(ie, risky_ie), max(remaining, 0.05))
    n_base_rows = lp.h.getNumRow()
    _add_hull_cuts(lp, np.union1d(cd, risky_cd), np.union1d(ie, risky_ie))
    try:
        root = _resolve(lp, slots, outcome)
        if root is None:
            done = None
        elif root.status != "optimal":
            done = root
        else:
            # 2. branch and bound on what still burns, with the cuts in place
            done = branch_and_bound(lp, slots, root)
    finally:
        added = lp.h.getNumRow() - n_base_rows
        if added:
            lp.h.deleteRows(added, np.arange(n_base_rows, n_base_rows + added, dtype=np.int32))
        if not lp.h.getBasis().valid:
            lp.forget_basis()
    if done is not None:
        done.solve_s = outcome.solve_s + time.perf_counter() - t0
        done.repaired_intervals = len(np.union1d(cd, ie))
        return done
    remaining = time_limit_s - (time.perf_counter() - t0)
    return _repair_milp(lp, inp, slots, outcome, np.union1d(cd, risky_cd), np.union1d(ie, risky_ie), max(remaining, 0.05))


def _add_hull_cuts(lp: BatteryLp, cd: np.ndarray, ie: np.ndarray) -> None:
    S = lp.S
    hi = lp.hi
    rows = [(CHG * S + cd, DIS * S + cd), (IMP * S + ie, EXP * S + ie)]
    for a, b in rows:
        ok = (hi[a] > 1e-12) & (hi[b] > 1e-12)
        a, b = a[ok], b[ok]
        k = len(a)
        if k == 0:
            continue
        idx = np.empty(2 * k, dtype=np.int32)
        val = np.empty(2 * k)
        idx[0::2], idx[1::2] = a, b
        val[0::2], val[1::2] = 1.0 / hi[a], 1.0 / hi[b]
        lp.h.addRows(k, np.full(k, -INF), np.ones(k), 2 * k, np.arange(0, 2 * k, 2, dtype=np.int32), idx, val)


def _resolve(lp: BatteryLp, slots: np.ndarray, outcome: LpOutcome) -> LpOutcome | None:
    """Re-solve ``lp`` warm after adding rows; None if HiGHS does not finish."""
    h = lp.h
    run_timed(h, lp.time_limit_s)
    ms = h.getModelStatus()
    if ms in INFEASIBLE_STATUSES:
        return LpOutcome(status="infeasible", detail="no plan without burning")
    if ms != OPTIMAL:
        return None
    sol = h.getSolution()
    col = np.asarray(sol.col_value)[: lp.n_col]
    out = LpOutcome(status="optimal", detail="burn repaired by hull cuts", warm=outcome.warm)
    for k, v in lp.extract(slots, col, np.asarray(sol.row_dual)).items():
        setattr(out, k, v)
    out.objective = float(h.getInfo().objective_function_value)
    out.col = col
    out.iterations = outcome.iterations
    return out


def branch_and_bound(lp: BatteryLp, slots: np.ndarray, root: LpOutcome) -> LpOutcome | None:
    """Depth-first branch and bound on the burning intervals, on ``lp``'s own model (bounds restored after).

    Returns the exact optimum, ``LpOutcome(status="infeasible")`` if no plan avoids burning, or None when the
    node limit is reached or a node's LP does not finish (the caller then uses the MILP route).
    """
    S = lp.S
    h = lp.h
    hi0 = lp.hi
    tol = 1e-9 * max(1.0, abs(root.objective))
    best_obj = np.inf
    best: tuple[np.ndarray, np.ndarray | None] | None = None
    best_fix: tuple[int, ...] = ()
    fixed_now: set[int] = set()
    stack: list[tuple[int, ...]] = [()]
    nodes = 0
    aborted = False

    def apply(fix: tuple[int, ...]) -> None:
        want = set(fix)
        release = np.array(sorted(fixed_now - want), dtype=np.int32)
        clamp = np.array(sorted(want - fixed_now), dtype=np.int32)
        if release.size:
            h.changeColsBounds(release.size, release, lp.lo[release], hi0[release])
        if clamp.size:
            h.changeColsBounds(clamp.size, clamp, np.zeros(clamp.size), np.zeros(clamp.size))
        fixed_now.clear()
        fixed_now.update(want)

    while stack:
        if nodes >= BB_NODE_LIMIT:
            aborted = True
            break
        fix = stack.pop()
        nodes += 1
        if fix:
            apply(fix)
            run_timed(h, lp.time_limit_s)
            ms = h.getModelStatus()
            if ms in INFEASIBLE_STATUSES:
                continue
            if ms != OPTIMAL:
                aborted = True
                break
            obj = float(h.getInfo().objective_function_value)
            if obj >= best_obj - tol:
                continue
            col = np.asarray(h.getSolution().col_value)[: lp.n_col]
        else:
            obj, col = root.objective, root.col
            assert col is not None
        cd, ie = burning_slots(lp, col, slots)
        if cd.size == 0 and ie.size == 0:
            best_obj = obj
            best = (col, np.asarray(h.getSolution().row_dual)[: lp.n_row] if fix else None)
            best_fix = fix
            continue
        # branch on the interval that burns the most; the child that zeroes the smaller flow goes first
        pairs = [(CHG * S + j, DIS * S + j) for j in cd] + [(IMP * S + j, EXP * S + j) for j in ie]
        a, b = max(pairs, key=lambda ab: min(col[ab[0]], col[ab[1]]))
        small, large = (a, b) if col[a] <= col[b] else (b, a)
        stack.append(fix + (large,))
        stack.append(fix + (small,))
    apply(())
    lp.bb_nodes = nodes
    if aborted:
        return None
    if best is None:
        return LpOutcome(status="infeasible", detail=f"no plan without burning ({nodes} nodes)")
    col, row_dual = best
    out = LpOutcome(status="optimal", detail=f"burn repaired by branch and bound ({nodes} nodes)", warm=root.warm)
    for k, v in lp.extract(slots, col, row_dual).items():
        setattr(out, k, v)
    if row_dual is None:
        out.marginal = root.marginal
    out.objective = best_obj
    out.col = col
    out.repaired_intervals = len({c % S for c in best_fix})
    out.detail = f"burn repaired ({nodes} branch-and-bound nodes)"
    out.iterations = root.iterations
    return out


def _repair_milp(
    lp: BatteryLp,
    inp: PeriodInputs,
    slots: np.ndarray,
    outcome: LpOutcome,
    cd: np.ndarray,
    ie: np.ndarray,
    time_limit_s: float,
) -> LpOutcome:
    t0 = time.perf_counter()
    S = lp.S
    m_c, m_d, m_i, m_e = _big_m(lp, slots)
    h = new_highs(time_limit_s, presolve=True)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_max_nodes", MIP_NODE_LIMIT)
    h.setOptionValue("mip_max_leaves", MIP_LEAF_LIMIT)
    # RINS and RENS sub-MIPs take most of the time on days that burn everywhere (3 of 4 s on a 576-step
    # all-negative day) and find nothing the root's own heuristics and the search would not
    h.setOptionValue("mip_heuristic_run_rins", False)
    h.setOptionValue("mip_heuristic_run_rens", False)
    h.setOptionValue("mip_allow_restart", False)
    h.passModel(lp.h.getLp())
    h.setOptionValue("simplex_iteration_limit", lp.iteration_limit)
    n_base = lp.n_col
    have_cd: set[int] = set()
    have_ie: set[int] = set()
    n_bin = 0
    nodes = 0

    def add_pairs(new: np.ndarray, a_group: int, b_group: int, m_a: np.ndarray, m_b: np.ndarray) -> None:
        # binary y: a <= M_a * y ; b <= M_b * (1 - y)
        nonlocal n_bin
        k = len(new)
        if k == 0:
            return
        first = h.getNumCol()
        h.addCols(k, np.zeros(k), np.zeros(k), np.ones(k), 0, np.zeros(k, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        ycols = np.arange(first, first + k, dtype=np.int32)
        h.changeColsIntegrality(k, ycols, np.full(k, highspy.HighsVarType.kInteger))
        starts = np.arange(0, 4 * k, 2, dtype=np.int32)
        idx = np.empty(4 * k, dtype=np.int32)
        val = np.empty(4 * k)
        idx[0::4] = a_group * S + new
        idx[1::4] = ycols
        idx[2::4] = b_group * S + new
        idx[3::4] = ycols
        val[0::4] = 1.0
        val[1::4] = -m_a[new]
        val[2::4] = 1.0
        val[3::4] = m_b[new]
        upper = np.empty(2 * k)
        upper[0::2] = 0.0
        upper[1::2] = m_b[new]
        h.addRows(2 * k, np.full(2 * k, -INF), upper, 4 * k, starts, idx, val)
        n_bin += k

    col = np.zeros(0)
    row_dual: np.ndarray | None = None
    stopped = ""
    for rnd in range(MAX_ROUNDS + 1):
        if rnd == MAX_ROUNDS:
            cd, ie = slots, slots  # last resort: the full MILP (still exact)
        new_cd = np.array(sorted(set(cd.tolist()) - have_cd), dtype=np.int64)
        new_ie = np.array(sorted(set(ie.tolist()) - have_ie), dtype=np.int64)
        add_pairs(new_cd, CHG, DIS, m_c, m_d)
        add_pairs(new_ie, IMP, EXP, m_i, m_e)
        have_cd.update(new_cd.tolist())
        have_ie.update(new_ie.tolist())
        remaining = time_limit_s - (time.perf_counter() - t0)
        if remaining <= 0:
            return LpOutcome(status="time_limit", detail=f"burn repair reached its last-resort time limit with {n_bin} binaries")
        h.setOptionValue("time_limit", h.getRunTime() + remaining)
        h.run()
        ms = h.getModelStatus()
        info = h.getInfo()
        nodes += max(0, int(info.mip_node_count))
        if ms != OPTIMAL:
            name = h.modelStatusToString(ms)
            if ms not in WORK_LIMIT_STATUSES or info.primal_solution_status != 2:  # 2: feasible
                kind = "work_limit" if ms in WORK_LIMIT_STATUSES else "time_limit" if ms == TIME_LIMIT else "failed"
                return LpOutcome(status=kind, detail=f"burn repair MILP ended {name} with {n_bin} binaries and no plan")
            stopped = (f"burn repair MILP reached its work limit ({MIP_NODE_LIMIT} nodes / {MIP_LEAF_LIMIT} leaves) "
                       f"with a plan within {abs(info.objective_function_value - info.mip_dual_bound):.2g} $ "
                       f"of the optimum (proven bound)")  # fmt: skip
        objective = float(info.objective_function_value)
        col = np.asarray(h.getSolution().col_value)
        # fix the binaries and re-solve as an LP: the duals (marginal value of stored energy, the widening)
        # and a vertex without the MIP's integrality slack
        row_dual, clean, clean_objective = _fixed_lp(h, n_base, col)
        if clean is not None:
            cd2, ie2 = burning_slots(lp, clean, slots)
            if cd2.size == 0 and ie2.size == 0:
                col, objective = clean, min(objective, clean_objective)
        cd, ie = burning_slots(lp, col, slots)
        if have_cd.issuperset(cd.tolist()) and have_ie.issuperset(ie.tolist()):
            break  # nothing burns outside the binaries (at most their integrality slack, cleaned up above)
        if stopped:
            return LpOutcome(status="work_limit", detail=stopped + ", but it burns outside its binaries")
        if row_dual is not None:
            cd = np.union1d(cd, _break_even_slots(lp, inp, slots, row_dual))
        _unfix(h, n_base)
    else:
        return LpOutcome(status="failed", detail=f"burn repair did not converge in {MAX_ROUNDS + 1} rounds")
    status = "near_optimal" if stopped else "optimal"
    detail = stopped or f"burn repaired with {n_bin} binaries ({nodes} MIP nodes)"
    out = LpOutcome(status=status, detail=detail, warm=outcome.warm)
    for k, v in lp.extract(slots, col[:n_base], row_dual).items():
        setattr(out, k, v)
    if row_dual is None:
        out.marginal = outcome.marginal
    out.objective = objective
    out.col = col[:n_base]
    out.repaired_intervals = n_bin
    out.iterations = outcome.iterations
    out.solve_s = outcome.solve_s + time.perf_counter() - t0
    return out


def _fixed_lp(h: highspy.Highs, n_base: int, col: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """Fix the binaries at the MIP's values and solve the LP: (row duals, column values, objective), or
    (None, None, inf) if it does not end optimal."""
    n_total = h.getNumCol()
    ycols = np.arange(n_base, n_total, dtype=np.int32)
    yval = np.round(col[n_base:n_total])
    h.changeColsIntegrality(len(ycols), ycols, np.full(len(ycols), highspy.HighsVarType.kContinuous))
    h.changeColsBounds(len(ycols), ycols, yval, yval)
    h.run()
    if h.getModelStatus() != OPTIMAL:
        return None, None, float("inf")
    sol = h.getSolution()
    return np.asarray(sol.row_dual), np.asarray(sol.col_value), float(h.getInfo().objective_function_value)


def _unfix(h: highspy.Highs, n_base: int) -> None:
    """Undo ``_fixed_lp``: the binaries are binaries again, and the MIP starts afresh."""
    n_total = h.getNumCol()
    ycols = np.arange(n_base, n_total, dtype=np.int32)
    k = len(ycols)
    h.changeColsBounds(k, ycols, np.zeros(k), np.ones(k))
    h.changeColsIntegrality(k, ycols, np.full(k, highspy.HighsVarType.kInteger))
    h.clearSolver()


def _break_even_slots(lp: BatteryLp, inp: PeriodInputs, slots: np.ndarray, row_dual: np.ndarray) -> np.ndarray:
    """Slots where charging and discharging at once would at least break even at these duals.

    Burning ``a`` kWh of AC charge against ``eta_c*eta_d*a`` of discharge keeps the stored energy and absorbs
    ``(1 - eta_c*eta_d)*a`` from the house: it pays when absorbed energy is worth more than the wear.
    Charging and discharging ``a`` each keeps the house balance and destroys ``(1/eta_d - eta_c)*a`` of stored
    energy: it pays when stored energy is worth less than minus the wear. Either one is a burn the next round
    would otherwise discover one interval at a time.
    """
    S = lp.S
    n = len(slots)
    wear = 2.0 * lp.wear_half
    loss_store = 1.0 / lp.eta_d - lp.eta_c
    ee = lp.eta_c * lp.eta_d
    mu = row_dual[slots]  # $/kWh of extra house load (absorbed energy)
    value = -row_dual[S + slots]  # $/kWh of stored energy
    active = inp.dt[:n] > 0
    absorb = (ee < 1.0) & (mu * (1.0 - ee) + 0.5 * wear * (1.0 + ee) <= BREAK_EVEN_TOL)
    destroy = (loss_store > 0.0) & (value * loss_store + wear <= BREAK_EVEN_TOL)
    return slots[active & (absorb | destroy)]
