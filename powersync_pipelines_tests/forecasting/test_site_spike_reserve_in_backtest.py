"""A backtest of the learned model plans with the site's own spike-reserve rule, as the live blend does: the
rule travels as a value (``LearnedOptions``), and a rule option named on the command line wins field by field."""

from __future__ import annotations

from powersync_pipelines.backtest import ForecastOptions
from powersync_pipelines.backtest.forecasts import make_forecast
from powersync_pipelines.backtest.runner import site_learned_options
from powersync_pipelines.forecasts.price_mapping import SpikeReserveRule, reserve_rule

from ._prices import backtest_data, rrp_series


def _site_with(demo_site, **rule):
    features = demo_site.features.model_copy(
        update={"spike_reserve": demo_site.features.spike_reserve.model_copy(update=rule)})
    return demo_site.model_copy(update={"features": features})


def test_a_default_site_plans_with_the_default_rule(demo_site):
    learned = site_learned_options(ForecastOptions(), demo_site, [])
    assert learned.rule == SpikeReserveRule()
    assert learned.select  # the daily strategy selection is what ships


def test_the_sites_rule_reaches_the_learned_model_as_a_value(demo_site):
    site = _site_with(demo_site, enabled=False, threshold_per_mwh=500.0, quiet_threshold_per_mwh=None, gate=[],
                      episode_gate=[], horizon_hours=None, side="import")
    learned = site_learned_options(ForecastOptions(), site, [])
    assert learned.rule == reserve_rule(site.features.spike_reserve)
    data = backtest_data(rrp_series(days=4, seed=2), history_days=3, days=1)
    model = make_forecast("learned", data, ForecastOptions(model_options=learned))
    assert model.rule == reserve_rule(site.features.spike_reserve)
    assert model.rule.weight == 0.0 and model.rule.side == "import"
    assert model.episode.all()  # no episode gate: always inside an episode
    assert not model.reserve_open.any()  # weight 0: the rule never lifts


def test_an_explicit_option_wins_field_by_field(demo_site):
    site = _site_with(demo_site, enabled=False, threshold_per_mwh=500.0)
    learned = site_learned_options(ForecastOptions(params=(("reserve_weight", "0.5"),)), site, [])
    assert learned.rule == SpikeReserveRule(weight=0.5, threshold=500.0)


def test_the_runs_own_prices_are_the_history_unless_one_is_named(demo_site):
    learned = site_learned_options(ForecastOptions(), demo_site, ["prices/*.csv"])
    assert learned.history_sources == ("prices/*.csv",) and learned.history is None
    named = site_learned_options(ForecastOptions(params=(("history", "h.csv"),)), demo_site, ["prices/*.csv"])
    assert named.history == "h.csv" and named.history_sources == ()
