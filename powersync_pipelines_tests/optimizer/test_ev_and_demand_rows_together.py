"""An EV requirement (battery not allowed to feed the car) and a demand charge in one LP: each set of rows binds
only where it should, so the battery still carries the house through the demand window after the car is done."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.optimizer import (
    BatteryParams,
    DemandCharge,
    EvRequirement,
    OptimizationProblem,
    solve,
)


@pytest.mark.parametrize("horizon", ["full", "tiered"])
def test_the_battery_covers_the_window_while_the_car_rows_hold_elsewhere(horizon):
    start = pd.Timestamp("2024-02-12T00:00Z")
    n = 288
    idx = pd.date_range(start, periods=n, freq="5min")
    h = np.arange(n) / 12.0
    price = np.where(h < 6, 0.10, 0.30)
    load = np.where((h >= 16) & (h < 19), 4.0, 0.8)
    window = (h >= 16) & (h < 19)
    p = OptimizationProblem(start, price, np.full(n, 0.02), np.zeros(n), load, BatteryParams(13.5, 0.9, 5.0, 5.0),
                            import_limit_kw=20.0, export_limit_kw=5.0, terminal_value=0.1,
                            ev=EvRequirement(10.0, start + pd.Timedelta(hours=4), 7.36, battery_to_ev=False),
                            demand_charge=DemandCharge(window, 15.0, 0.0, 30))
    r = solve(p, horizon=horizon)
    df = r.intervals
    assert r.status == "optimal" and r.extras["ev_target_met"]
    in_window = df.index.isin(idx[window])
    assert df.loc[in_window, "battery_discharge_kw"].mean() > 2.0  # the battery carries the evening
    assert r.extras["demand_peak_kw"] < 1.0  # so the billed peak stays far below the 4 kW house
    car = df["ev_kw"] > 1e-6
    # while the car charges the battery covers at most the house: nothing of it goes into the car
    assert (df.loc[car, "battery_discharge_kw"] <= df.loc[car, "load_kw"] + 1e-6).all()
