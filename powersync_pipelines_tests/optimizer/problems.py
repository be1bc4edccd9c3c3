"""Realistic random optimisation problems and plan checks shared by the optimizer tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem, ScheduleResult

TOL = 1e-6


def realistic_problem(
    seed: int,
    n: int = 96,
    start: str = "2024-10-11T14:00:00Z",
    negative_prices: bool = False,
    soc_at_least_reserve: bool = True,
    terminal_value: str | float = "auto",
    wear: float | None = None,
    interval_minutes: int = 5,
    spikes: bool = True,
) -> OptimizationProblem:
    """A home with rooftop solar on a dynamic tariff: daily price shape, noise, rare spikes, evening load."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    hours = ((np.arange(n) * interval_minutes / 60.0) + (t0.hour + 10) % 24) % 24  # ~AEST local hour
    base = 0.22 + 0.25 * np.exp(-(((hours - 18.5) / 2.0) ** 2)) - 0.12 * np.exp(-(((hours - 12.5) / 3.0) ** 2))
    imp = base * rng.uniform(0.7, 1.3) + rng.normal(0, 0.03, n)
    spike = (rng.random(n) < 0.01) & spikes
    imp[spike] += rng.uniform(1.0, 5.0, spike.sum())
    if negative_prices:
        dip = (hours > 10) & (hours < 15) & (rng.random(n) < 0.7)
        imp[dip] = rng.uniform(-0.15, 0.0, dip.sum())
    margin = rng.uniform(0.05, 0.15)
    exp = imp - margin
    if not negative_prices:
        exp = np.maximum(exp, 0.0)
    peak_pv = rng.uniform(0.0, 8.0)
    solar = np.clip(peak_pv * np.sin((hours - 6.0) / 12.0 * np.pi), 0.0, None) * rng.uniform(0.6, 1.0, n)
    load = 0.3 + rng.uniform(0, 0.6) + 2.0 * np.exp(-(((hours - 19.0) / 2.0) ** 2)) + rng.exponential(0.3, n)
    cap = float(rng.uniform(5.0, 20.0))
    reserve = float(rng.uniform(0.0, 0.3))
    soc0 = float(rng.uniform(reserve if soc_at_least_reserve else 0.0, 1.0))
    bat = BatteryParams(
        capacity_kwh=cap,
        soc_initial=soc0,
        max_charge_kw=float(rng.uniform(2.0, 10.0)),
        max_discharge_kw=float(rng.uniform(2.0, 10.0)),
        charge_efficiency=float(rng.uniform(0.85, 1.0)),
        discharge_efficiency=float(rng.uniform(0.85, 1.0)),
        reserve=reserve,
    )
    export_limit = None if rng.random() < 0.3 else float(rng.uniform(1.0, 10.0))
    import_limit = None if rng.random() < 0.5 else float(load.max() + rng.uniform(1.0, 15.0))
    return OptimizationProblem(
        start=t0,
        import_price=np.round(imp, 5),
        export_price=np.round(exp, 5),
        solar_kw=np.round(solar, 4),
        load_kw=np.round(load, 4),
        battery=bat,
        interval_minutes=interval_minutes,
        export_limit_kw=export_limit,
        import_limit_kw=import_limit,
        wear_cost_per_kwh=float(rng.uniform(0.0, 0.03)) if wear is None else wear,
        terminal_value=terminal_value,
    )


def assert_feasible(p: OptimizationProblem, r: ScheduleResult, grid_limits: bool = True) -> None:
    """Energy balance per interval, SOC dynamics and bounds, power/grid limits, no simultaneity.

    ``grid_limits=False`` for tiered plans: a coarse period holds the import/export limits on its average.
    """
    df = r.intervals
    b = p.battery
    assert len(df) == p.n
    imp, exp = df.grid_import_kw.to_numpy(), df.grid_export_kw.to_numpy()
    chg, dis = df.battery_charge_kw.to_numpy(), df.battery_discharge_kw.to_numpy()
    cur, soc = df.curtail_kw.to_numpy(), df.soc.to_numpy()
    ev = df["ev_kw"].to_numpy() if "ev_kw" in df else 0.0
    balance = imp - exp - chg + dis - cur - ev - (p.load_kw - p.solar_kw)
    assert np.abs(balance).max() <= TOL, f"energy balance off by {np.abs(balance).max()}"
    for a in (imp, exp, chg, dis, cur):
        assert a.min() >= -TOL
    assert (cur <= p.solar_kw + TOL).all()
    dt = p.dt_hours
    e = np.concatenate([[b.soc_initial], soc]) * b.capacity_kwh
    step = np.diff(e) - (b.charge_efficiency * chg - dis / b.discharge_efficiency) * dt
    assert np.abs(step).max() <= 1e-5, f"SOC dynamics off by {np.abs(step).max()}"
    assert soc.max() <= 1 + TOL
    floor = b.reserve if b.soc_initial >= b.reserve else min(b.reserve, b.soc_initial)
    assert soc.min() >= floor - TOL, f"SOC {soc.min()} below floor {floor}"
    assert (chg <= b.max_charge_kw + TOL).all() and (dis <= b.max_discharge_kw + TOL).all()
    if grid_limits:
        assert (exp <= p.export_limit_kw + TOL).all()
        assert (imp <= p.import_limit_kw + TOL).all()
    both_battery = (chg > TOL) & (dis > TOL)
    both_grid = (imp > TOL) & (exp > TOL)
    assert not both_battery.any(), f"simultaneous charge and discharge at {np.flatnonzero(both_battery)[:5]}"
    assert not both_grid.any(), f"simultaneous import and export at {np.flatnonzero(both_grid)[:5]}"
