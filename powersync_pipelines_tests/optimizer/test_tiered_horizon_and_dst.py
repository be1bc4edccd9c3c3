"""The tiered grid: aligned to UTC, expanded back to the full 5-min grid, close to the full optimum, DST-proof."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.optimizer import solve
from powersync_pipelines.optimizer.grid import max_tiered_periods, tiered_bounds
from powersync_pipelines.optimizer.heuristics import baseline_plan
from powersync_pipelines.optimizer.solve import plan_objective, prepare

from .problems import assert_feasible, realistic_problem

# local midnight on DST change days: 46 half-hours (clocks forward) or 50 (clocks back)
DST_DAYS = [
    ("Australia/Sydney", "2024-10-06", 46),
    ("Australia/Sydney", "2024-04-07", 50),
    ("Europe/London", "2024-03-31", 46),
    ("Europe/London", "2024-10-27", 50),
]


@pytest.mark.parametrize("minute", range(0, 60, 5))
def test_tier_edges_sit_on_utc_half_hours_and_hours_for_every_start_phase(minute):
    start = pd.Timestamp(f"2024-10-11T14:{minute:02d}:00Z")
    b = tiered_bounds(start, 576)
    assert b[0] == 0 and b[-1] == 576 and (np.diff(b) > 0).all()
    times = start + pd.to_timedelta(b[:-1] * 5, unit="min")
    lengths = np.diff(b) * 5
    assert set(lengths[:-1]) <= {5, 30, 60}
    assert (times[lengths == 30].minute % 30 == 0).all()
    assert (times[lengths == 60].minute == 0).all()
    # 5-min for at least the first 6 h, nothing coarser than 30 min before 24 h
    assert (lengths[: 6 * 12] == 5).all()
    assert (lengths[(b[:-1] < 24 * 12)] <= 30).all()
    assert len(b) - 1 <= max_tiered_periods(576) < 576 // 3


def _hour_smooth(a: np.ndarray) -> np.ndarray:
    return np.convolve(np.pad(a, (6, 5), mode="edge"), np.ones(12) / 12, "valid")


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_tiered_plan_is_feasible_on_the_full_grid_and_never_worse_than_idle(seed):
    p = realistic_problem(seed, n=576)
    full = solve(p, horizon="full")
    tiered = solve(p, horizon="tiered")
    assert tiered.status == "optimal" and tiered.lp_periods < 200
    assert len(tiered.intervals) == 576 and tiered.intervals.index.equals(full.intervals.index)
    assert_feasible(p, tiered, grid_limits=False)
    # both objectives are evaluated on the same 5-min data; the coarse plan can only be worse than full
    assert full.objective <= tiered.objective + 1e-6
    prep = prepare(p)
    idle = plan_objective(prep, baseline_plan(p.solar_kw, p.load_kw, prep.e0, p.export_limit_kw))
    assert tiered.objective <= idle + 1e-6


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_tiered_gap_is_small_when_prices_and_load_move_hourly(seed):
    # 5-min noise and spikes beyond 6 h are what a coarse grid gives up; with hourly shapes it loses little
    p = realistic_problem(seed, n=576, spikes=False)
    p.import_price = _hour_smooth(p.import_price)
    p.export_price = np.maximum(p.import_price - 0.1, 0.0)
    p.load_kw = _hour_smooth(p.load_kw)
    full, tiered = solve(p, horizon="full"), solve(p, horizon="tiered")
    gap = (tiered.objective - full.objective) / max(1.0, abs(full.baseline_cost))
    assert -1e-9 <= gap < 0.05, f"tiered plan {gap:.1%} of baseline worse than full"


@pytest.mark.parametrize(("tz", "day", "half_hours"), DST_DAYS)
def test_dst_days_keep_a_regular_utc_grid(tz, day, half_hours):
    local_midnight = pd.Timestamp(day, tz=tz)
    next_midnight = pd.Timestamp(pd.Timestamp(day) + pd.Timedelta(days=1), tz=tz)
    start = local_midnight.tz_convert("UTC")
    p = realistic_problem(11, n=576, start=start.isoformat())
    for horizon in ("full", "tiered"):
        r = solve(p, horizon=horizon)
        assert r.status == "optimal"
        idx = r.intervals.index
        assert str(idx.tz) == "UTC" and (np.diff(idx.asi8) == 300 * 10**9).all()
        local_day = idx[(idx >= local_midnight) & (idx < next_midnight)]
        assert len(local_day) == half_hours * 6  # the local day really has 46 or 50 half-hours
        assert_feasible(p, r, grid_limits=horizon == "full")
