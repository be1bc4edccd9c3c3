"""A provider outage keeps the last good prices (fresh enough: plan on them; too old: self-consumption)."""

from __future__ import annotations

import pandas as pd

from powersync_pipelines.control import cycle as pipeline

NOW = pd.Timestamp("2024-02-12T20:00:00Z")


def _broken(site):
    prov = site.provider.model_copy(update={"file": "data/prices/missing.csv"})
    return site.model_copy(update={"provider": prov})


def test_outage_serves_the_last_good_frame_then_falls_back_when_stale(store, demo_site):
    first = pipeline.price_forecast(demo_site, NOW, store)
    assert first.source == "live" and not first.stale
    rows = len(store.read_prices("demo"))

    soon = NOW + pd.Timedelta(minutes=10)
    pf = pipeline.price_forecast(_broken(demo_site), soon, store)
    assert pf.source == "last_good" and not pf.stale
    assert "not found" in pf.message
    assert len(store.read_prices("demo")) == rows  # nothing lost, nothing added

    later = NOW + pd.Timedelta(minutes=45)  # past stale_after_minutes (30)
    pf = pipeline.price_forecast(_broken(demo_site), later, store)
    assert pf.stale and "STALE" in pf.message
    solar, load, _ = pipeline.forecasts(demo_site, later, store)
    plan = pipeline.plan_schedule(demo_site, later, pf.frame, solar, load, 0.6, store,
                                  stale_prices=pf.message)
    r = plan.result
    assert r.status == "fallback_self_consumption" and "stale prices" in r.fallback_reason
    # no trading on stale prices: the battery neither charges from the grid nor exports
    assert not r.intervals["action"].isin(["CHARGE", "EXPORT"]).any()
    meta, _ = store.read_latest_plan("demo")
    assert meta["status"] == "fallback_self_consumption"
