"""A small walk-forward backtest through the learned model: the engine's plug-in finds it, it refits per day
on earlier data only, and the summary names the model and reports captured savings per month."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestConfig, ForecastOptions, available_forecasts, run_backtest
from powersync_pipelines.backtest.forecasts import make_forecast

from ._prices import backtest_data, rrp_series


def _spec():
    from powersync_pipelines.backtest import BatterySpec

    return BatterySpec(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, charge_efficiency=0.95,
                       discharge_efficiency=0.95, reserve=0.1, soc_initial=0.5, export_limit_kw=5.0,
                       import_limit_kw=15.0, wear_cost_per_kwh=0.01)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three weeks of prices: the learned model gets the 18 days before the backtest data as stored history."""
    s = rrp_series(days=24, seed=4, spike_rate=0.05)
    cut = s.index[18 * 288]
    hist = tmp_path_factory.mktemp("hist") / "history.csv"
    pd.DataFrame({"interval_start": [t.isoformat() for t in s.index[s.index < cut]],
                  "rrp": s[s.index < cut].to_numpy()}).to_csv(hist, index=False)
    data = backtest_data(s[s.index >= cut - pd.Timedelta(days=1)], history_days=1, days=2)
    out = {}
    for name in ("learned", "persistence"):
        cfg = BacktestConfig(strategies=("lp",), forecast=name, workers=1, progress=False,
                             forecast_options=ForecastOptions(params=(("history", str(hist)),)))
        out[name] = run_backtest(data, _spec(), cfg).summary
    return data, out, hist


def test_the_plugin_registers_learned_and_blended():
    assert {"learned", "blended", "persistence", "provider"} <= set(available_forecasts())


def test_summary_names_the_model_and_reports_monthly_capture(runs):
    data, out, _ = runs
    s = out["learned"]
    assert s["forecast_model"] == "learned"
    assert s["monthly"] and all(m["capture_ratio"] is not None for m in s["monthly"])
    assert s["capture_ratio"] > 0  # the learned plan saves money
    # ...and cannot beat perfect foresight, except by draining energy the bound keeps at the window's end (the
    # bill does not count stored energy; the bound's objective values it): that energy is worth at most the
    # dearest import price of the window.
    drained_kwh = max(0.0, s["strategies"]["perfect_foresight"]["soc_end"] - s["strategies"]["lp"]["soc_end"]) * 13.5
    worth = drained_kwh * float(data.import_price[data.i0:data.i1].max())
    assert s["cost"] >= s["perfect_foresight_cost"] - worth - 1e-6


def test_learned_captures_most_of_a_stable_daily_shape(runs):
    """A world whose shape repeats (with noise and evening spikes): a profile learned from 18 days plus the
    current price must capture most of the bound, as yesterday's prices nearly do there."""
    _, out, _ = runs
    assert out["learned"]["capture_ratio"] >= 0.8
    assert out["persistence"]["capture_ratio"] >= 0.8


def test_walk_forward_refits_once_per_local_day(runs):
    data, _, hist = runs
    fc = make_forecast("learned", data, ForecastOptions(params=(("history", str(hist)),)))
    for i in range(data.i0, data.i1, 6):
        fc.prices(i, 576)
    days = len(set(fc.day_start[data.i0:data.i1]))
    assert fc.fits == days
    # Each model in force was fitted strictly before the day it serves.
    assert all(m is not None and m.train_end < day for day, m in fc._models.items())
    # ...on the stored history (17 days) as well as the data, not only the 1 day the backtest data carries.
    assert all(m.n_train >= 18 * 288 for m in fc._models.values())
