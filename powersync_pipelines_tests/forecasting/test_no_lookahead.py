"""A model fitted at day D never sees data at or after D, and a forecast issued at t never sees data after t:
perturbing the future leaves fits and forecasts identical, to the bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import ForecastOptions, make_forecast
from powersync_pipelines.forecasts.price_model import PriceModelError, fit_price_model

from ._prices import TZ, backtest_data, rrp_series


def _perturbed_after(s: pd.Series, t: pd.Timestamp, seed: int = 7) -> pd.Series:
    out = s.copy()
    future = out.index >= t
    out[future] = out[future] * 3 + np.random.default_rng(seed).normal(0, 500, int(future.sum()))
    return out


def test_fit_at_day_d_ignores_everything_from_d_on():
    s = rrp_series(days=16)
    day = pd.Timestamp("2024-05-12T14:00:00Z")  # local midnight in Melbourne
    a = fit_price_model(s, day, TZ)
    b = fit_price_model(_perturbed_after(s, day), day, TZ)
    assert a.train_end < day
    np.testing.assert_array_equal(a.profile, b.profile)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.resid_q, b.resid_q)
    assert a.version == b.version


def test_forecast_at_t_ignores_values_after_t():
    s = rrp_series(days=16)
    model = fit_price_model(s, pd.Timestamp("2024-05-12T14:00:00Z"), TZ)
    now = pd.Timestamp("2024-05-13T07:35:00Z")
    a = model.forecast(now, s[s.index <= now])
    b = model.forecast(now, _perturbed_after(s, now + pd.Timedelta(minutes=5))[s.index <= now])
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.p90, b.p90)


def test_backtest_model_at_step_i_is_blind_to_slots_after_i():
    """Through the backtest plug-in: same prices at step i whatever the data holds after i."""
    s = rrp_series(days=12)
    data = backtest_data(s, history_days=8, days=2)
    i = data.i0 + 150
    changed = _perturbed_after(s, s.index[i + 1])
    other = backtest_data(changed, history_days=8, days=2)
    fa = make_forecast("learned", data, ForecastOptions())
    fb = make_forecast("learned", other, ForecastOptions())
    for step in (data.i0, i - 40, i):
        ia, ea = fa.prices(step, 576)
        ib, eb = fb.prices(step, 576)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ea, eb)
    assert fa.fits >= 1
    # ...and the perturbation is real: one step later the current price differs.
    assert fa.prices(i + 1, 576)[0][0] != fb.prices(i + 1, 576)[0][0]


def test_too_little_history_is_refused_with_the_reason():
    s = rrp_series(days=1)
    with pytest.raises(PriceModelError, match="needs at least 2 days"):
        fit_price_model(s, s.index[-1], TZ)
