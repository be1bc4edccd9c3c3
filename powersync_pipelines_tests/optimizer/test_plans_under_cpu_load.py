"""The same inputs give the same plan with both cores saturated by busy processes.

Every solve here runs once on the machine as it is and once with ``os.cpu_count()`` spinning processes
competing for the cores; the plans must be identical to the last bit. The burn-repair cases are the ones a
wall-clock limit would cut short under load.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.optimizer import LAST_RESORT_S, Planner, PlannerSettings, Replanner, solve
from powersync_pipelines_tests.cpu_load import busy_cores

from .problems import assert_feasible, realistic_problem
from .test_all_negative_prices import all_negative_day

pytestmark = pytest.mark.cpu_load

PLAN_COLUMNS = ["grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw", "curtail_kw", "soc"]


def _same_plan(a, b) -> None:
    assert (a.status, a.solver, a.repaired_intervals) == (b.status, b.solver, b.repaired_intervals)
    assert a.objective == b.objective
    for c in PLAN_COLUMNS:
        np.testing.assert_array_equal(a.intervals[c].to_numpy(), b.intervals[c].to_numpy(), err_msg=c)


def _same_replans(idle: list, loaded: list) -> None:
    """Warm replans (``Replanner`` decisions) equal to the last bit: status, objective, work and the plan."""
    for a, b in zip(idle, loaded, strict=True):
        assert (a.status, a.objective, a.iterations, a.repaired_intervals) == (b.status, b.objective, b.iterations, b.repaired_intervals)
        np.testing.assert_array_equal(a.battery_charge_kw, b.battery_charge_kw)
        np.testing.assert_array_equal(a.battery_discharge_kw, b.battery_discharge_kw)
        np.testing.assert_array_equal(a.soc, b.soc)


def test_burn_repair_gives_the_same_plan_with_both_cores_busy():
    p = realistic_problem(846, n=576, negative_prices=True, terminal_value="none")  # 2 MILP rounds
    q = all_negative_day(n=288)
    idle = [solve(p, horizon="full"), solve(q, horizon="full"), solve(q, horizon="tiered")]
    with busy_cores():
        loaded = [solve(p, horizon="full"), solve(q, horizon="full"), solve(q, horizon="tiered")]
    for a, b in zip(idle, loaded, strict=True):
        assert a.status == "optimal", a.fallback_reason
        assert a.repaired_intervals > 0
        _same_plan(a, b)
    assert_feasible(p, loaded[0])


def _replay(plan, src, n: int, offsets: range) -> list:
    """Replan every ``offsets`` step over ``src`` (a window of ``n`` intervals), starting each from the SOC the
    previous plan reached after its first interval."""
    out, soc = [], 0.5
    for k in offsets:
        sl = slice(k, k + n)
        r = plan(src.start + pd.Timedelta(minutes=5 * k), src.import_price[sl], src.export_price[sl],
                 src.solar_kw[sl], src.load_kw[sl], soc)  # fmt: skip
        out.append(r)
        soc = float(r.soc[0])
    return out


@pytest.mark.parametrize("horizon", ["full", "tiered"])
def test_warm_replans_give_the_same_plans_with_both_cores_busy(horizon):
    n = 576
    src = realistic_problem(31, n=n + 60, start="2024-10-11T20:00:00Z", negative_prices=True)
    opts = {"export_limit_kw": 5.0, "import_limit_kw": 15.0, "wear_cost_per_kwh": 0.01}

    def run() -> list:
        return _replay(Replanner(src.battery, n, horizon=horizon, **opts).solve, src, n, range(0, 60, 3))

    idle = run()
    with busy_cores():
        loaded = run()
    assert {r.status for r in idle} == {"optimal"}
    _same_replans(idle, loaded)


def test_the_live_planner_gives_the_same_plans_with_both_cores_busy(demo_site):
    """The planner the live cycle and the backtest share (built from a site) on an all-negative day: its
    burn repair and warm replans end by work limits, so loaded plans equal idle ones; the wall clock it
    carries is only the last resort."""
    settings = PlannerSettings.from_site(demo_site)
    assert settings.time_limit_s == LAST_RESORT_S
    n = settings.horizon_steps
    src = all_negative_day(n=n + 20)

    def run() -> list:
        return _replay(Planner(settings).plan, src, n, range(0, 20, 4))

    idle = run()
    with busy_cores():
        loaded = run()
    assert {r.status for r in idle} == {"optimal"}
    assert sum(r.repaired_intervals for r in idle) > 0
    _same_replans(idle, loaded)
