"""The demo site switched to each provider in turn, served from saved payloads through the registry and the
last-good-frame store: every provider yields a valid frame on the replay clock's convention."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.config import SiteConfig
from powersync_pipelines.prices.fallback import fetch_with_fallback
from powersync_pipelines.prices.registry import PROVIDERS, fetch_price_frame
from powersync_pipelines.prices.saved import default_saved_now, saved_history
from powersync_pipelines.schemas import PriceFrame

from .conftest import FIXTURES
from .test_flow_power_and_globird import TOU

SAVED = {
    "amber": ({"region": "SA1", "token_env": "AMBER_TOKEN"}, "amber_prices_current_5min.json",
              "2025-01-15T03:00:00Z"),
    "aemo": ({"region": "SA1"}, "PUBLIC_PREDISPATCHIS_202512270030_20251227000120.CSV", "2025-12-27T00:00:00Z"),
    "flow_power": ({"region": "SA1"}, "PUBLIC_PREDISPATCHIS_202512270030_20251227000120.CSV",
                   "2025-12-27T00:00:00Z"),
    "globird": ({"region": "SA1", "tou": TOU}, "PUBLIC_PREDISPATCHIS_202512270030_20251227000120.CSV",
                "2025-12-27T00:00:00Z"),
    "octopus": ({"gsp": "C", "product": "agile"}, "octopus_page_agile_C.json", "2025-01-15T00:00:00Z"),
}


def switched(demo: SiteConfig, kind: str, **provider) -> SiteConfig:
    raw = demo.model_dump()
    raw["provider"] = {"kind": kind, **provider}
    if kind == "octopus":
        raw.update(timezone="Europe/London", country="UK", currency=None)
    return SiteConfig.model_validate(raw)


def test_every_provider_kind_is_registered():
    assert {"amber", "aemo", "flow_power", "globird", "octopus", "replay", "normalized"} <= set(PROVIDERS)


@pytest.mark.parametrize("kind", list(SAVED))
def test_demo_site_switched_to_each_provider_runs_from_a_saved_payload(demo_site, store, kind):
    extra, fixture, replay_start = SAVED[kind]
    site = switched(demo_site, kind, file=str(FIXTURES / fixture), replay_start=replay_start, **extra)
    now = default_saved_now(site)
    assert now == pd.Timestamp(replay_start)
    frame = fetch_price_frame(site, now, horizon_hours=12)
    PriceFrame.validate(frame)
    assert frame.index.min() <= now < frame.index.max()
    assert (frame.loc[frame.index >= now, "is_forecast"]).all()  # the future is a forecast on a replay clock
    assert (frame["fetched_at"] == now).all()
    served, status = fetch_with_fallback(site, now, store, horizon_hours=12)
    assert status.ok, status.message
    assert len(store.read_prices(site.id)) == len(served)
    if kind in ("aemo", "flow_power", "globird"):
        assert "rrp" in frame and frame["rrp"].notna().all()


def test_a_folder_of_amber_day_files_is_one_continuous_history(demo_site, real_data):
    folder = real_data / "amber/enkit-matlab/sa_prices_5min"
    site = switched(demo_site, "amber", region="SA1", token_env="AMBER_TOKEN", file=str(folder),
                    replay_start="2025-01-15T00:00:00Z")
    whole = saved_history(site)
    assert len(whole) == 124 * 288 and whole.index.is_unique
    frame = fetch_price_frame(site, pd.Timestamp("2025-01-15T00:00:00Z"), horizon_hours=48, history_hours=24)
    assert len(frame) == 72 * 12 and int(frame["is_forecast"].sum()) == 48 * 12


def test_a_clock_outside_the_saved_payload_is_a_clear_error(demo_site):
    site = switched(demo_site, "amber", region="SA1", token_env="AMBER_TOKEN",
                    file=str(FIXTURES / "amber_prices_current_5min.json"))
    from powersync_pipelines.prices.errors import PriceDataError

    with pytest.raises(PriceDataError, match="outside the saved payload"):
        fetch_price_frame(site, pd.Timestamp("2030-01-01T00:00:00Z"))


def test_currency_is_explicit_and_a_mismatch_is_refused(demo_site):
    from powersync_pipelines.prices.errors import PriceDataError

    site = switched(demo_site, "amber", region="SA1", token_env="AMBER_TOKEN",
                    file=str(FIXTURES / "amber_prices_current_5min.json"))
    frame = fetch_price_frame(site, pd.Timestamp("2025-01-15T03:00:00Z"), horizon_hours=1)
    assert frame.attrs["currency"] == "AUD" and frame.attrs["tax"] == "GST inclusive"
    raw = site.model_dump()
    raw["provider"] = {"kind": "octopus", "gsp": "C", "file": str(FIXTURES / "octopus_page_agile_C.json")}
    aud_octopus = SiteConfig.model_validate(raw)  # an AU site (AUD) pointed at a UK tariff
    with pytest.raises(PriceDataError, match="billed in AUD but octopus prices are GBP"):
        fetch_price_frame(aud_octopus, pd.Timestamp("2025-01-15T00:00:00Z"))
