"""Two knobs a site or a backtest can set: recency-weighted residual quantiles (a calm fortnight after a spiky
month lowers the P90) and an import-side-only reserve (exports planned on the expected value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.forecasts import make_forecast
from powersync_pipelines.forecasts.price_model import PriceModelConfig, fit_price_model

from ._prices import TZ, backtest_data, rrp_series

ONE_RULE = (("reserve_gate", ""), ("quiet_threshold", "none"))  # ungated, one threshold: the rule as measured


def test_recency_weighted_quantiles_let_a_calm_fortnight_lower_the_evening_p90():
    spiky = rrp_series(days=28, seed=5, spike_rate=0.15)
    calm = rrp_series(days=14, start="2024-05-29T14:00:00Z", seed=6, spikes=False)
    s = pd.concat([spiky, calm])
    as_of = s.index[-1] + pd.Timedelta(minutes=5)
    now = as_of - pd.Timedelta(minutes=5)
    recent = s[s.index <= now]
    flat = fit_price_model(s, as_of, TZ, PriceModelConfig(fit_days=42)).forecast(now, recent)
    recency = fit_price_model(s, as_of, TZ, PriceModelConfig(fit_days=42, quantile_half_life_days=3.0))
    weighted = recency.forecast(now, recent)
    evening = slice(17 * 12 + 6, 19 * 12)  # issued at local midnight
    assert weighted.p90[evening].max() < flat.p90[evening].max() - 50
    assert np.all(weighted.p10 <= weighted.p50) and np.all(weighted.p50 <= weighted.p90)


def test_import_side_reserve_lifts_import_prices_and_leaves_exports_on_the_expected_value():
    s = rrp_series(days=12, seed=3, spike_rate=0.3) + 40.0
    data = backtest_data(s, history_days=10, days=1)
    both = make_forecast("learned", data, ForecastOptions(params=ONE_RULE))
    imp_side = make_forecast("learned", data, ForecastOptions(params=(*ONE_RULE, ("reserve_side", "import"))))
    i = data.i0
    lifted = both.planning_path(i, 576) > both.path(i, 576).mean + 1e-9
    assert lifted.any()
    imp_b, exp_b = both.prices(i, 576)
    imp_i, exp_i = imp_side.prices(i, 576)
    np.testing.assert_allclose(imp_i, imp_b)  # the household's own load still sees the spike reserve
    assert (exp_i[lifted] < exp_b[lifted] - 1e-9).all()  # exports are not planned into a P90 spike
    np.testing.assert_allclose(exp_i[~lifted], exp_b[~lifted])


def test_an_unknown_reserve_side_is_named():
    data = backtest_data(rrp_series(days=4), history_days=3, days=1)
    with pytest.raises(ValueError, match="reserve_side"):
        make_forecast("learned", data, ForecastOptions(params=(("reserve_side", "export"),)))
