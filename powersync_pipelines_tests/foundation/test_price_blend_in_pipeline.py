"""Once a price model is fitted, the live price_forecast fills the provider's short horizon with the learned
model (provenance 'learned') instead of repeating the last price, and the plan uses what was served."""

from __future__ import annotations

import pandas as pd

from powersync_pipelines import pipeline
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
