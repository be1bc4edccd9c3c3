"""The knobs against the calm-winter loss: the spike-reserve rule lifts only slots within a horizon of
now (beyond it P90 is climatology, and holding for tomorrow's evening every night keeps the battery full for
days); outside a spike episode it fires only from a higher threshold; and the tight regression-target clip
may apply only beyond a horizon (the near hours keep carrying a spike in progress, the far hours follow the
price level robustly)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.forecasts import make_forecast
from powersync_pipelines.backtest.learned import model_config
from powersync_pipelines.forecasts.price_mapping import (
    EPISODE_GATE,
    QUIET_THRESHOLD_PER_MWH,
    RESERVE_GATE,
    RESERVE_HORIZON_HOURS,
    reserve_lookback_days,
    spike_reserve_prices,
)
from powersync_pipelines.forecasts.price_model import PriceModelConfig, fit_price_model

from ._prices import TZ, backtest_data, rrp_series


def test_the_reserve_horizon_lifts_only_slots_within_it():
    mean = np.full(576, 100.0)
    p90 = np.full(576, 150.0)
    p90[100:130] = 900.0  # plausible spike slots 8.3-10.8 h ahead
    p90[380:410] = 900.0  # and 31.7-34.2 h ahead (tomorrow's evening)
    full = spike_reserve_prices(mean, p90, 200.0, 1.0, horizon_hours=None)
    near = spike_reserve_prices(mean, p90, 200.0, 1.0, horizon_hours=18)
    np.testing.assert_array_equal(np.flatnonzero(full > mean), np.r_[100:130, 380:410])
    np.testing.assert_array_equal(np.flatnonzero(near > mean), np.arange(100, 130))
    np.testing.assert_array_equal(near[100:130], p90[100:130])
    # A horizon shorter than the first plausible slot lifts nothing; the current slot is never lifted.
    np.testing.assert_array_equal(spike_reserve_prices(mean, p90, 200.0, 1.0, horizon_hours=6), mean)
    p90[0] = 5000.0
    assert spike_reserve_prices(mean, p90, 200.0, 1.0, horizon_hours=0.01)[0] == mean[0]


def test_the_backtest_option_reaches_the_planning_path():
    s = rrp_series(days=12, seed=3, spike_rate=0.3) + 40.0
    data = backtest_data(s, history_days=10, days=1)

    def lifted(params: tuple) -> np.ndarray:
        one_rule = (("reserve_gate", ""), ("quiet_threshold", "none"))  # ungated, one threshold
        fc = make_forecast("learned", data, ForecastOptions(params=(*one_rule, *params)))
        return np.flatnonzero(fc.planning_path(data.i0, 576) > fc.path(data.i0, 576).mean + 1e-9)

    everywhere, near = lifted((("reserve_horizon_hours", "none"),)), lifted((("reserve_horizon_hours", 12),))
    assert everywhere.max() >= 288 and len(near) > 0  # evenings on both days are plausible
    assert near.max() < 144
    np.testing.assert_array_equal(near, everywhere[everywhere < 144])
    with pytest.raises(ValueError):
        lifted((("reserve_horizon_hours", "soon"),))


def _fit(cfg: PriceModelConfig):
    s = rrp_series(days=30, seed=11, spike_rate=0.25)
    return fit_price_model(s, s.index[-1] + pd.Timedelta(minutes=5), TZ, cfg)


def test_a_split_clip_keeps_the_wide_fit_near_and_the_tight_fit_far():
    wide, tight = _fit(PriceModelConfig(target_clip=None)), _fit(PriceModelConfig(target_clip=300.0))
    split = _fit(PriceModelConfig(target_clip=300.0, target_clip_after_hours=2.0))
    np.testing.assert_allclose(split.coef[:, :24], wide.coef[:, :24])  # 0-2 h: as without the clip
    np.testing.assert_allclose(split.coef[:, 24:], tight.coef[:, 24:])  # from 2 h on: as the tight clip
    # A spike in progress: the tight clip hardly carries it into the next half hour; the split fit does.
    s = rrp_series(days=31, seed=11, spike_rate=0.25)
    now = s.index[-1]
    recent = s.iloc[-288:].copy()
    recent.iloc[-3:] = 2500.0
    lift = {name: m.forecast(now, recent, 72).mean[1:7].mean() - m.forecast(now, s.iloc[-288:], 72).mean[1:7].mean()
            for name, m in (("wide", wide), ("tight", tight), ("split", split))}
    assert lift["wide"] > 2 * lift["tight"]
    assert lift["split"] == pytest.approx(lift["wide"])


def test_without_a_split_the_tight_clip_applies_at_every_horizon():
    tight = _fit(PriceModelConfig(target_clip=300.0))
    np.testing.assert_allclose(_fit(PriceModelConfig(target_clip=300.0, target_clip_after_hours=None)).coef,
                               tight.coef)


def test_the_shipped_defaults_are_the_selected_ones():
    assert PriceModelConfig().target_clip == 2000.0
    assert RESERVE_GATE == ((300.0, 1.0),) and RESERVE_HORIZON_HOURS == 18.0
    assert QUIET_THRESHOLD_PER_MWH == 300.0 and EPISODE_GATE == ((1000.0, 7.0),)
    # The live pipeline reads enough stored history for the longest look-back (7 days).
    assert reserve_lookback_days(RESERVE_GATE, EPISODE_GATE) == 7.0
    assert reserve_lookback_days((), ()) == 2.0
    # "none" switches an optional model knob off from the command line (the wide clip of earlier defaults).
    assert model_config(ForecastOptions(params=(("target_clip", "none"),))).target_clip is None
    assert model_config(ForecastOptions(params=(("target_clip", "300"),))).target_clip == 300.0
    with pytest.raises(ValueError):
        model_config(ForecastOptions(params=(("fit_days", "none"),)))


def test_outside_a_spike_episode_the_backtest_rule_fires_only_from_the_quiet_threshold():
    def lifted(spike: bool, params: tuple) -> int:
        s = rrp_series(days=12, seed=3, spikes=False) + 40.0  # dear evenings, nothing >= 1000 $/MWh
        if spike:
            s.iloc[-3 * 288] = 2000.0  # a day before the accounted window
        data = backtest_data(s, history_days=10, days=1)
        fc = make_forecast("learned", data, ForecastOptions(params=(("reserve_gate", ""), *params)))
        i = data.i0
        return int((fc.planning_path(i, 576) > fc.path(i, 576).mean + 1e-9).sum())

    one, two = (("quiet_threshold", "none"),), (("quiet_threshold", 1e6), ("episode_gate", "1000:7"))
    assert lifted(False, one) > 0  # one threshold: dear evenings are lifted
    assert lifted(False, two) == 0  # no episode: only from the quiet threshold, which nothing reaches
    assert lifted(True, two) == lifted(True, one) > 0  # inside an episode: the usual threshold
    assert lifted(False, ()) == 0 < lifted(True, ())  # the shipped defaults: 300 outside, 200 inside
