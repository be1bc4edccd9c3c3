"""Flow Power priced from Amber's API when the site has an Amber token (the original's option): the real SA
``/prices/current`` response served on loopback becomes the wholesale RRP (spotPerKwh x 1000 / 1.1), priced
as Flow Power bills it; without a token, or when Amber fails under ``auto``, NEMWEB feeds it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pydantic import ValidationError

from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.flow_power import fetch_flow_power, read_flow_power_file, uses_amber

from .conftest import make_site
from .test_aemo_nemweb import NOW, serve_nemweb
from .test_flow_power_and_globird import NETWORK

AMBER_SITE = "01J0SAMPLESITE"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def amber_payload(real_data):
    return real_data / "amber/enkit-matlab/sa_forecast_30min/raw_example/20250410_035149.json"


def amber_site(server, **extra):
    return make_site("flow_power", region="SA1", network_tariff=NETWORK, margin_per_kwh=0.02, resolution=30,
                     token_env="AMBER_TOKEN", site_id=AMBER_SITE, amber_base_url=server.url, base_url=server.url,
                     **extra)


def test_with_an_amber_token_the_wholesale_price_is_ambers_spot(server, amber_payload, monkeypatch):
    monkeypatch.setenv("AMBER_TOKEN", "psk_amber_secret")
    server.routes[f"/sites/{AMBER_SITE}/prices/current"] = (200, JSON, amber_payload.read_bytes())
    site = amber_site(server)
    now = pd.Timestamp("2025-04-09T18:21Z")
    df = fetch_flow_power(site, now, horizon_hours=24)
    path, query, headers = server.hits[0]
    assert path == f"/sites/{AMBER_SITE}/prices/current" and headers["Authorization"] == "Bearer psk_amber_secret"
    assert query["resolution"] == ["30"] and len(server.hits) == 1  # NEMWEB was not asked
    general = [x for x in json.loads(amber_payload.read_text()) if x["channelType"] == "general"]
    first = general[0]
    t0 = pd.Timestamp(first["endTime"]) - pd.Timedelta(minutes=30)
    assert df.index[0] == t0 and len(df) == len(general)
    rrp = first["spotPerKwh"] * 10 / 1.1  # c/kWh inc GST -> $/MWh ex GST
    assert df.loc[t0, "rrp"] == pytest.approx(rrp)
    assert t0.tz_convert("Australia/Adelaide").hour < 10  # 02:30 local: the 0.15 $/kWh network band
    assert df.loc[t0, "import_price"] == pytest.approx((rrp / 1000 + 0.15 + 0.02) * 1.1)
    assert (df["source"] == "flow_power_amber").all()
    forecast = [pd.Timestamp(x["endTime"]) - pd.Timedelta(minutes=30) for x in general if x["type"] == "ForecastInterval"]
    assert df.loc[forecast, "is_forecast"].all() and not df.loc[t0, "is_forecast"]
    happy = df.index.tz_convert("Australia/Adelaide")
    in_happy = (happy.hour * 60 + happy.minute >= 17 * 60 + 30) & (happy.hour * 60 + happy.minute < 19 * 60 + 30)
    assert (df.loc[in_happy, "export_price"] == 0.45).all() and (df.loc[~in_happy, "export_price"] == 0).all()


def test_when_amber_fails_under_auto_nemweb_feeds_it_and_says_so(server, monkeypatch):
    monkeypatch.setenv("AMBER_TOKEN", "psk_revoked")
    server.routes[f"/sites/{AMBER_SITE}/prices/current"] = (401, JSON, b'{"message":"Unauthorized"}')
    serve_nemweb(server)
    df = fetch_flow_power(amber_site(server), NOW, horizon_hours=24)
    assert (df["source"] == "flow_power").all() and "Amber unavailable" in df.attrs["wholesale_fallback"]
    assert "psk_revoked" not in df.attrs["wholesale_fallback"]
    assert df["spike_status"].iloc[0] == "spike"  # SA1 dispatch at $15,000 in the NEMWEB fixture


def test_when_amber_is_chosen_explicitly_its_failure_is_the_error(server, monkeypatch):
    monkeypatch.setenv("AMBER_TOKEN", "psk_revoked")
    server.routes[f"/sites/{AMBER_SITE}/prices/current"] = (401, JSON, b'{"message":"Unauthorized"}')
    with pytest.raises(PriceDataError, match="token invalid or expired"):
        fetch_flow_power(amber_site(server, wholesale_source="amber"), NOW, horizon_hours=24)


def test_without_a_token_or_with_aemo_chosen_nemweb_is_used(server, monkeypatch):
    monkeypatch.setenv("AMBER_TOKEN", "psk_x")
    assert not uses_amber(make_site("flow_power", region="SA1").provider)
    assert not uses_amber(make_site("flow_power", region="SA1", token_env="AMBER_TOKEN",
                                    wholesale_source="aemo").provider)
    serve_nemweb(server)
    df = fetch_flow_power(make_site("flow_power", region="SA1", token_env="AMBER_TOKEN", wholesale_source="aemo",
                                    base_url=server.url), NOW, horizon_hours=24)
    assert (df["source"] == "flow_power").all() and not any(h[0].startswith("/sites") for h in server.hits)


def test_the_wholesale_source_is_validated():
    with pytest.raises(ValidationError, match="wholesale_source 'amber' needs token_env"):
        make_site("flow_power", region="SA1", wholesale_source="amber")
    with pytest.raises(ValidationError, match="does not apply to provider kind 'aemo'"):
        make_site("aemo", region="SA1", wholesale_source="amber", token_env="AMBER_TOKEN")


def test_a_saved_amber_response_prices_flow_power_offline(amber_payload):
    site = make_site("flow_power", region="SA1", network_tariff=NETWORK)
    df = read_flow_power_file(str(amber_payload), site.provider, site.timezone)
    assert len(df) == 97 and (df["source"] == "flow_power_amber_file").all()
    assert df["rrp"].notna().all() and (df["import_price"] > 0).all()
