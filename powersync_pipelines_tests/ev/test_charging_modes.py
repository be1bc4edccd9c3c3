"""The four charging modes on synthetic days: what each takes from the sun and the grid, and what it costs."""

from __future__ import annotations

import numpy as np
import pytest

from powersync_pipelines.ev.modes import plan_session
from powersync_pipelines.optimizer import solve

from .days import HOURS, day, session

KINDS = ("sunny", "cloudy", "cheap_night", "spike_evening")


def _connection_ok(p, plan):
    chg = plan.schedule.intervals["battery_charge_kw"].to_numpy() if plan.schedule is not None else None
    if chg is None:
        chg = solve(p, horizon="tiered").intervals["battery_charge_kw"].to_numpy()
    return np.all(p.load_kw - p.solar_kw + chg + plan.ev_kw <= p.import_limit_kw + 1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_every_mode_uses_whole_amps_within_the_charger_and_connection(kind):
    p = day(kind)
    for mode in ("solar_only", "solar_preferred", "cost_optimized", "time_critical"):
        plan = plan_session(p, session(), mode)
        a = plan.amps
        assert np.all((a == 0) | ((a >= 6) & (a <= 32))), mode
        assert np.array_equal(a, np.round(a)), mode
        assert _connection_ok(p, plan), mode
        ends_after = plan.index + (plan.index[1] - plan.index[0]) > session().departure
        assert not plan.ev_kw[ends_after].any(), mode


@pytest.mark.parametrize("kind", KINDS)
def test_solar_only_takes_no_grid_energy(kind):
    p = day(kind)
    base = solve(p, horizon="tiered").intervals
    plan = plan_session(p, session(), "solar_only", base=None)
    surplus = p.solar_kw - p.load_kw - base["battery_charge_kw"].to_numpy()
    assert np.all(plan.ev_kw <= np.maximum(surplus, 0) + 1e-9)
    if kind == "cloudy":
        assert plan.energy_kwh == 0 and not plan.target_met and "solar surplus" in plan.reason
    if kind == "sunny":
        assert plan.energy_kwh > 5


@pytest.mark.parametrize("kind", KINDS)
def test_preferred_optimized_and_critical_meet_the_target(kind):
    p = day(kind)
    for mode in ("solar_preferred", "cost_optimized", "time_critical"):
        plan = plan_session(p, session(), mode)
        assert plan.feasible and plan.target_met, (mode, plan.to_dict())
        assert plan.energy_kwh <= 20.0 + 0.9 * 7.36 * 5 / 60 + 1e-6  # at most one interval's worth over


def test_time_critical_charges_at_max_now_and_stops_at_the_target():
    plan = plan_session(day("spike_evening"), session(), "time_critical")
    assert plan.first_amps == 32
    n_full = int(np.sum(plan.amps == 32))
    assert n_full == int(20.0 / 0.9 / (7.36 * 5 / 60))  # then one partial interval (or none)
    assert np.all(plan.amps[np.flatnonzero(plan.amps)[-1] + 1 :] == 0)


def test_cheap_night_cost_optimized_charges_at_night_and_beats_time_critical():
    p = day("cheap_night")
    s = session(hours=14.5)  # leaves 07:30 local, before the sun
    opt = plan_session(p, s, "cost_optimized")
    crit = plan_session(p, s, "time_critical")
    night = (HOURS >= 0) & (HOURS < 6)
    assert opt.ev_kw[night].sum() / opt.ev_kw.sum() > 0.95
    assert opt.ev_cost < crit.ev_cost - 2.0


def test_spike_evening_no_mode_but_time_critical_charges_in_the_spike():
    p = day("spike_evening")
    spike = p.import_price >= 5.0
    for mode in ("solar_preferred", "cost_optimized"):
        plan = plan_session(p, session(), mode)
        assert plan.ev_kw[spike].sum() == 0, mode
    crit = plan_session(p, session(), "time_critical")
    assert crit.ev_kw[spike].sum() > 0  # 17:00 departure-blind max power walks into the spike


def test_solar_preferred_uses_the_sun_first_then_the_cheapest_grid():
    p = day("sunny")
    pref = plan_session(p, session(energy_kwh=40.0), "solar_preferred")
    only = plan_session(p, session(energy_kwh=40.0), "solar_only")
    assert np.all(pref.ev_kw >= only.ev_kw - 1e-9)  # every solar amp kept
    extra = pref.ev_kw - only.ev_kw
    grid_price = p.import_price[extra > 0]
    unused = p.import_price[(extra == 0) & (pref.amps < 32) & (HOURS < 16)]
    assert grid_price.max() <= unused.min() + 1e-9  # no dearer interval used while a cheaper one had room


def test_cost_optimized_is_never_dearer_than_the_other_modes_that_meet_the_target():
    for kind in KINDS:
        p = day(kind)
        costs = {m: plan_session(p, session(), m).ev_cost for m in ("solar_preferred", "cost_optimized", "time_critical")}
        # whole-amp rounding of the LP's continuous power may cost a few cents
        assert costs["cost_optimized"] <= min(costs.values()) + 0.05, (kind, costs)


def test_an_unreachable_target_is_reported_with_the_best_achievable_and_charges_at_max():
    p = day("cloudy")
    s = session(energy_kwh=60.0, hours=3.0)  # 3 h x 7.36 kW x 0.9 = 19.9 kWh at most
    for mode in ("solar_preferred", "cost_optimized", "time_critical"):
        plan = plan_session(p, s, mode)
        assert not plan.feasible and not plan.target_met
        assert plan.best_achievable_kwh == pytest.approx(3 * 7.36 * 0.9, rel=1e-6)
        assert "not reachable" in plan.reason and "at most 19.87" in plan.reason
        assert np.all(plan.amps[:36] == 32) and plan.energy_kwh == pytest.approx(plan.best_achievable_kwh)


def test_the_battery_does_not_discharge_into_the_car_unless_allowed():
    p = day("spike_evening", battery_soc=1.0)
    # the car must charge in the spike (departure 19:00 local); a full battery would love to feed it
    s_off = session(energy_kwh=8.0, hours=2.0)
    s_on = session(energy_kwh=8.0, hours=2.0, allow_battery_to_ev=True)
    plan_off = plan_session(p, s_off, "cost_optimized")
    off, on = plan_off.schedule.intervals, plan_session(p, s_on, "cost_optimized").schedule.intervals
    deficit = np.maximum(p.load_kw - p.solar_kw, 0.0)
    full = off["ev_kw"].to_numpy() >= 7.36 - 1e-6
    assert full.any()
    assert np.all(off["battery_discharge_kw"].to_numpy()[full] <= deficit[full] + 1e-6)
    charging = on["ev_kw"].to_numpy() > 0
    assert np.any((on["battery_discharge_kw"].to_numpy() > deficit + 0.5) & charging)  # allowed: it does
    assert plan_off.ev_cost > plan_session(p, s_on, "cost_optimized").ev_cost  # and that is why it is a choice
