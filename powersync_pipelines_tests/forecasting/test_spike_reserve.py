"""The spike-reserve rule: where P90 says a spike is plausible the planner sees a lifted price, so the plan
keeps energy for that window instead of spending it on a modest earlier spread; elsewhere nothing changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from powersync_pipelines.forecasts.price_mapping import spike_reserve_prices
from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem, solve

from ._prices import RETAIL_MAPS


def test_the_rule_lifts_only_spike_plausible_slots_and_never_the_current_one():
    mean = np.array([5000.0, 100.0, 120.0, 150.0, 90.0])
    p90 = np.array([5000.0, 200.0, 900.0, 3000.0, 100.0])
    out = spike_reserve_prices(mean, p90, threshold=300.0, weight=0.5)
    np.testing.assert_allclose(out, [5000.0, 100.0, 510.0, 1575.0, 90.0])
    np.testing.assert_array_equal(spike_reserve_prices(mean, p90, 300.0, weight=0.0), mean)


def _plan(rrp_plan: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    imap, emap = RETAIL_MAPS
    n = len(rrp_plan)
    problem = OptimizationProblem(
        start=start, import_price=imap(rrp_plan), export_price=emap(rrp_plan), solar_kw=np.zeros(n),
        load_kw=np.full(n, 1.0),
        battery=BatteryParams(capacity_kwh=13.5, soc_initial=0.6, max_charge_kw=5.0, max_discharge_kw=5.0, reserve=0.1),
        export_limit_kw=5.0, import_limit_kw=15.0, terminal_value=0.0,
    )
    return solve(problem, horizon="full").intervals


def test_a_plausible_spike_keeps_energy_in_reserve_until_it():
    start = pd.Timestamp("2024-06-12T05:00:00Z")  # 15:00 local, 12 h ahead
    n = 144
    h = np.arange(n) / 12  # hours ahead
    mean = np.where((h >= 2) & (h < 5), 250.0, 80.0)  # a dear evening from 17:00 to 20:00 local
    p90 = mean + 60.0
    window = (h >= 4) & (h < 4.5)  # 19:00-19:30: P90 at the cap-like level
    p90[window] = 8000.0
    plain = _plan(mean, start)
    reserved = _plan(spike_reserve_prices(mean, p90, threshold=300.0, weight=0.5), start)
    at = int(np.argmax(window))
    # Enough to discharge 5 kW (house 1 kW, export 4 kW) through the 30-minute window, above the 10% reserve.
    need = 0.1 + (5.0 * 0.5 / 0.95) / 13.5
    # Without the rule the battery is spent on the 17:00-19:00 evening; with it the energy is still there.
    assert plain["soc"].iloc[at - 1] < need - 0.05
    assert reserved["soc"].iloc[at - 1] >= need - 0.01
    assert reserved["battery_discharge_kw"].iloc[at:at + 6].min() > 4.99  # full power through the window
    # It buys that energy in the cheap hours before the evening (charging more than the plain plan).
    assert reserved["battery_charge_kw"].iloc[:24].sum() > plain["battery_charge_kw"].iloc[:24].sum()


def test_without_a_plausible_spike_the_plan_is_unchanged():
    start = pd.Timestamp("2024-06-12T05:00:00Z")
    h = np.arange(144) / 12
    mean = np.where((h >= 2) & (h < 5), 250.0, 80.0)
    calm = _plan(spike_reserve_prices(mean, mean + 40.0, threshold=300.0, weight=0.5), start)
    pd.testing.assert_frame_equal(calm, _plan(mean, start))
