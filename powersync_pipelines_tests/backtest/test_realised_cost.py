"""The reported money is the interval table's money: recomputed here independently, row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestConfig, run_backtest

from ._synthetic import spec, world


@pytest.fixture(scope="module")
def result():
    return run_backtest(world(days=2), spec(), BacktestConfig(strategies=("lp", "greedy", "self_consumption"),
                                                               forecast="persistence", progress=False))


def test_costs_recomputed_from_the_interval_table(result):
    iv = result.intervals
    s = result.summary
    mine = {}
    for strategy, g in iv.groupby("strategy"):
        # $ = (kW imported x $/kWh - kW exported x $/kWh) x 5/60 h, summed over the window
        mine[strategy] = float(((g.grid_import_kw * g.import_price - g.grid_export_kw * g.export_price) * (5 / 60)).sum())
    assert set(mine) == {"none", "self_consumption", "greedy", "lp", "perfect_foresight"}
    assert s["baseline_cost"] == pytest.approx(mine["none"], abs=1e-3)
    assert s["cost"] == pytest.approx(mine["lp"], abs=1e-3)
    assert s["self_consumption_cost"] == pytest.approx(mine["self_consumption"], abs=1e-3)
    assert s["perfect_foresight_cost"] == pytest.approx(mine["perfect_foresight"], abs=1e-3)
    assert s["savings"] == pytest.approx(mine["none"] - mine["lp"], abs=1e-3)
    assert s["capture_ratio"] == pytest.approx((mine["none"] - mine["lp"]) / (mine["none"] - mine["perfect_foresight"]), abs=1e-3)
    for strategy, v in s["strategies"].items():
        assert v["cost"] == pytest.approx(mine[strategy], abs=1e-3)


def test_every_interval_balances_and_the_baseline_is_the_house(result):
    iv = result.intervals
    supply = iv.grid_import_kw + iv.solar_kw - iv.curtail_kw + iv.battery_discharge_kw
    demand = iv.load_kw + iv.battery_charge_kw + iv.grid_export_kw
    # the perfect-foresight LP reports its own flows (solver tolerance); replayed strategies are exact
    assert np.abs(supply - demand).max() < 1e-5
    none = iv[iv.strategy == "none"]
    net = none.load_kw - none.solar_kw
    assert np.allclose(none.grid_import_kw, net.clip(lower=0)) and np.allclose(none.grid_export_kw, (-net).clip(lower=0))
    assert (none.battery_charge_kw == 0).all() and (none.battery_discharge_kw == 0).all()
    assert np.allclose(iv.savings, iv.baseline_cost - iv.cost)


def test_window_is_exactly_the_accounted_intervals(result):
    iv = result.intervals
    assert result.summary["intervals"] == 576
    for _, g in iv.groupby("strategy"):
        idx = pd.DatetimeIndex(g.interval_start)
        assert len(idx) == 576 and idx.is_monotonic_increasing and (idx.to_series().diff().dropna() == pd.Timedelta("5min")).all()
        assert idx[0] == pd.Timestamp("2024-03-10T13:00:00Z")
    s = result.summary
    assert s["replans"] > 576  # lp every step, greedy every 30 minutes
    assert s["planner_fallbacks"] == 0
    assert s["elapsed_s"] > 0 and s["replans_per_s"] == pytest.approx(s["replans"] / s["elapsed_s"], rel=0.01)
