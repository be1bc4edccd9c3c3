"""A model of a $/kWh series (sites without wholesale prices: Amber captures, Octopus) uses the same $/MWh
knobs scaled by 1/1000, so spikes are recognised and the spike-reserve rule fires as it does on RRP."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.forecasts import make_forecast
from powersync_pipelines.forecasts.price_model import PriceModelConfig, fit_price_model

from ._prices import TZ, backtest_data, retail, rrp_series


def test_the_config_is_scaled_once_for_a_per_kwh_series():
    cfg = PriceModelConfig(target_clip=300.0)
    assert cfg.for_series("rrp") is cfg
    kwh = cfg.for_series("import_price")
    assert (kwh.dev_clip, kwh.spike_level, kwh.target_clip) == (3.0, 0.3, 0.3)
    assert kwh.fit_days == cfg.fit_days and kwh.ridge == cfg.ridge


def test_a_spike_in_progress_raises_the_next_hour_of_a_per_kwh_series():
    s = rrp_series(days=30, seed=5)
    kwh = pd.Series(retail(s.to_numpy())[0], index=s.index)
    model = fit_price_model(kwh, pd.Timestamp("2024-05-30T14:00:00Z"), TZ, series="import_price")
    assert model.config.spike_level == 0.3
    now = pd.Timestamp("2024-05-31T07:40:00Z")
    recent = kwh[kwh.index <= now].copy()
    calm = model.forecast(now, recent)
    recent.iloc[-3:] = 2.8  # a 2,500 $/MWh spike, as an import price
    hot = model.forecast(now, recent)
    assert hot.mean[1:7].mean() > calm.mean[1:7].mean() + 0.2


def test_the_backtest_reserve_rule_fires_on_a_per_kwh_series():
    s = rrp_series(days=12, seed=3, spike_rate=0.3) + 40.0
    data = backtest_data(s, history_days=10, days=1)
    data = dataclasses.replace(data, rrp=np.full(data.n, np.nan))  # only retail prices, as an Amber capture
    fc = make_forecast("learned", data, ForecastOptions(params=(("reserve_gate", ""), ("quiet_threshold", "none"),)))
    assert not fc.uses_rrp
    i = data.i0
    plan, path = fc.planning_path(i, 576), fc.path(i, 576)
    assert (path.p90 >= 0.2).any()
    assert (plan > path.mean + 1e-9).any()  # 200 $/MWh compared as 0.2 $/kWh
    assert plan[0] == path.mean[0]
