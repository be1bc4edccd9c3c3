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
    ev = np.array(list(itertools.product(range(ev_max + 1), repeat=n)), dtype=float)  # (E, n)
    ev = ev[(ev.sum(axis=1) >= ev_need) & (ev[:, deadline_k:].sum(axis=1) == 0)]
    b = np.array(list(itertools.product(range(-p_bat, p_bat + 1), repeat=n)), dtype=float)  # (B, n): + charge
    soc = e0 + np.cumsum(b, axis=1)
    b = b[(soc.min(axis=1) >= 0) & (soc.max(axis=1) <= cap)]
    net = (load - solar)[None, None, :] + b[None, :, :] + ev[:, None, :]  # (E, B, n)
    ok = (net <= imp_lim).all(axis=2)
    if not battery_to_ev:  # while the car charges, the battery covers the house only
        dis = np.maximum(-b, 0.0)[None, :, :]
        ok &= ~((ev[:, None, :] > 0) & (dis > np.maximum(load - solar, 0.0))).any(axis=2)
    cost = np.where(net > 0, net * price, net * export).sum(axis=2)
    return float(np.where(ok, cost, np.inf).min())


@pytest.mark.parametrize("battery_to_ev", [True, False])
@pytest.mark.parametrize("case", range(8))
def test_lp_with_ev_meets_the_target_at_least_cost(case, battery_to_ev):
    rng = np.random.default_rng(100 + case)
    n = 4
    price = rng.choice([0.1, 0.2, 0.3, 0.5, 1.0], size=n)
    export = price - 0.15
    solar = rng.choice([0.0, 1.0, 3.0], size=n).astype(float)
    load = rng.choice([1.0, 2.0], size=n).astype(float)
    e0, cap, p_bat, ev_need, ev_max, deadline_k, imp_lim = 2, 4, 2, 5, 3, 3, 6
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
