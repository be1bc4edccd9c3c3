"""The served horizon says where every interval came from: the provider where it published, the learned model
beyond (or when the provider's forecast is stale), padding only when no model exists."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.forecasts.blend import blend_price_horizon, blend_weights, fit_blend_weights
from powersync_pipelines.forecasts.price_mapping import SpikeReserveRule
from powersync_pipelines.forecasts.price_model import PriceModelError, fit_price_model

from ._prices import RETAIL_MAPS, TZ, retail, rrp_series

NOW = pd.Timestamp("2024-05-20T03:00:00Z")


@pytest.fixture(scope="module")
def world():
    s = rrp_series(days=21, seed=11)
    imp, exp = retail(s.to_numpy())
    hist = pd.DataFrame({"import_price": imp, "export_price": exp, "rrp": s.to_numpy()}, index=s.index)
    model = fit_price_model(s, pd.Timestamp("2024-05-19T14:00:00Z"), TZ)
    return hist[hist.index <= NOW], model


def amber_like(now: pd.Timestamp, hours: float, fetched: pd.Timestamp, step: str = "30min") -> pd.DataFrame:
    """An Amber-shaped provider frame: the current interval then 30-minute forecasts with a low/high range."""
    idx = pd.date_range(now.floor(step), periods=int(hours * 60 / int(step[:-3])), freq=step, tz="UTC")
    imp = 0.30 + 0.05 * np.sin(np.arange(len(idx)))
    return pd.DataFrame({"import_price": imp, "export_price": imp - 0.15, "price_low": imp - 0.03,
                         "price_high": imp + 0.10, "is_forecast": np.arange(len(idx)) > 0,
                         "source": "amber", "fetched_at": fetched}, index=idx)


def test_provider_then_learned_with_ordered_quantiles(world):
    hist, model = world
    prov = amber_like(NOW, 12, fetched=NOW)
    out = blend_price_horizon(prov, hist, NOW, model, provider_kind="amber")
    assert len(out) == 576 and out.index[0] == NOW
    assert set(out["provenance"]) == {"provider", "learned"}
    assert (out["provenance"].iloc[:144] == "provider").all()
    assert (out["provenance"].iloc[144:] == "learned").all()
    # The first hour is the provider's own price (weight 1); further out it is a blend.
    np.testing.assert_allclose(out["import_price"].iloc[:12], prov["import_price"].reindex(out.index[:12], method="ffill"))
    assert (out["provider_weight"].iloc[12:144] < 1).all() and (out["provider_weight"].iloc[144:] == 0).all()
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    # The provider's own range is kept where it gave one.
    np.testing.assert_allclose(out["price_high"].iloc[:6], prov["price_high"].iloc[0])
    assert not out["filled"].any()


def test_a_stale_provider_forecast_hands_over_to_the_model(world):
    hist, model = world
    prov = amber_like(NOW - pd.Timedelta(hours=3), 12, fetched=NOW - pd.Timedelta(hours=3))
    out = blend_price_horizon(prov, hist, NOW, model, provider_kind="amber")
    assert (out["provenance"].iloc[1:] == "learned").all()
    assert (out["provider_weight"].iloc[1:] == 0).all()


def test_without_a_model_the_short_provider_horizon_is_padded_and_flagged(world):
    hist, _ = world
    prov = amber_like(NOW, 12, fetched=NOW)
    out = blend_price_horizon(prov, hist, NOW, None, provider_kind="amber")
    assert (out["provenance"].iloc[:144] == "provider").all()
    assert (out["provenance"].iloc[144:] == "filled").all() and out["filled"].iloc[144:].all()
    assert (out["import_price"].iloc[144:] == prov["import_price"].iloc[-1]).all()


def test_learned_only_maps_rrp_to_the_retail_tariff(world):
    hist, model = world
    maps = RETAIL_MAPS
    out = blend_price_horizon(pd.DataFrame(), hist, NOW, model, retail=maps, reserve=SpikeReserveRule(weight=0.0))
    assert (out["provenance"] == "learned").all()
    path = model.forecast(NOW, hist["rrp"])
    np.testing.assert_allclose(out["import_price"], maps[0](path.mean))
    np.testing.assert_allclose(out["export_price"], maps[1](path.mean))
    # Learned intervals whose P90 reaches the spike threshold (200 $/MWh) are flagged as potential spikes.
    potential = out["p90"].to_numpy() >= maps[0](np.array([200.0]))[0]
    assert potential.any() and not potential.all()
    np.testing.assert_array_equal(out["spike_status"].to_numpy() == "potential", potential)
    # The map fitted from the stored (rrp, price) pairs is the tariff itself.
    fitted = blend_price_horizon(pd.DataFrame(), hist, NOW, model, reserve=SpikeReserveRule(weight=0.0))
    np.testing.assert_allclose(fitted["import_price"], out["import_price"], atol=1e-9)


def test_no_price_at_all_is_a_clear_error(world):
    _, model = world
    with pytest.raises(PriceModelError, match="no price known"):
        blend_price_horizon(pd.DataFrame(), pd.DataFrame(), NOW, None)


def test_blend_weights_are_fitted_per_horizon_when_captures_exist():
    rng = np.random.default_rng(0)
    h = np.repeat(np.arange(0, 576, 6), 40)
    realised = rng.normal(0.3, 0.1, len(h))
    provider = realised + rng.normal(0, 0.01, len(h)) * (1 + h / 12)  # good near, poor far
    learned = realised + rng.normal(0, 0.05, len(h))
    w = fit_blend_weights(provider, learned, realised, h)
    assert w.provider_weight(0) > 0.9 > w.provider_weight(400)
    assert blend_weights("octopus").provider_weight(500) == 1.0
    assert blend_weights("aemo_p5min").provider_weight(20) == 0.0


def test_an_import_side_reserve_lifts_imports_and_serves_exports_at_the_expected_value(world):
    hist, model = world
    maps = RETAIL_MAPS
    one_rule = SpikeReserveRule(weight=1.0, gate=(), quiet_threshold=None)
    both = blend_price_horizon(pd.DataFrame(), hist, NOW, model, retail=maps, reserve=one_rule)
    imp_side = blend_price_horizon(pd.DataFrame(), hist, NOW, model, retail=maps,
                                   reserve=replace(one_rule, side="import"))
    path = model.forecast(NOW, hist["rrp"])
    lifted = both["export_price"].to_numpy() > maps[1](path.mean) + 1e-9
    assert lifted.any()
    np.testing.assert_allclose(imp_side["import_price"], both["import_price"])
    np.testing.assert_allclose(imp_side["export_price"], maps[1](path.mean))
    with pytest.raises(ValueError, match="reserve_side"):
        replace(one_rule, side="export")


def test_the_live_blend_lifts_only_within_the_reserve_horizon(world):
    from powersync_pipelines.forecasts.price_mapping import RESERVE_HORIZON_HOURS, spike_reserve_prices

    hist, model = world
    maps = RETAIL_MAPS
    out = blend_price_horizon(pd.DataFrame(), hist, NOW, model, retail=maps,
                              reserve=SpikeReserveRule(weight=1.0, gate=(), threshold=150.0, quiet_threshold=None))
    path = model.forecast(NOW, hist["rrp"])
    everywhere = spike_reserve_prices(path.mean, path.p90, 150.0, 1.0, horizon_hours=None) > path.mean + 1e-9
    lifted = out["export_price"].to_numpy() > maps[1](path.mean) + 1e-9
    edge = int(RESERVE_HORIZON_HOURS * 12)
    assert everywhere[:edge].any() and everywhere[edge:].any()  # plausible slots on both sides of the edge
    np.testing.assert_array_equal(lifted[:edge], everywhere[:edge])
    assert not lifted[edge:].any()


def test_outside_a_spike_episode_the_live_rule_fires_only_from_the_quiet_threshold(world):
    hist, model = world
    maps = RETAIL_MAPS
    calm = hist.copy()
    calm["rrp"] = calm["rrp"].clip(upper=900.0)  # no interval >= 1000 $/MWh: no episode
    episode = calm.copy()
    episode.loc[episode.index[-2 * 288], "rrp"] = 2000.0  # one two days ago (outside the model's feature day)
    rule = SpikeReserveRule(weight=1.0, gate=(), threshold=150.0, quiet_threshold=1e6, episode_gate=((1000.0, 7.0),))
    path = model.forecast(NOW, calm["rrp"])
    expected = maps[1](path.mean)
    quiet = blend_price_horizon(pd.DataFrame(), calm, NOW, model, retail=maps, reserve=rule)
    inside = blend_price_horizon(pd.DataFrame(), episode, NOW, model, retail=maps, reserve=rule)
    np.testing.assert_allclose(quiet["export_price"], expected)  # nothing reaches the quiet threshold
    assert (inside["export_price"].to_numpy() > expected + 1e-9).any()  # in an episode: from 150 $/MWh
    one = blend_price_horizon(pd.DataFrame(), calm, NOW, model, retail=maps,
                              reserve=replace(rule, quiet_threshold=None))
    np.testing.assert_allclose(one["export_price"], inside["export_price"])  # no quiet threshold: one rule
