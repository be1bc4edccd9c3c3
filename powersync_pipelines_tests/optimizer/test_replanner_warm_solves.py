"""The Replanner's warm re-solves give the same optimum as a cold ``solve()`` of the same problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem, ProblemError, Replanner, solve

from .problems import assert_feasible, realistic_problem

N = 576
OPTS = {"export_limit_kw": 5.0, "import_limit_kw": 20.0, "wear_cost_per_kwh": 0.01, "terminal_value": "auto"}


def _series(seed: int, length: int) -> OptimizationProblem:
    return realistic_problem(seed, n=length, start="2024-10-11T14:00:00Z")


def _cold(start, ip, ep, solar, load, battery: BatteryParams, soc: float, horizon: str):
    bat = BatteryParams(**{**battery.to_dict(), "soc_initial": soc})
    p = OptimizationProblem(start, ip, ep, solar, load, bat, **OPTS)
    return p, solve(p, horizon=horizon)


@pytest.mark.parametrize("horizon", ["full", "tiered"])
def test_warm_replans_match_cold_solves_as_the_clock_moves(horizon):
    src = _series(21, N + 60)
    bat = src.battery
    rp = Replanner(bat, N, horizon=horizon, **OPTS)
    rng = np.random.default_rng(0)
    soc = bat.soc_initial
    warm_iterations, cold_iterations = [], []
    for k in range(0, 40):
        start = src.start + pd.Timedelta(minutes=5 * k)
        sl = slice(k, k + N)
        # forecasts are revised a little every replan, like a live price feed
        ip = src.import_price[sl] + rng.normal(0, 0.005, N)
        ep = np.minimum(src.export_price[sl], ip)
        r = rp.solve(start, ip, ep, src.solar_kw[sl], src.load_kw[sl], soc)
        assert r.status == "optimal"
        if k % 8 == 0 or k == 39:
            p, cold = _cold(start, ip, ep, src.solar_kw[sl], src.load_kw[sl], bat, soc, horizon)
            assert r.objective == pytest.approx(cold.extras["lp_objective"], rel=1e-6, abs=1e-6)
            sched = r.to_schedule()
            assert_feasible(p, sched, grid_limits=horizon == "full")
            assert sched.objective == pytest.approx(cold.objective, rel=1e-6, abs=1e-6)
        if k > 0:
            warm_iterations.append(r.iterations)
        soc = float(r.soc[0])
    cold_rp = Replanner(bat, N, horizon=horizon, **OPTS)
    cold_iterations.append(cold_rp.solve(start, ip, ep, src.solar_kw[sl], src.load_kw[sl], soc).iterations)
    assert np.median(warm_iterations) < cold_iterations[0]
    assert rp.cold_retries == 0


def test_ring_layout_handles_jumps_and_going_back_in_time():
    src = _series(4, N + 400)
    rp = Replanner(src.battery, N, horizon="full", **OPTS)
    for k in (0, 1, 2, 300, 7, 7, 150):
        start = src.start + pd.Timedelta(minutes=5 * k)
        sl = slice(k, k + N)
        r = rp.solve(start, src.import_price[sl], src.export_price[sl], src.solar_kw[sl], src.load_kw[sl], 0.6)
        _, cold = _cold(start, src.import_price[sl], src.export_price[sl], src.solar_kw[sl], src.load_kw[sl], src.battery, 0.6, "full")
        assert r.objective == pytest.approx(cold.extras["lp_objective"], rel=1e-6, abs=1e-6)


def test_replan_result_gives_the_interval_to_execute_now():
    src = _series(8, N)
    rp = Replanner(src.battery, N, horizon="tiered", **OPTS)
    r = rp.solve(src.start, src.import_price, src.export_price, src.solar_kw, src.load_kw, 0.4)
    now = r.first()
    assert now["action"] == r.action == r.actions[0]
    for key in ("grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw", "curtail_kw"):
        assert now[key] >= 0
    assert len(r.soc) == N and 0 <= now["soc"] <= 1
    assert isinstance(r.grid_import_kw, np.ndarray)


def test_replanner_rejects_bad_inputs_and_unsupported_options():
    src = _series(8, N)
    rp = Replanner(src.battery, N, horizon="full")
    with pytest.raises(ProblemError, match="length mismatch"):
        rp.solve(src.start, src.import_price[:-1], src.export_price, src.solar_kw, src.load_kw, 0.5)
    bad = src.import_price.copy()
    bad[5] = np.nan
    with pytest.raises(ProblemError, match="non-finite"):
        rp.solve(src.start, bad, src.export_price, src.solar_kw, src.load_kw, 0.5)
    with pytest.raises(ProblemError, match="soc_initial"):
        rp.solve(src.start, src.import_price, src.export_price, src.solar_kw, src.load_kw, 1.5)
    with pytest.raises(ProblemError, match="ev"):
        Replanner(src.battery, N, ev=object())


def test_replanner_soc_final_pins_the_horizon_end_like_solve():
    src = _series(9, N)
    rp = Replanner(src.battery, N, horizon="full", **OPTS)
    pinned = rp.solve(src.start, src.import_price, src.export_price, src.solar_kw, src.load_kw, 0.5, soc_final=0.9)
    assert pinned.soc[-1] == pytest.approx(0.9, abs=1e-9)
    p = OptimizationProblem(src.start, src.import_price, src.export_price, src.solar_kw, src.load_kw,
                            BatteryParams(**{**src.battery.to_dict(), "soc_initial": 0.5}), soc_final=0.9, **OPTS)  # fmt: skip
    assert pinned.objective == pytest.approx(solve(p).extras["lp_objective"], rel=1e-6, abs=1e-6)
    free = rp.solve(src.start, src.import_price, src.export_price, src.solar_kw, src.load_kw, 0.5)
    assert free.objective <= pinned.objective + 1e-9  # the pin is released on the next replan


def test_work_limits_count_per_solve_not_over_the_models_lifetime():
    """A long-lived Replanner (a backtest makes 100k warm solves) must get its full work budget on every
    solve: here a simplex limit far below the iterations all the solves add up to, and above any one of them."""
    src = _series(5, N + 400)
    rp = Replanner(src.battery, N, horizon="full", **OPTS)
    first = rp.solve(src.start, src.import_price[:N], src.export_price[:N], src.solar_kw[:N], src.load_kw[:N], 0.5)
    assert first.status == "optimal" and not first.warm
    limit = 60  # a warm replan takes ~10 iterations, the cold one above ~470
    rp.lp.iteration_limit = limit
    rp.lp.h.setOptionValue("simplex_iteration_limit", limit)
    results = []
    for k in range(1, 400, 2):
        sl = slice(k, k + N)
        results.append(rp.solve(src.start + pd.Timedelta(minutes=5 * k), src.import_price[sl], src.export_price[sl],
                                src.solar_kw[sl], src.load_kw[sl], 0.5))  # fmt: skip
    assert sum(r.iterations for r in results) > 10 * limit
    assert {r.status for r in results} == {"optimal"} and all(r.warm for r in results)
    assert rp.cold_retries == 0


def test_a_warm_solve_that_stops_at_its_work_limit_is_retried_cold():
    """A warm start that does not end optimal is solved again from scratch (SPEC: ``Unknown`` -> cold)."""
    src = _series(6, N + 50)
    rp = Replanner(src.battery, N, horizon="full", **OPTS)
    rp.solve(src.start, src.import_price[:N], src.export_price[:N], src.solar_kw[:N], src.load_kw[:N], 0.5)
    rp.lp.h.setOptionValue("simplex_iteration_limit", 0)  # the warm attempt stops at once
    original = rp.lp.h.run
    calls = []

    def run_then_restore_limit():
        calls.append(rp.lp.h.getOptions().simplex_iteration_limit)
        original()
        rp.lp.h.setOptionValue("simplex_iteration_limit", rp.lp.iteration_limit)

    rp.lp.h.run = run_then_restore_limit
    sl = slice(1, 1 + N)
    r = rp.solve(src.start + pd.Timedelta(minutes=5), src.import_price[sl], src.export_price[sl], src.solar_kw[sl],
                 src.load_kw[sl], 0.5)  # fmt: skip
    assert calls[0] == 0 and len(calls) == 2
    assert r.status == "optimal" and rp.cold_retries == 1
