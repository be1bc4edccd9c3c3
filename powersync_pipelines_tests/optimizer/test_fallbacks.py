"""Solver failure → greedy; infeasible input → self-consumption; both reported in status and reason."""

from __future__ import annotations

import numpy as np

from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem, Replanner, solve
from powersync_pipelines.optimizer.heuristics import baseline_plan
from powersync_pipelines.optimizer.solve import plan_objective, prepare

from .problems import assert_feasible, realistic_problem


def _unsuppliable() -> OptimizationProblem:
    # a 3 kW evening load behind a 1 kW grid connection with a nearly empty small battery: no plan exists
    n = 48
    return OptimizationProblem(
        start="2024-10-11T08:00:00Z",
        import_price=np.full(n, 0.3),
        export_price=np.full(n, 0.05),
        solar_kw=np.zeros(n),
        load_kw=np.full(n, 3.0),
        battery=BatteryParams(capacity_kwh=2.0, soc_initial=0.2, max_charge_kw=2.0, max_discharge_kw=2.0, reserve=0.1),
        import_limit_kw=1.0,
    )


def test_infeasible_problem_falls_back_to_self_consumption():
    p = _unsuppliable()
    r = solve(p)
    assert r.status == "fallback_self_consumption" and r.solver == "self_consumption"
    assert "infeasible" in r.fallback_reason.lower()
    assert r.cost == r.self_consumption_cost
    df = r.intervals
    # self-consumption: the battery only covers the house, down to the reserve, and never charges from grid
    assert (df.battery_charge_kw == 0).all()
    assert df.soc.min() >= 0.1 - 1e-9
    assert set(df.action) <= {"SELF_CONSUMPTION", "IDLE"}


def test_time_limit_falls_back_to_greedy():
    p = realistic_problem(3, n=576)
    r = solve(p, time_limit_s=1e-9)
    assert r.status == "fallback_greedy" and r.solver == "greedy"
    assert "time limit" in r.fallback_reason.lower()
    assert_feasible(p, r)
    prep = prepare(p)
    idle = plan_objective(prep, baseline_plan(p.solar_kw, p.load_kw, prep.e0, p.export_limit_kw))
    assert solve(p).objective - 1e-9 <= r.objective < idle  # a real plan: better than idle, not better than the LP


def test_replanner_reports_the_same_fallbacks():
    p = _unsuppliable()
    rp = Replanner(p.battery, p.n, horizon="full", import_limit_kw=1.0)
    r = rp.solve(p.start, p.import_price, p.export_price, p.solar_kw, p.load_kw, p.battery.soc_initial)
    assert r.status == "fallback_self_consumption" and r.fallback_reason
    assert r.action in {"SELF_CONSUMPTION", "IDLE"}
    # and it recovers on the next, feasible, replan
    ok = rp.solve(p.start, p.import_price, p.export_price, p.solar_kw, np.full(p.n, 0.5), 0.5)
    assert ok.status == "optimal"


def test_lp_work_limit_falls_back_to_greedy_the_same_way_every_time(monkeypatch):
    """A solve stopped by its simplex iteration limit (not by the clock) takes the documented greedy fallback,
    and the same inputs give the same fallback plan."""
    import powersync_pipelines.optimizer.model as model

    monkeypatch.setattr(model, "LP_ITERATIONS_PER_ROW", 0)
    p = realistic_problem(3, n=576)
    runs = [solve(p), solve(p, horizon="tiered")]
    for r in runs:
        assert r.status == "fallback_greedy" and r.solver == "greedy"
        assert "work limit" in r.fallback_reason and "simplex iterations" in r.fallback_reason
        assert_feasible(p, r, grid_limits=False)
    assert runs[0].intervals.equals(solve(p).intervals)
