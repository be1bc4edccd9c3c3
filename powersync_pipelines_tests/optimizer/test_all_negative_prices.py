"""A day with every price below zero: the burn repair reaches the full MILP optimum, fast, on both grids.

With every import price negative, charging and discharging at once pays in every interval of the LP, so
the burn repair needs a binary pair everywhere: the hardest MIP the planner meets on real data. The plan
must be the full MILP optimum (the greedy fallback is far worse: -15.26 against -21.34 on the 24 h day).
"""

from __future__ import annotations

import numpy as np
import pytest

import powersync_pipelines.optimizer.repair as repair
from powersync_pipelines.optimizer import OptimizationProblem, solve

from .problems import assert_feasible, realistic_problem
from .test_lp_matches_independent_formulation import reference_milp_optimum


def all_negative_day(n: int = 288, seed: int = 1) -> OptimizationProblem:
    """The generator's home and price shape (evening peak, noise, spikes) mirrored below zero, 1 c lower:
    every import price is negative all day; export pays 5 c less than import (so exporting costs money)."""
    p = realistic_problem(seed, n=n, negative_prices=True)
    p.import_price = -np.abs(p.import_price) - 0.01
    p.export_price = p.import_price - 0.05
    return p


def test_all_negative_day_reaches_the_full_milp_optimum():
    p = all_negative_day()
    assert (p.import_price < 0).all() and (p.export_price < 0).all()
    r = solve(p, horizon="full")
    assert r.status == "optimal", r.fallback_reason
    assert r.repaired_intervals == p.n  # every interval needed its binaries
    assert_feasible(p, r)
    assert r.objective == pytest.approx(reference_milp_optimum(p), rel=1e-6, abs=1e-6)


def test_all_negative_day_on_the_tiered_grid_matches_its_milp_with_binaries_everywhere(monkeypatch):
    p = all_negative_day()
    tiered = solve(p, horizon="tiered")
    assert tiered.status == "optimal", tiered.fallback_reason
    assert_feasible(p, tiered, grid_limits=False)
    monkeypatch.setattr(repair, "BB_NODE_LIMIT", 0)
    monkeypatch.setattr(repair, "MAX_ROUNDS", 0)  # one MILP with a binary pair in every period
    everywhere = solve(p, horizon="tiered")
    assert everywhere.status == "optimal"
    assert tiered.extras["lp_objective"] == pytest.approx(everywhere.extras["lp_objective"], rel=1e-6, abs=1e-6)
    assert solve(p, horizon="full").objective <= tiered.objective + 1e-6


@pytest.mark.slow
def test_all_negative_two_day_horizon_reaches_the_full_milp_optimum():
    p = all_negative_day(n=576, seed=2)
    r = solve(p, horizon="full")
    assert r.status == "optimal", r.fallback_reason
    assert_feasible(p, r)
    assert r.objective == pytest.approx(reference_milp_optimum(p), rel=1e-6, abs=1e-6)


def test_burn_repair_stopped_by_its_node_limit_keeps_its_burn_free_plan(monkeypatch):
    """The work limit, not the clock, ends a MIP that cannot close: its incumbent is a physically possible
    plan, reported as near_optimal with the proven gap, and the same on every run."""
    p = all_negative_day()
    optimum = solve(p, horizon="full").objective
    monkeypatch.setattr(repair, "BB_NODE_LIMIT", 0)
    monkeypatch.setattr(repair, "MIP_NODE_LIMIT", 1)
    runs = [solve(p, horizon="full") for _ in range(2)]
    r = runs[0]
    assert r.status == "near_optimal" and r.solver == "lp", r.fallback_reason
    assert "work limit" in r.fallback_reason and "of the optimum" in r.fallback_reason
    assert_feasible(p, r)
    assert r.objective >= optimum - 1e-9  # never better than the proven optimum (here it found it, unproven)
    assert r.objective < solve(p, solver="greedy").objective
    assert runs[1].objective == r.objective and runs[1].intervals.equals(r.intervals)
