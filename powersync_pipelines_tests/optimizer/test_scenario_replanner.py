"""Expected-value planning over price scenarios (optimizer.scenarios): one shared first interval, K futures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.optimizer import BatteryParams, ProblemError, Replanner
from powersync_pipelines.optimizer.scenarios import ScenarioReplanner

from .problems import realistic_problem

N = 576
OPTS = {"export_limit_kw": 5.0, "import_limit_kw": 20.0, "wear_cost_per_kwh": 0.01, "terminal_value": "auto"}
START = pd.Timestamp("2024-06-03T06:00:00Z")  # 16:00 in Melbourne


def test_one_scenario_is_the_single_path_replanner():
    """K = 1 is the Replanner's LP: same first-interval decision and objective on realistic problems."""
    for seed in range(8):
        p = realistic_problem(seed, n=N, start="2024-10-11T14:00:00Z")
        bat = p.battery
        rp = Replanner(bat, N, horizon="tiered", **OPTS)
        sp = ScenarioReplanner(bat, N, 1, **OPTS)
        r = rp.solve(p.start, p.import_price, p.export_price, p.solar_kw, p.load_kw, bat.soc_initial)
        d = sp.solve(p.start, p.import_price[None], p.export_price[None], None, p.solar_kw, p.load_kw,
                     bat.soc_initial)
        assert d.status == "optimal"
        assert d.expected_cost == pytest.approx(r.objective, abs=1e-6)
        net = r.battery_charge_kw[0] - r.battery_discharge_kw[0]
        assert d.battery_charge_kw - d.battery_discharge_kw == pytest.approx(net, abs=1e-5)


def _evening(spike: float, n: int = N) -> np.ndarray:
    """$/kWh import: 0.25 flat, with ``spike`` over 18:00-18:30 local (slots 24-29 from 16:00)."""
    ip = np.full(n, 0.25)
    ip[24:30] = spike
    return ip


def test_energy_is_held_for_a_spike_only_when_its_probability_pays():
    """At 16:00 the battery holds just what a half hour at 5 kW needs; exporting is worth 0.35 now, later
    only 0.20 (and buying back is dearer than any spike); a 3 $/kWh half hour at 18:00 comes in some
    scenarios.

    A kWh held earns ~0.95 x 2.95 in a spike scenario and ~0.95 x 0.20 otherwise. With one spike scenario
    of ten, holding pays (0.28 + 0.17 > 0.35) and the battery keeps what the spike needs; with every scenario
    flat, it exports now.
    """
    soc = 0.1 + 2.7 / 13.5
    bat = BatteryParams(13.5, soc, 5.0, 5.0, 0.95, 0.95, 0.1)
    solar, load = np.zeros(N), np.zeros(N)
    for spikes, expect_export in ((0, True), (1, False)):
        ip = np.full((10, N), 5.0)
        ep = np.full((10, N), 0.20)
        ep[:spikes, 24:30] = 3.0
        ep[:, 0] = 0.35
        sp = ScenarioReplanner(bat, N, 10, **{**OPTS, "terminal_value": 0.0})  # leftover energy worth nothing
        d = sp.solve(START, ip, ep, None, solar, load, soc)
        assert d.status == "optimal"
        if expect_export:
            assert d.action == "EXPORT" and d.battery_discharge_kw == pytest.approx(5.0)
        else:
            # only the surplus beyond the spike's 2.5 kWh (0.065 kWh = 0.78 kW for 5 minutes) is sold now
            assert d.battery_discharge_kw == pytest.approx((2.7 * 0.95 - 2.5) * 12, abs=1e-6)
        # every chain starts from the same first interval (the decision executed now)
        assert np.allclose(d.soc[:, 0], d.soc[0, 0])


def test_the_scenario_plan_buys_for_one_spike_where_the_average_price_buys_for_six():
    """Six equally likely evenings, each with one 2.5 $/kWh half hour at a different time (otherwise 0.30).

    The battery already holds what one half hour at 5 kW needs. Any one future has one spike, so more energy
    is worth only the ordinary 0.30 x 0.95 < 0.295 it costs to buy now: the scenario plan does not charge.
    Averaged into one path the six half hours each look like 0.67 $/kWh, so the mean-path plan fills up.
    """
    bat = BatteryParams(13.5, 0.3, 5.0, 5.0, 0.95, 0.95, 0.1)
    solar, load = np.zeros(N), np.zeros(N)
    ip = np.full((6, N), 0.30)
    for k in range(6):
        ip[k, 24 + 6 * k:30 + 6 * k] = 2.5
    ip[:, 0] = 0.28
    ep = ip - 0.1
    soc = 0.1 + 2.7 / 13.5  # one spike's 2.5 kWh plus losses above the reserve
    d = ScenarioReplanner(bat, N, 6, **OPTS).solve(START, ip, ep, None, solar, load, soc)
    r = Replanner(bat, N, horizon="tiered", **OPTS).solve(START, ip.mean(axis=0), ep.mean(axis=0), solar, load, soc)
    assert d.status == r.status == "optimal"
    assert d.battery_charge_kw <= 1e-6
    assert r.action == "CHARGE" and r.battery_charge_kw[0] == pytest.approx(5.0)
    # and every scenario's chain discharges its own spike from the energy held
    assert (d.soc.min(axis=1) <= 0.1 + 0.02).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), soc=st.floats(0.0, 1.0))
