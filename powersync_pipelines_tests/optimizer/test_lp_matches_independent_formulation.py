"""The LP optimum equals an independent formulation solved another way (scipy, test-only).

The reference model here is written from the problem statement, not from ``model.py``: power variables
in kW, SOC at interval *starts*, a dense equality system, HiGHS interior point via ``linprog``; the burn
repair is checked against a full MILP with a binary pair in every interval via ``scipy.optimize.milp``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import lil_matrix

from powersync_pipelines.optimizer import OptimizationProblem, solve

from .problems import assert_feasible, realistic_problem


def reference_model(p: OptimizationProblem, binaries: bool = False):
    """Variables per interval t: i, e, c, d, u (curtail) kW; s_0..s_n kWh; optionally binaries y, z."""
    n, dt, b = p.n, p.dt_hours, p.battery
    cap, e0, res = b.capacity_kwh, b.soc_initial * b.capacity_kwh, b.reserve * b.capacity_kwh
    assert e0 >= res, "the reference model covers starts at or above the reserve"
    tail_min = max(0.0, float(p.import_price[n // 2 :].min()))
    v_end = {"none": 0.0, "auto": tail_min * b.discharge_efficiency}.get(p.terminal_value, p.terminal_value)
    nv = 5 * n + (n + 1) + (2 * n if binaries else 0)
    Ii, Ee, C, D, U, S = (k * n for k in range(6))
    Y, Z = 5 * n + n + 1, 5 * n + n + 1 + n
    cost = np.zeros(nv)
    cost[Ii : Ii + n] = p.import_price * dt
    cost[Ee : Ee + n] = -p.export_price * dt
    cost[C : C + n] = 0.5 * p.wear_cost_per_kwh * dt
    cost[D : D + n] = 0.5 * p.wear_cost_per_kwh * dt
    cost[U : U + n] = 1e-6 * dt
    cost[S + n] = -v_end
    lo, hi = np.zeros(nv), np.full(nv, np.inf)
    hi[Ii : Ii + n] = p.import_limit_kw
    hi[Ee : Ee + n] = p.export_limit_kw
    hi[C : C + n] = b.max_charge_kw
    hi[D : D + n] = b.max_discharge_kw
    hi[U : U + n] = p.solar_kw
    lo[S : S + n + 1], hi[S : S + n + 1] = res, cap
    lo[S], hi[S] = e0, e0
    if binaries:
        hi[Y:] = 1.0
    A = lil_matrix((2 * n, nv))
    rhs = np.zeros(2 * n)
    for t in range(n):
        # power balance: i + solar - u + d = load + e + c
        A[t, Ii + t], A[t, Ee + t], A[t, C + t], A[t, D + t], A[t, U + t] = 1, -1, -1, 1, -1
        rhs[t] = p.load_kw[t] - p.solar_kw[t]
        # s_{t+1} = s_t + (eta_c c - d / eta_d) dt
        r = n + t
        A[r, S + t + 1], A[r, S + t] = 1, -1
        A[r, C + t], A[r, D + t] = -b.charge_efficiency * dt, dt / b.discharge_efficiency
    cons = [LinearConstraint(A.tocsr(), rhs, rhs)]
    if binaries:
        big_i = p.load_kw + b.max_charge_kw
        big_e = p.solar_kw + b.max_discharge_kw
        B = lil_matrix((4 * n, nv))
        ub = np.zeros(4 * n)
        for t in range(n):
            B[4 * t, C + t], B[4 * t, Y + t] = 1, -b.max_charge_kw  # c <= Mc y
            B[4 * t + 1, D + t], B[4 * t + 1, Y + t] = 1, b.max_discharge_kw  # d <= Md (1 - y)
            ub[4 * t + 1] = b.max_discharge_kw
            B[4 * t + 2, Ii + t], B[4 * t + 2, Z + t] = 1, -big_i[t]  # i <= Mi z
            B[4 * t + 3, Ee + t], B[4 * t + 3, Z + t] = 1, big_e[t]  # e <= Me (1 - z)
            ub[4 * t + 3] = big_e[t]
        cons.append(LinearConstraint(B.tocsr(), -np.inf, ub))
    integrality = np.zeros(nv)
    if binaries:
        integrality[Y:] = 1
    return cost, cons, lo, hi, integrality, (A.tocsr(), rhs)


def reference_lp_optimum(p: OptimizationProblem) -> float:
    cost, _cons, lo, hi, _int, (A, rhs) = reference_model(p)
    # tight tolerances: with default 1e-7 ones on costs of ~0.02 $/kW per interval, the optimum is off ~1e-6
    tight = {"dual_feasibility_tolerance": 1e-10, "primal_feasibility_tolerance": 1e-10}
    res = linprog(cost, A_eq=A, b_eq=rhs, bounds=np.column_stack([lo, hi]), method="highs-ipm", options=tight)
    assert res.status == 0, res.message
    return float(res.fun)


def reference_milp_optimum(p: OptimizationProblem) -> float:
    cost, cons, lo, hi, integrality, _ = reference_model(p, binaries=True)
    res = milp(cost, constraints=cons, bounds=Bounds(lo, hi), integrality=integrality, options={"mip_rel_gap": 0.0, "time_limit": 120})
    assert res.status == 0, res.message
    return float(res.fun)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([48, 96, 288]), terminal=st.sampled_from(["none", "auto", 0.05]))
def test_lp_optimum_equals_linprog_on_positive_prices(seed, n, terminal):
    p = realistic_problem(seed, n=n, terminal_value=terminal)
    p.export_price = np.minimum(p.export_price, p.import_price)  # no burn incentive: the LP alone is exact
    r = solve(p)
    ref = reference_lp_optimum(p)
    assert r.extras["lp_objective"] == pytest.approx(ref, rel=1e-6, abs=1e-7)


def test_burn_repair_reaches_the_full_milp_optimum_on_a_negative_price_day():
    # midday prices below zero and export paid above import in a few intervals: a pure LP would burn
    p = realistic_problem(7, n=96, start="2024-10-11T22:00:00Z", negative_prices=True, terminal_value="none", wear=0.0)
    p.export_price[10:14] = p.import_price[10:14] + 0.2
    p.battery = type(p.battery)(**{**p.battery.to_dict(), "charge_efficiency": 0.9, "discharge_efficiency": 0.9})
    r = solve(p)
    assert r.status == "optimal"
    assert r.repaired_intervals > 0
    assert_feasible(p, r)
    assert r.objective == pytest.approx(reference_milp_optimum(p), rel=1e-6, abs=1e-6)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_burn_repair_matches_full_milp_on_random_negative_days(seed):
    p = realistic_problem(seed, n=96, start="2024-10-11T22:00:00Z", negative_prices=True, terminal_value="none")
    r = solve(p, time_limit_s=60)
    assert_feasible(p, r)
    assert r.objective == pytest.approx(reference_milp_optimum(p), rel=1e-6, abs=1e-6)


def _burn_day() -> OptimizationProblem:
    p = realistic_problem(7, n=96, start="2024-10-11T22:00:00Z", negative_prices=True, terminal_value="none", wear=0.0)
    p.export_price[10:14] = p.import_price[10:14] + 0.2
    p.export_price[40:52] = p.import_price[40:52] + 0.05
    return p


def test_milp_route_of_the_burn_repair_is_exact_too(monkeypatch):
    import powersync_pipelines.optimizer.repair as repair

    monkeypatch.setattr(repair, "BB_NODE_LIMIT", 0)  # force the MILP route
    p = _burn_day()
    r = solve(p)
    assert r.status == "optimal" and r.repaired_intervals > 0
    assert_feasible(p, r)
    assert r.objective == pytest.approx(reference_milp_optimum(p), rel=1e-6, abs=1e-6)


def test_replanner_stays_exact_across_replans_that_need_the_burn_repair():
    from powersync_pipelines.optimizer import BatteryParams, Replanner

    src = _burn_day()
    src.export_price[:40] = np.minimum(src.export_price[:40], src.import_price[:40])  # fewer burning intervals
    n = 48
    opts = {"export_limit_kw": src.export_limit_kw, "import_limit_kw": src.import_limit_kw, "wear_cost_per_kwh": 0.0, "terminal_value": "none"}
    for horizon in ("full", "tiered"):
        rp = Replanner(src.battery, n, horizon=horizon, **opts)
        for k in (0, 1, 30):
            sl = slice(k, k + n)
            start = src.start + pd.Timedelta(minutes=5 * k)
            r = rp.solve(start, src.import_price[sl], src.export_price[sl], src.solar_kw[sl], src.load_kw[sl], 0.6)
            bat = BatteryParams(**{**src.battery.to_dict(), "soc_initial": 0.6})
            p = OptimizationProblem(start, src.import_price[sl], src.export_price[sl], src.solar_kw[sl], src.load_kw[sl], bat, **opts)
            cold = solve(p, horizon=horizon)
            assert r.objective == pytest.approx(cold.extras["lp_objective"], rel=1e-6, abs=1e-6)
            assert not ((r.battery_charge_kw > 1e-6) & (r.battery_discharge_kw > 1e-6)).any()
            assert not ((r.grid_import_kw > 1e-6) & (r.grid_export_kw > 1e-6)).any()
            if horizon == "full":
                assert r.objective == pytest.approx(reference_milp_optimum(p), rel=1e-6, abs=1e-6)


@pytest.mark.slow
def test_burn_repair_that_needs_its_last_full_milp_round_is_exact():
    """Found by the heavy property test: 18 intervals burn and each MILP round's plan burns somewhere new, so
    the repair needs more than one round; the round that converges must be taken, and it is the full MILP's
    optimum (bounded by node limits, so the result is the same on a busy machine)."""
    p = realistic_problem(846, n=576, negative_prices=True, terminal_value="none")
    r = solve(p, horizon="full")
    assert r.status == "optimal", r.fallback_reason
    assert_feasible(p, r)
    assert r.objective == pytest.approx(reference_milp_optimum(p), rel=1e-6, abs=1e-6)
