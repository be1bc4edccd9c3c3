"""The regression's coefficients differ by the issue's local time of day (blocks shrunk towards the pooled fit).

The synthetic market: a dear or cheap evening (one shock held 17:00-21:00) and a noisy midday (a fresh shock
every interval 10:00-13:00). A deviation seen at 17:00 therefore lasts the evening and one seen at 11:00 is
gone at the next interval; one pooled regression averages the two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.learned import model_config
from powersync_pipelines.forecasts.price_model import (
    FittedPriceModel,
    PriceModelConfig,
    PriceModelError,
    fit_price_model,
    issue_block,
)

from ._prices import TZ, rrp_series

AS_OF = pd.Timestamp("2024-06-12", tz=TZ).tz_convert("UTC")


@pytest.fixture(scope="module")
def market() -> pd.Series:
    s = rrp_series(days=44, spikes=False)
    local = s.index.tz_convert(TZ)
    hour = np.asarray(local.hour + local.minute / 60)
    day = np.asarray(local.normalize().strftime("%Y%m%d").astype(int))
    rng = np.random.default_rng(3)
    x = s.to_numpy().copy()
    for d in np.unique(day):
        evening = (day == d) & (hour >= 17) & (hour < 21)
        x[evening] += rng.normal(0, 150)
        midday = (day == d) & (hour >= 10) & (hour < 13)
        x[midday] += rng.normal(0, 150, int(midday.sum()))
    return pd.Series(x, index=s.index, name="rrp")


def _one_hour_on(model: FittedPriceModel, market: pd.Series, when: str, surprise: float = 200.0) -> float:
    """The forecast deviation from the profile one hour after an issue at ``when`` that saw ``surprise``."""
    now = pd.Timestamp(f"2024-06-12 {when}", tz=TZ).tz_convert("UTC")
    recent = market[(market.index <= now) & (market.index > now - pd.Timedelta(days=1))].copy()
    recent.iloc[-1] = model.baseline(recent.index[-1:])[0] + surprise
    path = model.forecast(now, recent, horizon=13)
    return float(path.mean[12] - model.baseline(path.index[12:13])[0])


def _fit(market: pd.Series, **knobs) -> FittedPriceModel:
    return fit_price_model(market, AS_OF, TZ, PriceModelConfig(**knobs))


def test_blocks_learn_that_an_evening_deviation_lasts_and_a_midday_one_does_not(market):
    pooled, blocks = _fit(market, issue_blocks=1), _fit(market, issue_blocks=12, block_prior_days=None)
    # the truth one hour on: the evening's 200 holds, the midday's is gone
    assert _one_hour_on(blocks, market, "17:00") == pytest.approx(200, abs=30)
    assert abs(_one_hour_on(blocks, market, "11:00")) < 30
    # one pooled fit averages the two: too little in the evening, too much at midday
    assert _one_hour_on(pooled, market, "17:00") < 150
    assert _one_hour_on(pooled, market, "11:00") > 40


def test_the_prior_pulls_each_block_towards_the_pooled_fit(market):
    pooled, free = _fit(market, issue_blocks=1), _fit(market, issue_blocks=12, block_prior_days=None)
    shipped = _fit(market)  # 12 blocks, prior worth 10 days
    assert (shipped.config.issue_blocks, shipped.config.block_prior_days) == (12, 10.0)
    for when in ("11:00", "17:00"):
        lo, hi = sorted((_one_hour_on(pooled, market, when), _one_hour_on(free, market, when)))
        assert lo < _one_hour_on(shipped, market, when) < hi
    # a prior worth far more than the window: every block is the pooled regression
    rigid = _fit(market, issue_blocks=12, block_prior_days=1e7)
    np.testing.assert_allclose(rigid.coef, np.repeat(pooled.coef, 12, axis=0), rtol=1e-2, atol=1e-4)


def test_coefficients_are_picked_by_the_issue_slots_block():
    assert issue_block(0, 12) == 0 and issue_block(23, 12) == 0 and issue_block(24, 12) == 1
    assert issue_block(287, 12) == 11 and issue_block(287, 1) == 0
    np.testing.assert_array_equal(issue_block(np.array([0, 143, 144, 287]), 2), [0, 0, 1, 1])


def test_a_stored_single_matrix_model_still_loads_and_forecasts_alike(market):
    one = _fit(market, issue_blocks=1, block_prior_days=None)
    old = one.to_dict()
    old["coef"] = old["coef"][0]  # code version 3 stored one (horizon, features) matrix ...
    old["code_version"] = 3
    for knob in ("issue_blocks", "block_prior_days"):  # ... and a config without the block knobs
        del old["config"][knob]
    back = FittedPriceModel.from_dict(old)
    assert back.coef.shape == one.coef.shape == (1, 576, 7)
    assert (back.config.issue_blocks, back.config.block_prior_days) == (1, None)
    assert back.version.startswith("profile_ar_quantile-v3-")  # keeps the version it was fitted under
    now = pd.Timestamp("2024-06-12 17:00", tz=TZ).tz_convert("UTC")
    recent = market[(market.index <= now) & (market.index > now - pd.Timedelta(days=1))]
    np.testing.assert_allclose(back.forecast(now, recent).mean, one.forecast(now, recent).mean, atol=1e-4)


def test_a_twelve_block_model_round_trips(market):
    m = _fit(market)
    back = FittedPriceModel.from_dict(m.to_dict())
    assert back.coef.shape == (12, 576, 7) and back.version == m.version
    now = pd.Timestamp("2024-06-12 11:00", tz=TZ).tz_convert("UTC")
    recent = market[(market.index <= now) & (market.index > now - pd.Timedelta(days=1))]
    np.testing.assert_allclose(back.forecast(now, recent).mean, m.forecast(now, recent).mean, atol=1e-4)


@pytest.mark.parametrize("knobs", [{"issue_blocks": 0}, {"issue_blocks": 289}, {"block_prior_days": -1.0}])
def test_block_knobs_out_of_range_are_refused(knobs):
    with pytest.raises(PriceModelError, match=next(iter(knobs))):
        PriceModelConfig(**knobs)


def test_backtest_options_reach_the_block_knobs():
    opts = ForecastOptions(params=(("block_prior_days", "none"), ("issue_blocks", "4")))
    cfg = model_config(opts)
    assert (cfg.issue_blocks, cfg.block_prior_days) == (4, None)
    assert (model_config(ForecastOptions()).issue_blocks, model_config(ForecastOptions()).block_prior_days) == (12, 10.0)


@pytest.mark.parametrize("prior", [None, 0.0, 10.0])
def test_a_short_history_leaves_no_block_unfitted(market, prior):
    """2.5 days: for the longest horizons some blocks have no issue time left; they take the pooled fit."""
    short = market[(market.index >= AS_OF - pd.Timedelta(days=2.5)) & (market.index < AS_OF)]
    model = fit_price_model(short, AS_OF, TZ, PriceModelConfig(block_prior_days=prior))
    pooled = fit_price_model(short, AS_OF, TZ, PriceModelConfig(issue_blocks=1))
    assert np.isfinite(model.coef).all()
    # the last horizon (575 steps) is fitted on the window's first n - 575 issue times only
    first = short.index[:len(short) - 575].tz_convert(TZ)
    per_block = np.bincount(issue_block(np.asarray(first.hour * 12 + first.minute // 5), 12), minlength=12)
    starved = per_block < 2 * 7
    assert 0 < starved.sum() < 12
    np.testing.assert_allclose(model.coef[starved, -1], np.repeat(pooled.coef[:, -1], starved.sum(), axis=0))
    assert not np.allclose(model.coef[~starved, -1], pooled.coef[:, -1])
