"""Dynamic power sharing: the connection limit holds in every interval, whole amps, no flapping."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.ev.session import ChargerLimits
from powersync_pipelines.ev.sharing import SharingState, share

ONE_PHASE = ChargerLimits(6, 32, 1, 230)
THREE_PHASE = ChargerLimits(6, 16, 3, 230)
power = st.floats(0, 25, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(load=power, solar=power, chg=power, dis=power, requested=st.one_of(power, st.just(math.inf)),
       limit=st.floats(3, 30), three=st.booleans(), steps=st.lists(st.tuples(power, power, power), max_size=6))
def test_the_connection_limit_is_never_exceeded(load, solar, chg, dis, requested, limit, three, steps):
    lim = THREE_PHASE if three else ONE_PHASE
    state = SharingState()
    for ld, so, ch in [(load, solar, chg), *steps]:
        d = share(lim, requested, limit, ld, so, ch, state)
        state = d.state
        assert d.amps == 0 or lim.min_amps <= d.amps <= lim.max_amps
        assert d.amps == int(d.amps)
        ev_kw = lim.kw_for(d.amps)
        grid_import = max(0.0, ld - so + ch - dis + ev_kw)  # whatever the battery discharges, even nothing
        without_ev = max(0.0, ld - so + ch)
        assert grid_import <= max(limit, without_ev) + 1e-9
        assert ev_kw <= requested + 1e-9


def test_formula_limit_minus_house_minus_battery_plus_surplus():
    # 15 kW connection, house 3 kW, solar 1 kW, battery charging 2 kW: 11 kW left -> 47 A capped at 32 A
    assert share(ONE_PHASE, math.inf, 15, 3, 1, 2).amps == 32
    # 10 kW connection, house 5 kW, battery 3 kW: 2 kW -> 8 A
    assert share(ONE_PHASE, math.inf, 10, 5, 0, 3).amps == 8
    # surplus adds room: house 1 kW, solar 6 kW -> 5 kW surplus + 1 kW connection = 6 kW -> 26 A
    d = share(ONE_PHASE, math.inf, 1, 1, 6, 0)
    assert d.amps == 26 and d.room_kw == 6
    # three phases: 15 - (4 - 1 + 1) = 11 kW -> 15.9 A per phase -> 15 A
    assert share(THREE_PHASE, math.inf, 15, 4, 1, 1).amps == 15


def test_below_the_minimum_pauses():
    d = share(ONE_PHASE, math.inf, 10, 9, 0, 0)  # 1 kW left = 4 A < 6 A
    assert d.amps == 0 and "minimum" in d.reason


def test_a_surplus_hovering_at_the_minimum_does_not_flap():
    # solar-only request follows a surplus that wobbles between 5.5 A and 7.5 A worth of power
    state = SharingState(amps=7, paused_cycles=0)
    amps = []
    for i in range(20):
        req = ONE_PHASE.kw_for(7.5 if i % 2 else 5.5)
        d = share(ONE_PHASE, req, 15, 0.5, 0.5 + req, 0, state)
        state = d.state
        amps.append(d.amps)
    changes = sum(1 for a, b in zip(amps, amps[1:], strict=False) if a != b)
    assert amps[0] == 0  # the first dip pauses at once
    assert changes == 0  # and 7 A (below min + 2 A margin) never resumes it


def test_resumes_after_the_pause_with_margin_and_small_raises_are_held():
    state = SharingState(amps=0, paused_cycles=1)  # as a pausing decision leaves it
    d0 = share(ONE_PHASE, ONE_PHASE.kw_for(10), 15, 0, 0, 0, state)
    d1 = share(ONE_PHASE, ONE_PHASE.kw_for(10), 15, 0, 0, 0, d0.state)
    assert d0.amps == d1.amps == 0  # paused for less than three cycles
    d2 = share(ONE_PHASE, ONE_PHASE.kw_for(10), 15, 0, 0, 0, d1.state)
    assert d2.amps == 10 and d2.reason == "resumed"
    d3 = share(ONE_PHASE, ONE_PHASE.kw_for(11), 15, 0, 0, 0, d2.state)
    assert d3.amps == 10 and d3.reason == "held"  # +1 A is inside the deadband
    d4 = share(ONE_PHASE, ONE_PHASE.kw_for(9), 15, 0, 0, 0, d3.state)
    assert d4.amps == 9 and d4.reason == "lowered"  # lower at once