def test_never_beyond_ratings_or_below_the_reserve_in_any_scenario(seed, k, soc):
    p = realistic_problem(seed, n=N, start="2024-10-11T14:00:00Z", negative_prices=seed % 2 == 0)
    bat = p.battery
    rng = np.random.default_rng(seed)
    ip = p.import_price[None] + rng.normal(0, 0.1, (k, N)) * (rng.random((k, N)) < 0.2)
    ip[:, 0] = p.import_price[0]
    ep = np.minimum(ip - 0.05, p.export_price[None] + 0.0 * ip)
    ep[:, 0] = p.export_price[0]
    sp = ScenarioReplanner(bat, N, k, **OPTS)
    d = sp.solve(p.start, ip, ep, rng.dirichlet(np.ones(k)), p.solar_kw, p.load_kw, soc)
    assert d.status == "optimal"
    assert 0.0 <= d.battery_charge_kw <= bat.max_charge_kw + 1e-6
    assert 0.0 <= d.battery_discharge_kw <= bat.max_discharge_kw + 1e-6
    assert d.battery_charge_kw * d.battery_discharge_kw == 0.0
    assert d.grid_export_kw <= OPTS["export_limit_kw"] + 1e-6
    if soc >= bat.reserve:  # from above the reserve no chain goes below it
        assert d.soc.min() >= bat.reserve - 1e-6
    else:  # below it: never discharged further now
        assert d.battery_discharge_kw <= 1e-6
    assert d.soc.max() <= 1.0 + 1e-6


def test_bad_shapes_and_weights_are_named():
    bat = BatteryParams(10.0, 0.5, 5.0, 5.0, 0.95, 0.95, 0.1)
    sp = ScenarioReplanner(bat, 48, 3)
    z = np.zeros(48)
    with pytest.raises(ProblemError, match="3 scenarios x 48 intervals"):
        sp.solve(START, np.zeros((2, 48)), np.zeros((2, 48)), None, z, z, 0.5)
    with pytest.raises(ProblemError, match="weights"):
        sp.solve(START, np.zeros((3, 48)), np.zeros((3, 48)), np.array([0.5, 0.5, 0.5]), z, z, 0.5)
    with pytest.raises(ProblemError, match="non-finite"):
        sp.solve(START, np.full((3, 48), np.nan), np.zeros((3, 48)), None, z, z, 0.5)
    with pytest.raises(ProblemError, match="does not take"):
        ScenarioReplanner(bat, 48, 3, demand_charge=1.0)
    with pytest.raises(ProblemError, match="n_scenarios"):
        ScenarioReplanner(bat, 48, 0)


def test_a_scenario_revealed_only_when_its_spike_starts_makes_the_plan_hold_energy_now():
    """Ten equally likely futures, one with a 3 $/kWh half hour at 18:00; buying costs 0.60 all day.

    Two-stage (every scenario revealed after this interval): the spike scenario "knows" it can buy at 0.60
    just before its spike, so a kWh held is worth ~0.1 x 0.67 + 0.9 x 0.19 < 0.35 and the plan exports now.
    Revealed when the spike starts (``split_at``, chain 0 = "nothing unusual yet" with weight 0): until 18:00
    every future shares one trajectory, buying before the spike would be paid in all ten, so the energy a
    spike needs is kept (0.1 x 2.8 + 0.9 x 0.19 > 0.35).
    """
    soc = 0.1 + 2.7 / 13.5
    bat = BatteryParams(13.5, soc, 5.0, 5.0, 0.95, 0.95, 0.1)
    solar, load = np.zeros(N), np.zeros(N)
    ip = np.full((11, N), 0.60)
    ep = np.full((11, N), 0.20)
    ep[10, 24:30] = 3.0
    ip[10, 24:30] = 3.1  # (an import cheaper than the export would be sold straight through)
    ep[:, 0] = 0.35
    opts = {**OPTS, "terminal_value": 0.0}
    two_stage = ScenarioReplanner(bat, N, 10, **opts).solve(START, ip[1:], ep[1:], None, solar, load, soc)
    assert two_stage.action == "EXPORT" and two_stage.battery_discharge_kw == pytest.approx(5.0)
    weights = np.r_[0.0, np.full(10, 0.1)]
    split = np.r_[1, np.full(9, N), 24]
    revealed = ScenarioReplanner(bat, N, 11, **opts).solve(START, ip, ep, weights, solar, load, soc, split)
    assert revealed.battery_discharge_kw == pytest.approx((2.7 * 0.95 - 2.5) * 12, abs=1e-6)
    # the never-revealed chains follow chain 0 exactly, the spike chain does until 18:00, then sells its spike
    assert np.allclose(revealed.soc[1:10], revealed.soc[0])
    assert np.allclose(revealed.soc[10, :24], revealed.soc[0, :24])
    assert revealed.soc[10, 23] - revealed.soc[10, 29] == pytest.approx(2.5 / 0.95 / 13.5, abs=1e-6)
    with pytest.raises(ProblemError, match="split_at"):
        ScenarioReplanner(bat, N, 3, **opts).solve(START, ip[:3], ep[:3], None, solar, load, soc, np.array([1, 0, 1]))
