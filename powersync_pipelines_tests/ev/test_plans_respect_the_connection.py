"""Property: whatever the house, the sun, the prices and the mode, a planned car never takes the site's import
over the connection limit, charges only in whole amps within the charger, and never after departure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from powersync_pipelines.ev.modes import plan_session
from powersync_pipelines.ev.session import ChargerLimits, EvSession
from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem

START = pd.Timestamp("2024-02-12T06:00Z")
N = 72  # 6 h
kw = arrays(np.float64, N, elements=st.floats(0, 12, allow_nan=False))
price = arrays(np.float64, N, elements=st.floats(-0.2, 2.0, allow_nan=False))


@settings(max_examples=25, deadline=None)
@given(load=kw, solar=kw, imp=price, limit=st.floats(4, 20), soc=st.floats(0, 1), energy=st.floats(0, 40),
       hours=st.floats(0.5, 6), three=st.booleans(), mode=st.sampled_from(["solar_only", "solar_preferred",
                                                                             "cost_optimized", "time_critical"]),
       allow=st.booleans())
def test_planned_car_stays_within_the_connection_and_the_charger(load, solar, imp, limit, soc, energy, hours, three,
                                                                 mode, allow):
    p = OptimizationProblem(START, imp, imp - 0.1, solar, load, BatteryParams(13.5, soc, 5.0, 5.0),
                            export_limit_kw=5.0, import_limit_kw=limit)
    lim = ChargerLimits(6, 16, 3, 230) if three else ChargerLimits(6, 32, 1, 230)
    s = EvSession(START, START + pd.Timedelta(hours=hours), energy, lim, 0.9, mode, allow)
    plan = plan_session(p, s, mode)
    a = plan.amps
    assert np.all((a == 0) | ((a >= lim.min_amps) & (a <= lim.max_amps)))
    ends = plan.index + pd.Timedelta(minutes=5)
    assert not a[ends > s.departure].any()
    if plan.schedule is not None:
        chg = plan.schedule.intervals["battery_charge_kw"].to_numpy()
    else:
        from powersync_pipelines.optimizer import solve

        chg = solve(p, horizon="full").intervals["battery_charge_kw"].to_numpy()
    house = load - solar + chg
    assert np.all(house + plan.ev_kw <= np.maximum(limit, house) + 1e-6)
    assert plan.energy_kwh <= max(energy, 0) + lim.max_kw * 0.9 * 5 / 60 + 1e-6
