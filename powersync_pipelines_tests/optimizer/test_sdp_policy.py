"""The stochastic-DP policy (optimizer.sdp): physical bounds always hold, and it buys in cheap states, sells
into spikes and keeps energy for spikes the chain says are likely."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.optimizer.problem import BatteryParams
from powersync_pipelines.optimizer.sdp import DT_H, ChainPrices, SdpInputs, SdpPolicy, chain_terminal_value

BATTERY = BatteryParams(capacity_kwh=13.5, soc_initial=0.5, max_charge_kw=5.0, max_discharge_kw=5.0, reserve=0.1)
CHEAP, MID, SPIKE = 0, 1, 2
IMP = np.array([0.05, 0.25, 3.0])
EXP = np.array([-0.01, 0.12, 2.7])


def _inputs(n: int = 48, p_spike: float = 0.0, net: float = 0.0, stay: float = 0.9) -> SdpInputs:
    """Three bins; from the middle bin a spike starts with ``p_spike`` per step; each bin persists ``stay``."""
    t = np.array([[stay, 1 - stay, 0.0], [0.05, 0.95 - p_spike, p_spike], [0.0, 1 - stay, stay]])
    return SdpInputs(net_kw=np.full(n, net), import_price=np.tile(IMP, (n, 1)), export_price=np.tile(EXP, (n, 1)),
                     trans=np.tile(t, (n, 1, 1)))


def test_charges_when_cheap_and_exports_into_a_spike():
    pol = SdpPolicy(BATTERY, energy_steps=60)
    pol.solve(_inputs(p_spike=0.02))
    cheap = pol.decide(0, CHEAP, IMP[CHEAP], EXP[CHEAP], 0.0, 0.3)
    spike = pol.decide(0, SPIKE, IMP[SPIKE], EXP[SPIKE], 0.0, 0.8)
    assert cheap.action == "CHARGE" and cheap.battery_charge_kw == pytest.approx(5.0)
    assert spike.action == "EXPORT" and spike.battery_discharge_kw == pytest.approx(5.0)


def test_keeps_energy_for_a_likely_spike_and_spends_it_when_none_can_come():
    """At the middle price a full battery waits when spikes are likely; with no spike odds it has no reason
    to hold the export back beyond what the terminal value pays."""
    likely, never = SdpPolicy(BATTERY, energy_steps=60), SdpPolicy(BATTERY, energy_steps=60)
    likely.solve(_inputs(p_spike=0.05))
    never.solve(SdpInputs(**{**_inputs(p_spike=0.0).__dict__, "terminal_value": 0.0}))
    hold = likely.decide(0, MID, IMP[MID], EXP[MID], 0.0, 0.9)
    spend = never.decide(0, MID, IMP[MID], EXP[MID], 0.0, 0.9)
    assert hold.battery_discharge_kw == 0.0
    assert spend.action == "EXPORT"


@settings(max_examples=40, deadline=None)
@given(soc=st.floats(0.0, 1.0), net=st.floats(-8.0, 8.0), current=st.integers(0, 2),
       p_spike=st.floats(0.0, 0.2))
def test_never_beyond_ratings_reserve_or_capacity(soc, net, current, p_spike):
    pol = SdpPolicy(BATTERY, energy_steps=30, export_limit_kw=4.0, import_limit_kw=20.0)
    pol.solve(_inputs(n=12, p_spike=p_spike, net=net))
    d = pol.decide(0, current, IMP[current], EXP[current], net, soc)
    assert 0.0 <= d.battery_charge_kw <= BATTERY.max_charge_kw + 1e-9
    assert 0.0 <= d.battery_discharge_kw <= BATTERY.max_discharge_kw + 1e-9
    assert d.battery_charge_kw == 0.0 or d.battery_discharge_kw == 0.0
    e = min(max(soc, BATTERY.reserve), 1.0) * BATTERY.capacity_kwh
    e_next = (e + d.battery_charge_kw * DT_H * BATTERY.charge_efficiency
              - d.battery_discharge_kw * DT_H / BATTERY.discharge_efficiency)
    assert BATTERY.reserve * BATTERY.capacity_kwh - 1e-6 <= e_next <= BATTERY.capacity_kwh + 1e-6
    assert np.isfinite(d.expected_cost)


def test_bad_shapes_and_decide_before_solve_are_named():
    with pytest.raises(ValueError, match="disagree"):
        SdpInputs(net_kw=np.zeros(4), import_price=np.zeros((4, 3)), export_price=np.zeros((4, 2)),
                  trans=np.zeros((4, 3, 3)))
    with pytest.raises(RuntimeError, match="solve"):
        SdpPolicy(BATTERY).decide(0, 0, 0.1, 0.05, 0.0, 0.5)


def test_terminal_value_is_the_cheapest_expected_late_import_times_efficiency():
    inp = _inputs(n=10, p_spike=0.0)
    chain = ChainPrices(inp.import_price, inp.export_price, inp.trans, current_bin=CHEAP, current_import=0.05,
                        current_export=-0.01)
    tv = chain_terminal_value(chain, BATTERY)
    assert 0.05 * 0.95 < tv < 0.25 * 0.95
