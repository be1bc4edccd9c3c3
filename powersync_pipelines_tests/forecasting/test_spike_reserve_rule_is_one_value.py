"""The spike-reserve rule is one value (``SpikeReserveRule``): it checks its settings, chooses the threshold in
force, and is read from backtest options without losing a setting, so the live blend, a site's config and
the backtest plan with the same rule."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.learned import RULE_OPTIONS, reserve_rule_from_options
from powersync_pipelines.forecasts.price_mapping import SpikeReserveRule, spike_reserve_prices


@pytest.mark.parametrize(("change", "message"), [
    ({"weight": 1.5}, "weight"),
    ({"weight": -0.1}, "weight"),
    ({"gate": [(300.0, 0.0)]}, "must both be > 0"),
    ({"episode_gate": [(-1.0, 7.0)]}, "must both be > 0"),
    ({"side": "export"}, "reserve_side"),
    ({"horizon_hours": 0.0}, "horizon"),
])
def test_the_rule_refuses_settings_it_cannot_plan_with(change, message):
    with pytest.raises(ValueError, match=message):
        SpikeReserveRule(**change)


def test_gates_given_as_lists_become_tuples_so_rules_compare_and_hash():
    rule = SpikeReserveRule(gate=[[500, 3], [1000, 14]])
    assert rule.gate == ((500.0, 3.0), (1000.0, 14.0))
    assert rule == SpikeReserveRule(gate=((500.0, 3.0), (1000.0, 14.0)))
    assert hash(rule) == hash(SpikeReserveRule(gate=((500.0, 3.0), (1000.0, 14.0))))
    assert rule.lookback_days() == 14.0


def test_the_plan_lifts_from_the_threshold_in_force_in_any_units():
    mean = np.array([100.0, 100.0, 100.0, 100.0])
    p90 = np.array([100.0, 250.0, 350.0, 150.0])
    rule = SpikeReserveRule(threshold=200.0, quiet_threshold=300.0, horizon_hours=None)
    inside = rule.plan(mean, p90, in_episode=True)
    outside = rule.plan(mean, p90, in_episode=False)
    np.testing.assert_allclose(inside, [100.0, 250.0, 350.0, 100.0])  # from 200 $/MWh; slot 0 never lifted
    np.testing.assert_allclose(outside, [100.0, 100.0, 350.0, 100.0])  # from 300 $/MWh
    # a $/kWh series compares the $/MWh levels / 1000 and gets the same lift / 1000
    np.testing.assert_allclose(rule.plan(mean / 1000, p90 / 1000, in_episode=False, scale=1 / 1000), outside / 1000)
    # the same as the lift function with the threshold spelled out
    np.testing.assert_array_equal(inside, spike_reserve_prices(mean, p90, 200.0, 1.0, horizon_hours=None))
    # exports: the planned path, or the expected value with side "import"
    assert rule.export_path(mean, inside) is inside
    assert replace(rule, side="import").export_path(mean, inside) is mean


def test_every_setting_travels_through_backtest_options():
    changed = SpikeReserveRule(weight=0.5, threshold=150.0, quiet_threshold=None, gate=(), episode_gate=((2000.0, 3.0),),
                               horizon_hours=None, side="import")
    assert all(getattr(changed, f.name) != getattr(SpikeReserveRule(), f.name) for f in fields(SpikeReserveRule))
    options = tuple((RULE_OPTIONS[f.name], getattr(changed, f.name)) for f in fields(SpikeReserveRule))
    assert reserve_rule_from_options(ForecastOptions(params=options)) == changed
    assert reserve_rule_from_options(ForecastOptions()) == SpikeReserveRule()


def test_command_line_text_reads_as_the_same_rule():
    text = ForecastOptions(params=(("reserve_gate", "500:3,1000:14"), ("quiet_threshold", "none"),
                                   ("reserve_weight", "0.5"), ("reserve_side", "import"),
                                   ("reserve_horizon_hours", "")))
    assert reserve_rule_from_options(text) == SpikeReserveRule(
        gate=((500.0, 3.0), (1000.0, 14.0)), quiet_threshold=None, weight=0.5, side="import", horizon_hours=None)
    with pytest.raises(ValueError, match="LEVEL:DAYS"):
        reserve_rule_from_options(ForecastOptions(params=(("reserve_gate", "500"),)))


def test_named_options_override_a_base_rule_field_by_field():
    site = SpikeReserveRule(weight=0.0, threshold=500.0)
    rule = reserve_rule_from_options(ForecastOptions(params=(("reserve_weight", "0.5"),)), site)
    assert rule == SpikeReserveRule(weight=0.5, threshold=500.0)
