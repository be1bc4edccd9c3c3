"""The spike-reserve gate: the rule fires only when a realised spike happened lately, so a dear but spike-free
week plans on the expected value; the 'days since the last spike' it reads is causal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.forecasts import make_forecast
from powersync_pipelines.backtest.learned import parse_reserve_gate
from powersync_pipelines.forecasts.price_mapping import last_spike_age_days

from ._prices import backtest_data, rrp_series


def test_last_spike_age_counts_from_the_latest_spike_seen_so_far():
    idx = pd.date_range("2024-05-01", periods=6 * 288, freq="5min", tz="UTC")
    x = np.full(len(idx), 50.0)
    x[288] = 500.0  # a spike on day 1
    age = last_spike_age_days(pd.Series(x, index=idx), idx, 300.0)
    assert np.isinf(age[:288]).all()  # nothing seen before it
    assert age[288] == 0.0  # its own interval is known at its start
    assert age[288 + 288] == 1.0
    assert age[-1] == (len(idx) - 1 - 288) / 288


def _planning(params: tuple, spikes: bool) -> tuple[np.ndarray, object]:
    s = rrp_series(days=12, seed=3, spikes=spikes, spike_rate=0.3)
    s = s + 40.0  # dear evenings (P90 >= 200 $/MWh) that stay below the 300 $/MWh spike level
    data = backtest_data(s, history_days=10, days=1)
    fc = make_forecast("learned", data, ForecastOptions(params=(("quiet_threshold", "none"), *params)))
    i = data.i0
    path = fc.path(i, 576)
    return fc.planning_path(i, 576), path


def test_without_recent_spikes_the_gated_rule_plans_on_the_expected_value():
    plan, path = _planning((("reserve_gate", "300:7"),), spikes=False)
    assert (path.p90 >= 200).any()  # the ungated rule would lift these slots
    np.testing.assert_allclose(plan, path.mean)
    ungated, _ = _planning((("reserve_gate", ""),), spikes=False)
    assert (ungated > path.mean + 1e-9).any()


def test_after_a_recent_spike_the_gated_rule_lifts_plausible_slots():
    plan, path = _planning((("reserve_gate", "300:7"),), spikes=True)
    assert (plan > path.mean + 1e-9).any()
    assert plan[0] == path.mean[0]


def test_the_gate_option_reads_level_and_days_pairs_and_names_bad_input():
    assert parse_reserve_gate("500:3, 1000:14") == ((500.0, 3.0), (1000.0, 14.0))
    assert parse_reserve_gate(((300, 7),)) == ((300.0, 7.0),)
    assert parse_reserve_gate("") == ()
    with pytest.raises(ValueError, match="reserve_gate"):
        parse_reserve_gate("500")


def test_the_live_gate_opens_only_on_a_spike_within_its_look_back_and_not_after_now():
    from powersync_pipelines.forecasts.price_mapping import reserve_gate_open

    idx = pd.date_range("2024-05-01", periods=10 * 288, freq="5min", tz="UTC")
    x = np.full(len(idx), 80.0)
    x[2 * 288] = 600.0  # day 2: above 500, below 1000
    gate = ((500.0, 3.0), (1000.0, 14.0))
    assert reserve_gate_open(idx, x, idx[3 * 288], gate)
    assert not reserve_gate_open(idx, x, idx[6 * 288], gate)  # 4 days later: 500 look-back passed
    assert not reserve_gate_open(idx, x, idx[2 * 288 - 1], gate)  # the spike is still in the future
    assert reserve_gate_open(idx, x, idx[6 * 288], ())  # no gate: the rule always may fire
    assert reserve_gate_open(idx, x / 1000, idx[3 * 288], gate, scale=1 / 1000)  # a $/kWh series
