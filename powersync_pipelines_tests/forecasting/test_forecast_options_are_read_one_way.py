"""Backtest forecast options (``--forecast-param`` text or Python values) are read one way for the price model
and the spike-reserve rule: as the knob's own type, ``none`` switching an optional knob off."""

from __future__ import annotations

import pytest

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.learned import LearnedForecast, model_config
from powersync_pipelines.forecasts.price_model import PriceModelConfig

from ._prices import backtest_data, rrp_series


def _opts(**params) -> ForecastOptions:
    return ForecastOptions(params=tuple(params.items()))


def test_text_is_read_as_each_knobs_type():
    cfg = model_config(_opts(fit_days="28", smooth_slots="3", ridge="30", half_life_days="7", clip_q="0.95"))
    assert (cfg.fit_days, cfg.smooth_slots, cfg.ridge) == (28, 3, 30.0)
    assert isinstance(cfg.fit_days, int) and isinstance(cfg.ridge, float)
    assert (cfg.profile_half_life_days, cfg.profile_clip_q) == (7.0, 0.95)  # aliased option names
    assert model_config(_opts()) == PriceModelConfig()


@pytest.mark.parametrize("given", ["4", "4.0", " 4 ", 4, 4.0])
def test_a_whole_number_knob_takes_a_whole_float_and_refuses_a_fraction(given):
    cfg = model_config(_opts(issue_blocks=given))
    assert cfg.issue_blocks == 4 and isinstance(cfg.issue_blocks, int)
    with pytest.raises(ValueError, match="whole number"):
        model_config(_opts(issue_blocks="4.5"))
    with pytest.raises(ValueError, match="whole number"):
        model_config(_opts(fit_days=27.5))


def test_none_switches_an_optional_knob_off_and_leaves_the_others_at_their_defaults():
    assert model_config(_opts(target_clip="none")).target_clip is None
    assert model_config(_opts(target_clip=None)).target_clip is None
    assert model_config(_opts(quantile_half_life_days="14")).quantile_half_life_days == 14.0  # default None
    assert model_config(_opts(fit_days=None)).fit_days == PriceModelConfig().fit_days
    with pytest.raises(ValueError):
        model_config(_opts(fit_days="none"))


@pytest.mark.parametrize("off", ["none", " None ", "NONE", "", None])
def test_every_optional_option_is_switched_off_by_the_same_text(off):
    data = backtest_data(rrp_series(days=4, seed=3), history_days=3, days=1)
    model = LearnedForecast(data, _opts(quiet_threshold=off, reserve_horizon_hours=off, block_prior_days=off))
    assert (model.rule.quiet_threshold, model.rule.horizon_hours, model.config.block_prior_days) == (None, None, None)
