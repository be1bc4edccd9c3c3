"""The LP with an EV meets the departure target at least cost: checked against brute force on a small case."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.optimizer import BatteryParams, EvRequirement, OptimizationProblem, solve

START = pd.Timestamp("2024-03-01T00:00Z")


def brute_force(price, export, solar, load, e0, cap, p_bat, ev_need, ev_max, deadline_k, imp_lim, battery_to_ev):
    """Minimum cost over every whole-kWh battery and EV schedule (1-hour periods, efficiency 1, no wear)."""
    n = len(price)
    best = np.inf
    bat_levels = range(-p_bat, p_bat + 1)  # + charge, - discharge (kWh per hour)
    ev_levels = range(0, ev_max + 1)
    for ev in itertools.product(ev_levels, repeat=n):
        if sum(ev) < ev_need or any(ev[k] > 0 for k in range(deadline_k, n)):
            continue
        for b in itertools.product(bat_levels, repeat=n):
            soc = e0 + np.cumsum(b)
            if soc.min() < 0 or soc.max() > cap:
                continue
            net = load - solar + np.array(b) + np.array(ev)
            if net.max() > imp_lim:
                continue
            dis = np.maximum(-np.array(b), 0)
            if not battery_to_ev and np.any((np.array(ev) > 0) & (dis > np.maximum(load - solar, 0))):
                continue  # while the car charges, the battery covers the house only
            cost = float(np.sum(np.where(net > 0, net * price, net * export)))
            best = min(best, cost)
    return best


@pytest.mark.parametrize("battery_to_ev", [True, False])
@pytest.mark.parametrize("case", range(4))
def test_lp_with_ev_meets_the_target_at_least_cost(case, battery_to_ev):
    rng = np.random.default_rng(100 + case)
    n = 5
    price = rng.choice([0.1, 0.2, 0.3, 0.5, 1.0], size=n)
    export = price - 0.15
    solar = rng.choice([0.0, 1.0, 3.0], size=n).astype(float)
    load = rng.choice([1.0, 2.0], size=n).astype(float)
    e0, cap, p_bat, ev_need, ev_max, deadline_k, imp_lim = 2, 4, 2, 5, 3, 4, 6
    free = brute_force(price, export, solar, load, e0, cap, p_bat, ev_need, ev_max, deadline_k, imp_lim, True)
    ruled = free if battery_to_ev else brute_force(price, export, solar, load, e0, cap, p_bat, ev_need, ev_max,
                                                   deadline_k, imp_lim, False)
    p = OptimizationProblem(START, price, export, solar, load, BatteryParams(cap, e0 / cap, p_bat, p_bat, 1.0, 1.0, 0.0),
                            interval_minutes=60, import_limit_kw=imp_lim, wear_cost_per_kwh=0.0, terminal_value="none",
                            ev=EvRequirement(ev_need, START + pd.Timedelta(hours=deadline_k), ev_max, battery_to_ev))
    r = solve(p, horizon="full")
    df = r.intervals
    assert r.status == "optimal"
    assert df["ev_kw"].iloc[:deadline_k].sum() == pytest.approx(ev_need, abs=1e-6)  # the target, by departure
    assert df["ev_kw"].iloc[deadline_k:].sum() == pytest.approx(0, abs=1e-9)
    if battery_to_ev:
        assert r.cost == pytest.approx(free, abs=1e-6)  # least cost: no whole-kWh schedule is cheaper, and it reaches it
    else:
        # the LP's battery-out-of-the-car rows are the linear hull of the exact rule: never dearer than the best
        # schedule that obeys it exactly, never cheaper than the best one without it
        assert free - 1e-6 <= r.cost <= ruled + 1e-6
        ev = df["ev_kw"].to_numpy()
        full = ev >= ev_max - 1e-6
        assert np.all(df["battery_discharge_kw"].to_numpy()[full] <= np.maximum(load - solar, 0)[full] + 1e-6)
