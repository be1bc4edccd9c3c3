"""A backtest of the learned model plans with the site's own spike-reserve settings, as the live blend does:
only what the site changed is passed on, and an explicit forecast option still wins."""

from __future__ import annotations

from powersync_pipelines.backtest import BacktestConfig, ForecastOptions
from powersync_pipelines.backtest.forecasts import make_forecast
from powersync_pipelines.backtest.runner import _with_site_reserve

from ._prices import backtest_data, rrp_series


def _site_with(demo_site, **rule):
    features = demo_site.features.model_copy(
        update={"spike_reserve": demo_site.features.spike_reserve.model_copy(update=rule)})
    return demo_site.model_copy(update={"features": features})


def test_a_default_site_adds_no_options(demo_site):
    cfg = BacktestConfig(forecast="learned")
    assert _with_site_reserve(cfg, demo_site) == cfg


def test_the_sites_changed_settings_reach_the_learned_model(demo_site):
    site = _site_with(demo_site, enabled=False, gate=[], quiet_threshold_per_mwh=None, horizon_hours=None)
    cfg = _with_site_reserve(BacktestConfig(forecast="learned"), site)
    assert dict(cfg.forecast_options.params) == {"reserve_weight": 0.0, "reserve_gate": (),
                                                  "quiet_threshold": None, "reserve_horizon_hours": None}
    model = make_forecast("learned", backtest_data(rrp_series(days=4, seed=2), history_days=3, days=1),
                          cfg.forecast_options)
    assert model.rule.weight == 0.0 and model.rule.gate == ()
    assert model.rule.quiet_threshold is None and model.rule.horizon_hours is None


def test_an_explicit_option_wins_and_other_models_are_untouched(demo_site):
    site = _site_with(demo_site, enabled=False, threshold_per_mwh=500.0)
    cfg = BacktestConfig(forecast="learned", forecast_options=ForecastOptions(params=(("reserve_weight", 0.5),)))
    params = dict(_with_site_reserve(cfg, site).forecast_options.params)
    assert params == {"reserve_weight": 0.5, "spike_threshold": 500.0}
    assert _with_site_reserve(BacktestConfig(forecast="persistence"), site).forecast_options.params == ()


def test_every_setting_names_an_option_the_learned_model_reads(demo_site):
    """The site's settings travel as backtest options; the learned model must rebuild the site's rule from them."""
    site = _site_with(demo_site, enabled=False, threshold_per_mwh=500.0, quiet_threshold_per_mwh=None, gate=[],
                      episode_gate=[], horizon_hours=None, side="import")
    cfg = _with_site_reserve(BacktestConfig(forecast="learned"), site)
    assert len(cfg.forecast_options.params) == 7
    data = backtest_data(rrp_series(days=4, seed=2), history_days=3, days=1)
    model = make_forecast("learned", data, cfg.forecast_options)
    assert model.rule == site.features.spike_reserve.rule()
    assert model.episode.all()  # no episode gate: always inside an episode
    assert model.reserve_open.all()  # no gate: the rule may fire everywhere
