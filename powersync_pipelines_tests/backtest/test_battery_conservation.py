"""The battery model conserves energy, balances the meter and never exceeds ratings or the reserve."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.backtest import apply_step
from powersync_pipelines.backtest.battery import ACTION_CODES, NO_BATTERY
from powersync_pipelines.timegrid import DT_H

from ._synthetic import spec

ACTIONS = [NO_BATTERY, *ACTION_CODES.values()]
step_args = st.tuples(
    st.sampled_from(ACTIONS), st.floats(0, 8), st.floats(0, 8), st.floats(0, 6), st.floats(0, 6), st.floats(0, 3)
)


@settings(max_examples=300, deadline=None)
@given(soc=st.floats(0.0, 1.0), steps=st.lists(step_args, min_size=1, max_size=40),
       eta_c=st.floats(0.8, 1.0), eta_d=st.floats(0.8, 1.0), export_limit=st.floats(0.5, 10))
def test_energy_in_equals_stored_plus_out_plus_losses(soc, steps, eta_c, eta_d, export_limit):
    s = spec(charge_efficiency=eta_c, discharge_efficiency=eta_d, export_limit_kw=export_limit)
    charged = discharged = losses = 0.0
    soc0 = soc
    for action, pc, pd_, load, solar, curtail in steps:
        o = apply_step(s, soc, action, pc, pd_, load, solar, curtail)
        # battery: AC in = stored change + AC out + losses (per interval)
        loss = o.charge_kw * DT_H * (1 - eta_c) + o.discharge_kw * DT_H * (1 / eta_d - 1)
        stored = (o.soc - soc) * s.capacity_kwh
        assert abs(o.charge_kw * DT_H - (stored + o.discharge_kw * DT_H + loss)) < 1e-9
        # meter: what comes in equals what goes out
        supply = o.import_kw + (solar - o.curtail_kw) + o.discharge_kw
        demand = load + o.charge_kw + o.export_kw
        assert abs(supply - demand) < 1e-9
        assert 0 <= o.curtail_kw <= solar + 1e-12
        assert o.import_kw >= 0 and o.export_kw >= 0 and min(o.import_kw, o.export_kw) == 0
        assert o.charge_kw <= s.max_charge_kw + 1e-12 and o.discharge_kw <= s.max_discharge_kw + 1e-12
        assert o.charge_kw == 0 or o.discharge_kw == 0
        assert o.soc <= 1 + 1e-12
        if o.discharge_kw > 0:
            assert o.soc >= s.reserve - 1e-9  # never discharged below the reserve
        if action == NO_BATTERY:
            assert o.charge_kw == o.discharge_kw == 0
        if o.discharge_kw > 0 and o.export_kw > 0:
            assert o.export_kw <= export_limit + 1e-9  # the battery never pushes exports past the limit
        charged += o.charge_kw * DT_H
        discharged += o.discharge_kw * DT_H
        losses += loss
        soc = o.soc
    assert abs(charged - ((soc - soc0) * s.capacity_kwh + discharged + losses)) < 1e-8


def test_self_consumption_follows_the_real_house_not_the_plan():
    s = spec(soc_initial=0.5)
    sc = ACTION_CODES["SELF_CONSUMPTION"]
    # evening: house needs 1.3 kW net; the plan's kW figures are ignored
    o = apply_step(s, 0.5, sc, 0.0, 4.0, load_kw=1.5, solar_kw=0.2)
    assert o.discharge_kw == 1.3 and o.import_kw == 0 and o.export_kw == 0
    # midday: 2 kW surplus goes into the battery
    o = apply_step(s, 0.5, sc, 3.0, 0.0, load_kw=0.5, solar_kw=2.5)
    assert o.charge_kw == 2.0 and o.export_kw == 0


def test_charge_and_export_hold_the_plan_rate_within_limits():
    s = spec(import_limit_kw=6.0)
    o = apply_step(s, 0.5, ACTION_CODES["CHARGE"], 5.0, 0.0, load_kw=3.0, solar_kw=0.0)
    assert o.charge_kw == 3.0 and o.import_kw == 6.0  # the grid connection caps the charge
    o = apply_step(s, 0.5, ACTION_CODES["EXPORT"], 0.0, 4.0, load_kw=0.5, solar_kw=0.0)
    assert o.discharge_kw == 4.0 and abs(o.export_kw - 3.5) < 1e-12
    near_reserve = s.reserve + 0.001
    o = apply_step(s, near_reserve, ACTION_CODES["EXPORT"], 0.0, 5.0, load_kw=0.0, solar_kw=0.0)
    assert o.discharge_kw < 5.0 and abs(o.soc - s.reserve) < 1e-12
    o = apply_step(s, 0.5, ACTION_CODES["IDLE"], 5.0, 5.0, load_kw=1.0, solar_kw=0.0)
    assert o.charge_kw == o.discharge_kw == 0 and o.import_kw == 1.0 and o.soc == 0.5


def test_export_limit_curtails_solar_before_the_battery_backs_off():
    s = spec(export_limit_kw=5.0)
    o = apply_step(s, 0.8, ACTION_CODES["EXPORT"], 0.0, 5.0, load_kw=0.5, solar_kw=3.0)
    assert abs(o.export_kw - 5.0) < 1e-12 and abs(o.curtail_kw - 2.5) < 1e-12 and o.discharge_kw == 5.0
