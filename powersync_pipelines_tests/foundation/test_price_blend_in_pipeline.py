"""Once a price model is fitted, the live price_forecast fills the provider's short horizon with the learned
model (provenance 'learned') instead of repeating the last price, and the plan uses what was served."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.config.features import SpikeReserveConfig
from powersync_pipelines.control import cycle as pipeline
from powersync_pipelines.forecasts.price_mapping import reserve_rule
from powersync_pipelines.forecasts.price_registry import refit_site_model


def test_learned_model_fills_beyond_the_provider_horizon(store, demo_site):
    # store a week of realised replay prices, fit a model on it
    for day in range(7):
        t = pd.Timestamp("2024-02-07T00:00Z") + pd.Timedelta(days=day)
        pipeline.price_forecast(demo_site, t, store)
    now = pd.Timestamp("2024-02-20T00:00Z")  # the replay file ends ~14 h later
    refit_site_model(store, "demo", demo_site.timezone, now - pd.Timedelta(days=5))
    pf = pipeline.price_forecast(demo_site, now, store)
    prov = pf.frame["provenance"]
    assert (prov.iloc[:12] == "provider").all()
    assert (prov.iloc[-12:] == "learned").all()
    tail = pf.frame["import_price"].iloc[-288:]
    assert tail.nunique() > 10  # a shaped forecast, not the last price repeated
    assert (pf.frame["p10"] <= pf.frame["p90"] + 1e-9).all()
    # downstream assets read back exactly what was served
    again = pipeline.stored_price_forecast(demo_site, now, store)
    pd.testing.assert_series_equal(again.frame["import_price"], pf.frame["import_price"], check_freq=False)
    assert (again.frame["provenance"] == prov).all()


def test_without_a_model_the_short_horizon_is_padded_and_flagged(store, demo_site):
    now = pd.Timestamp("2024-02-20T00:00Z")
    pf = pipeline.price_forecast(demo_site, now, store)
    assert set(pf.frame["provenance"]) == {"provider", "filled"}
    assert pf.frame.loc[pf.frame["filled"], "import_price"].nunique() == 1


def test_the_site_sets_the_live_spike_reserve_rule(store, demo_site):
    """``features.spike_reserve`` reaches the live blend: switched off, the learned intervals are the expected
    value; ungated with a low threshold over the whole horizon, they are lifted towards the P90."""
    for day in range(7):
        pipeline.price_forecast(demo_site, pd.Timestamp("2024-02-07T00:00Z") + pd.Timedelta(days=day), store)
    now = pd.Timestamp("2024-02-20T00:00Z")
    refit_site_model(store, "demo", demo_site.timezone, now - pd.Timedelta(days=5))

    def served(**rule) -> pd.DataFrame:
        features = demo_site.features.model_copy(
            update={"spike_reserve": demo_site.features.spike_reserve.model_copy(update=rule)})
        return pipeline.price_forecast(demo_site.model_copy(update={"features": features}), now, store).frame

    off = served(enabled=False)
    eager = served(gate=[], threshold_per_mwh=1.0, quiet_threshold_per_mwh=None, horizon_hours=None)
    learned = (off["provenance"] == "learned").to_numpy()
    assert learned.sum() > 288
    gap = (eager["import_price"] - off["import_price"]).to_numpy()[learned]
    assert (gap >= -1e-12).all()
    assert (gap > 1e-6).mean() > 0.5  # lifted over most of the learned horizon, tomorrow included
    assert (gap[-288:] > 1e-6).any()  # beyond the default 18 h horizon too
    # switched off, the served learned prices sit inside the model's P10-P90 band (the expected value)
    assert (off["import_price"] <= off["p90"] + 1e-9).to_numpy()[learned].all()


def test_spike_reserve_settings_are_validated():
    with pytest.raises(ValueError, match="must both be > 0"):
        SpikeReserveConfig(gate=[(300.0, 0.0)])
    with pytest.raises(ValueError):
        SpikeReserveConfig(weight=1.5)
    rule = reserve_rule(SpikeReserveConfig(enabled=False, gate=[]))
    assert rule.weight == 0.0 and rule.gate == ()
