"""Property tests: every plan is physically possible and never worse than leaving the battery idle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.optimizer import solve
from powersync_pipelines.optimizer.heuristics import baseline_plan
from powersync_pipelines.optimizer.solve import plan_objective, prepare

from .problems import assert_feasible, realistic_problem

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _check_lp(seed: int, n: int, negative: bool) -> None:
    p = realistic_problem(seed, n=n, negative_prices=negative, terminal_value="none")
    r = solve(p, horizon="full")
    assert r.status == "optimal", r.fallback_reason
    assert_feasible(p, r)
    # the battery may idle (SOC starts at or above reserve), so the plan costs no more than no battery
    assert r.cost <= r.baseline_cost + 1e-4
    assert r.savings_horizon >= -1e-4
    # the reported objective is the LP's own optimum
    assert r.objective == pytest.approx(r.extras["lp_objective"], rel=1e-6, abs=1e-6)


@FAST
@given(seed=seeds, n=st.sampled_from([48, 96, 144]), negative=st.booleans())
def test_lp_plans_are_feasible_and_beat_baseline(seed, n, negative):
    _check_lp(seed, n, negative)


@pytest.mark.slow
@SLOW
@given(seed=seeds, n=st.sampled_from([96, 288, 576]), negative=st.booleans())
def test_lp_plans_are_feasible_and_beat_baseline_heavy(seed, n, negative):
    _check_lp(seed, n, negative)


def _check_greedy(seed: int, n: int, negative: bool, terminal: str) -> None:
    p = realistic_problem(seed, n=n, negative_prices=negative, terminal_value=terminal)
    r = solve(p, solver="greedy")
    assert r.status == "greedy" and r.solver == "greedy"
    assert_feasible(p, r)
    prep = prepare(p)
    base = baseline_plan(p.solar_kw, p.load_kw, prep.e0, p.export_limit_kw)
    assert r.objective <= plan_objective(prep, base) + 1e-6
    if terminal == "none":
        assert r.cost <= r.baseline_cost + 1e-4
    lp = solve(p)
    assert lp.objective <= r.objective + 1e-6  # the LP is exact, the greedy only approximates it


@FAST
@given(seed=seeds, n=st.sampled_from([48, 96, 144]), negative=st.booleans(), terminal=st.sampled_from(["none", "auto"]))
def test_greedy_is_feasible_and_never_worse_than_baseline(seed, n, negative, terminal):
    _check_greedy(seed, n, negative, terminal)


@pytest.mark.slow
@SLOW
@given(seed=seeds, n=st.sampled_from([288, 576]), negative=st.booleans(), terminal=st.sampled_from(["none", "auto"]))
def test_greedy_is_feasible_and_never_worse_than_baseline_heavy(seed, n, negative, terminal):
    _check_greedy(seed, n, negative, terminal)


@FAST
@given(seed=seeds)
def test_reported_actions_never_mix_directions(seed):
    p = realistic_problem(seed, n=144, negative_prices=bool(seed % 2))
    df = solve(p).intervals
    charge = df.action == "CHARGE"
    export = df.action == "EXPORT"
    assert (df.battery_charge_kw[charge] > 0.1).all() and (df.battery_discharge_kw[charge] <= 1e-6).all()
    assert (df.battery_discharge_kw[export] > 0.1).all() and (df.battery_charge_kw[export] <= 1e-6).all()
    idle = df.action == "IDLE"
    assert (df.battery_charge_kw[idle] <= 0.1).all() and (df.battery_discharge_kw[idle] <= 0.1).all()
    assert set(df.action) <= {"CHARGE", "EXPORT", "IDLE", "SELF_CONSUMPTION"}


@FAST
@given(seed=seeds)
def test_reserve_above_current_soc_ramps_back_instead_of_failing(seed):
    p = realistic_problem(seed, n=144, soc_at_least_reserve=False)
    p.battery = type(p.battery)(**{**p.battery.to_dict(), "reserve": 0.5, "soc_initial": 0.05})
    p.import_limit_kw = None
    r = solve(p)
    assert r.status == "optimal"
    assert_feasible(p, r, grid_limits=False)
    soc = r.intervals.soc.to_numpy()
    assert soc.min() >= 0.05 - 1e-6  # never discharges while below reserve
    assert soc[-1] >= 0.5 - 1e-6  # back at the reserve by the end
    assert np.all(np.diff(np.minimum(soc, 0.5)) >= -1e-9) or soc.min() >= 0.05 - 1e-6
