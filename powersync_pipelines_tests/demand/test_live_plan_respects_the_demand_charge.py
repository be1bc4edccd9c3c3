"""The demand charge in the live plan: the shared warm planner prices the window's peak import above the
month's peak so far (from stored telemetry), warm re-solves give the cold answer, and the planned window import
never exceeds the peak the LP reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.config.demand import DemandChargeConfig
from powersync_pipelines.control import cycle
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.services import run_service
from powersync_pipelines.optimizer import DemandCharge, Planner, PlannerSettings, solve
from powersync_pipelines.optimizer.grid import full_bounds
from powersync_pipelines.optimizer.solve import demand_groups
from powersync_pipelines.prices.replay import replay_history
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator
from powersync_pipelines.storage import HistoryStore
from powersync_pipelines.timegrid import horizon_index

NOW = "2024-02-12T20:00:00Z"  # Tue 07:00 local; without a demand charge the plan imports 6 kW at 21:30 local
WINDOW = DemandChargeConfig(start="16:00", end="22:00", price_per_kw_month=10.0)


@pytest.fixture
def battery():
    sim = SungrowSimulator(port=0, capacity_kwh=13.5, soc=0.5, max_charge_kw=5.0, max_discharge_kw=5.0)
    sim.start()
    yield sim
    sim.stop()


def _site(demo_site, port: int, dc: DemandChargeConfig | None):
    return demo_site.model_copy(update={
        "ev": None, "battery": demo_site.battery.model_copy(update={"port": port}),
        "features": demo_site.features.model_copy(update={"demand_charge": dc})})


def _window_peak(store: HistoryStore, site, plan_id: str) -> float:
    df = store.query("SELECT interval_start, grid_import_kw FROM schedule WHERE plan_id = ?", [plan_id])
    ts = pd.Series(df["grid_import_kw"].to_numpy(float), index=pd.DatetimeIndex(pd.to_datetime(df["interval_start"], utc=True)))
    halves = ts.resample("30min").mean()
    local = halves.index.tz_convert(site.timezone)
    inside = (local.hour >= 16) & (local.hour < 22) & (local.weekday < 5)
    return float(halves[inside].max())


def test_a_live_cycle_with_a_demand_charge_plans_a_lower_window_peak(tmp_path, demo_site, battery):
    peaks, stored = {}, {}
    for name, dc in (("without", None), ("with", WINDOW)):
        site = _site(demo_site, battery.port, dc)
        ctx = ControlContext(HistoryStore(tmp_path / f"{name}.duckdb"))
        out = run_service("sync_now", site, {"now": NOW}, ctx)
        assert out["ok"] and out["status"] == "optimal", out
        peaks[name] = _window_peak(ctx.store, site, out["plan_id"])
        stored[name] = ctx.store.query("SELECT demand_peak_kw, demand_cost_avoided FROM plans WHERE plan_id = ?",
                                       [out["plan_id"]]).iloc[0]
    assert peaks["without"] > 5.0  # the plan's evening import at 21:30 local
    assert peaks["with"] <= 1.0, peaks  # the battery covers the window instead
    # the stored plan reports the demand charge it avoids: no-battery window peak minus its own, x the price
    assert pd.isna(stored["without"]["demand_cost_avoided"])  # no demand tariff, nothing to report
    assert stored["with"]["demand_peak_kw"] == pytest.approx(peaks["with"], abs=1e-6)
    assert stored["with"]["demand_cost_avoided"] > 0.0

    # the month's peak so far is sunk: a 3 kW half-hour already measured in the window lets the plan use up to it
    site = _site(demo_site, battery.port, WINDOW)
    ctx = ControlContext(HistoryStore(tmp_path / "month.duckdb"))
    ts = pd.date_range("2024-02-12T06:00Z", periods=6, freq="5min")  # Mon 17:00-17:30 local
    ctx.store.upsert("telemetry", pd.DataFrame({"site_id": site.id, "ts": ts, "grid_import_kw": 3.0}), ["site_id", "ts"])
    out = run_service("sync_now", site, {"now": NOW}, ctx)
    replan = cycle.planner_for(site).replanner
    assert replan.lp.existing_peak == pytest.approx(3.0)
    assert _window_peak(ctx.store, site, out["plan_id"]) <= 3.0 + 1e-6


def _demo_inputs(site, start: pd.Timestamp):
    idx = horizon_index(start)
    prices = replay_history(site).reindex(idx).ffill()
    solar, load, _ = cycle.forecasts(site, start)
    return idx, (prices["import_price"].to_numpy(float), prices["export_price"].to_numpy(float),
                 solar.to_numpy(float), load.to_numpy(float) + 3.0)


@pytest.mark.parametrize("horizon", ["tiered", "full"])
def test_warm_replans_with_a_demand_charge_match_cold_ones_and_solve(demo_site, horizon):
    from powersync_pipelines.demand import demand_charge_for

    settings_ = PlannerSettings.from_site(demo_site, horizon=horizon)
    warm = Planner(settings_)
    t0 = pd.Timestamp("2024-02-13T01:00Z")  # 12:00 local, the window ahead
    for k in range(8):
        t = t0 + pd.Timedelta(minutes=5 * k)
        idx, (imp, exp, solar, load) = _demo_inputs(demo_site, t)
        dc = None if k == 4 else demand_charge_for(idx, WINDOW, demo_site.timezone, 1.5)  # one cycle without
        r = warm.plan(t, imp, exp, solar, load, 0.4, demand_charge=dc)
        cold = Planner(settings_).plan(t, imp, exp, solar, load, 0.4, demand_charge=dc)
        assert r.status == cold.status == "optimal"
        assert r.warm == (k > 0) and not cold.warm
        assert r.objective == pytest.approx(cold.objective, rel=1e-7, abs=1e-6)
        if k in (0, 5):
            ref = solve(settings_.problem(t, imp, exp, solar, load, 0.4, demand_charge=dc), horizon=horizon)
            assert r.to_schedule().objective == pytest.approx(ref.objective, rel=1e-7, abs=1e-6)
        if dc is not None:
            assert r.demand_peak_kw is not None and r.demand_peak_kw >= 1.5 - 1e-9
    assert warm.replans == 8  # one model throughout: built with demand rows on the first plan, never rebuilt


N = 96  # 8 h of 5-min intervals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phase=st.integers(0, 11),
    prices=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    load=st.lists(st.floats(0.0, 8.0), min_size=4, max_size=4),
    solar=st.floats(0.0, 6.0),
    w0=st.integers(0, N - 1), wlen=st.integers(1, N),
    existing=st.floats(0.0, 6.0), price_kw=st.floats(0.0, 30.0), soc=st.floats(0.0, 1.0),
)
def test_planned_window_import_never_exceeds_the_peak(phase, prices, load, solar, w0, wlen, existing, price_kw, soc):
    start = pd.Timestamp("2024-02-12T03:00Z") + pd.Timedelta(minutes=5 * phase)
    rep = np.repeat
    ip = rep(prices, N // 4)
    ld = rep(load, N // 4)
    window = np.zeros(N, dtype=bool)
    window[w0 : w0 + wlen] = True
    dc = DemandCharge(window, price_kw, existing, 30)
    s = PlannerSettings(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, import_limit_kw=20.0,
                        horizon="full", horizon_steps=N)
    r = Planner(s).plan(start, ip, ip * 0.5, np.full(N, solar), ld, soc, demand_charge=dc)
    assert r.status == "optimal" and r.demand_peak_kw is not None
    assert r.demand_peak_kw >= existing - 1e-9
    for blk in demand_groups(dc, start, 5, full_bounds(N)):
        avg = float(np.sum(r.grid_import_kw[blk.periods])) * (5 / 60) / blk.hours
        assert avg <= r.demand_peak_kw + 1e-6
