"""Live and backtest plan with the same planner: the same settings from the site, the same first action for the
same inputs, and the live planner stays warm between cycles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest.battery import ACTION_CODES, BatterySpec
from powersync_pipelines.backtest.engine import BacktestConfig
from powersync_pipelines.backtest.planners import REPLANNER_TIME_LIMIT_S, LpPlanner
from powersync_pipelines.control import cycle
from powersync_pipelines.optimizer import PlannerSettings
from powersync_pipelines.prices.replay import replay_history
from powersync_pipelines.timegrid import HORIZON_STEPS, horizon_index


def _inputs(site, start: pd.Timestamp) -> tuple[np.ndarray, ...]:
    idx = horizon_index(start)
    prices = replay_history(site).reindex(idx).ffill()
    solar, load, _ = cycle.forecasts(site, start)
    return (prices["import_price"].to_numpy(float), prices["export_price"].to_numpy(float), solar.to_numpy(float),
            load.to_numpy(float))


def test_the_backtest_builds_the_live_planner_settings(demo_site):
    cfg = BacktestConfig()
    backtest = BatterySpec.from_site(demo_site).planner_settings(
        horizon=cfg.horizon, horizon_steps=int(cfg.horizon_hours * 12), terminal_value=cfg.terminal_value,
        time_limit_s=REPLANNER_TIME_LIMIT_S)
    assert backtest == PlannerSettings.from_site(demo_site) == cycle.planner_for(demo_site).settings
    assert backtest.horizon == "tiered" and backtest.horizon_steps == HORIZON_STEPS


@pytest.mark.parametrize(("start", "soc"), [("2024-02-12T20:00Z", 0.5), ("2024-02-13T02:00Z", 0.3),
                                            ("2024-02-14T03:00Z", 0.9), ("2024-02-16T10:35Z", 0.2)])
def test_live_and_backtest_give_the_same_first_action(demo_site, start, soc):
    t = pd.Timestamp(start)
    imp, exp, solar, load = _inputs(demo_site, t)
    live = cycle.plan_schedule(demo_site, t, pd.DataFrame({"import_price": imp, "export_price": exp},
                                                          index=horizon_index(t)),
                               pd.Series(solar, index=horizon_index(t)), pd.Series(load, index=horizon_index(t)), soc)
    first = live.result.intervals.iloc[0]
    backtest = LpPlanner(BatterySpec.from_site(demo_site), HORIZON_STEPS).first(t, imp, exp, solar, load, soc)
    assert backtest[0] == ACTION_CODES[first["action"]]
    assert backtest[1] == pytest.approx(first["battery_charge_kw"], abs=1e-6)
    assert backtest[2] == pytest.approx(first["battery_discharge_kw"], abs=1e-6)


def test_the_live_planner_stays_warm_between_cycles_and_rebuilds_when_the_battery_changes(demo_site):
    t = pd.Timestamp("2024-02-12T20:00Z")
    planner = cycle.planner_for(demo_site)
    imp, exp, solar, load = _inputs(demo_site, t)
    planner.plan(t, imp, exp, solar, load, 0.5)
    step = t + pd.Timedelta(minutes=5)
    imp, exp, solar, load = _inputs(demo_site, step)
    again = cycle.planner_for(demo_site)
    assert again is planner
    assert again.plan(step, imp, exp, solar, load, 0.49).warm
    bigger = demo_site.model_copy(update={"battery": demo_site.battery.model_copy(update={"capacity_kwh": 27.0})})
    assert cycle.planner_for(bigger) is not planner
