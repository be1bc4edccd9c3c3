"""The Amber client against respx with our own Amber-shaped payloads: auth, discovery, retries, bad bodies."""

from __future__ import annotations

import logging

import httpx
import pandas as pd
import pytest
import respx

from powersync_pipelines.prices.amber import discover_sites, fetch_amber
from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.http import make_client

from .conftest import FIXTURES, make_site

BASE = "http://amber.test/v1"
SITE_ID = "01J8ZQ3C5VW0RAH0EXAMPLE01"
TOKEN = "psk_0123456789abcdef0123456789abcdef"
NOW = pd.Timestamp("2025-01-15T03:02:00Z")
PRICES = (FIXTURES / "amber_prices_current_5min.json").read_bytes()
SITES = (FIXTURES / "amber_sites.json").read_bytes()


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("AMBER_TEST_TOKEN", TOKEN)


def site(**kw):
    return make_site("amber", region="SA1", token_env="AMBER_TEST_TOKEN", base_url=BASE, **kw)


def prices_route(mock, *responses):
    return mock.get(f"{BASE}/sites/{SITE_ID}/prices/current").mock(side_effect=list(responses))


@respx.mock
def test_fetch_sends_bearer_token_and_window_and_normalises(token, fast_policy):
    route = prices_route(respx, httpx.Response(200, content=PRICES, headers={"content-type": "application/json"}))
    frame = fetch_amber(site(site_id=SITE_ID), NOW, horizon_hours=24, policy=fast_policy, history_hours=1)
    req = route.calls.last.request
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert dict(req.url.params) == {"next": "288", "previous": "12", "resolution": "5"}
    # 12 actual + current + 5 five-minute forecasts + 48 thirty-minute forecasts spread on the 5-min grid
    assert len(frame) == 18 + 48 * 6
    assert frame.index[0] == pd.Timestamp("2025-01-15T02:00:00Z")
    assert frame.loc["2025-01-15T03:00:00Z", "provenance"] == "current"
    spikes = frame[frame["spike_status"] == "potential"]
    assert len(spikes) == 2 * 6 and (spikes["is_forecast"]).all()  # the 18:00-19:00 NEM hour
    assert (frame["export_price"] > 0).mean() > 0.5  # feedIn was negative in the payload: flipped
    assert frame["fetched_at"].iloc[0] == NOW


@respx.mock
def test_thirty_minute_resolution_is_requested_when_configured(token, fast_policy):
    route = prices_route(respx, httpx.Response(200, content=PRICES))
    fetch_amber(site(site_id=SITE_ID, resolution=30), NOW, horizon_hours=48, policy=fast_policy)
    assert route.calls.last.request.url.params["resolution"] == "30"
    assert route.calls.last.request.url.params["next"] == "96"


@respx.mock
def test_site_is_discovered_from_sites_when_not_configured(token, fast_policy):
    respx.get(f"{BASE}/sites").mock(return_value=httpx.Response(200, content=SITES))
    prices_route(respx, httpx.Response(200, content=PRICES))
    frame = fetch_amber(site(), NOW, policy=fast_policy)
    assert frame.attrs["amber_site_id"] == SITE_ID  # the closed site is ignored
    with make_client() as client:
        sites = discover_sites(client, "AMBER_TEST_TOKEN", BASE, fast_policy)
    assert [s["region"] for s in sites] == ["SA1", "SA1"]


@respx.mock
def test_several_active_sites_ask_the_owner_to_choose(token, fast_policy):
    two = [{"id": "A1", "network": "Ausgrid", "status": "active"}, {"id": "B2", "network": "Jemena", "status": "active"}]
    respx.get(f"{BASE}/sites").mock(return_value=httpx.Response(200, json=two))
    with pytest.raises(PriceDataError, match="site_id to one of: A1, B2"):
        fetch_amber(site(), NOW, policy=fast_policy)


@respx.mock
def test_401_is_token_invalid_and_never_shows_the_token(token, fast_policy, caplog):
    prices_route(respx, httpx.Response(401, json={"message": "Unauthorized"}))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PriceDataError) as err:
        fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)
    assert err.value.problem == "token_invalid" and "amber: token invalid" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text


def test_missing_token_env_is_a_clear_error(monkeypatch, fast_policy):
    monkeypatch.delenv("AMBER_TEST_TOKEN", raising=False)
    with pytest.raises(PriceDataError, match="AMBER_TEST_TOKEN is not set"):
        fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)


@respx.mock
def test_429_is_retried_after_the_servers_retry_after(token, fast_policy, no_sleep):
    route = prices_route(respx, httpx.Response(429, headers={"Retry-After": "7"}),
                         httpx.Response(200, content=PRICES))
    frame = fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)
    assert route.call_count == 2 and no_sleep.delays == [7.0] and len(frame) > 0


@respx.mock
def test_5xx_backs_off_exponentially_then_gives_up(token, fast_policy, no_sleep):
    route = prices_route(respx, *[httpx.Response(503)] * 3)
    with pytest.raises(PriceDataError) as err:
        fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)
    assert route.call_count == 3 and no_sleep.delays == [1.0, 2.0]
    assert err.value.problem == "server_error" and "gave up after 3 attempts" in str(err.value)


@respx.mock
def test_timeouts_are_retried_and_reported(token, fast_policy):
    prices_route(respx, *[httpx.ReadTimeout("slow")] * 3)
    with pytest.raises(PriceDataError) as err:
        fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)
    assert err.value.problem == "timeout"


@respx.mock
def test_an_html_page_instead_of_json_is_named_as_such(token, fast_policy):
    page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body></html>"
    prices_route(respx, httpx.Response(200, content=page, headers={"content-type": "text/html"}))
    with pytest.raises(PriceDataError, match="amber: html instead of json"):
        fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)


@pytest.mark.parametrize("body, problem", [
    (b'[{"type": "ActualInterval", "duration": 5', "malformed_json"),
    (b'{"message": "ok"}', "malformed_payload"),
    (b'[{"type": "ActualInterval", "duration": 5, "channelType": "general"}]', "malformed_payload"),
    (b"[]", "empty_payload"),
])
@respx.mock
def test_malformed_bodies_are_refused_with_the_reason(token, fast_policy, body, problem):
    prices_route(respx, httpx.Response(200, content=body))
    with pytest.raises(PriceDataError) as err:
        fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)
    assert err.value.problem == problem


@respx.mock
def test_dollar_per_kwh_values_in_perkwh_are_a_unit_error(token, fast_policy):
    import json

    items = json.loads(PRICES)
    for x in items:
        x["perKwh"] = x["perKwh"] / 100  # someone "helpfully" converted to $/kWh
        x.pop("advancedPrice", None)
    prices_route(respx, httpx.Response(200, json=items))
    with pytest.raises(PriceDataError, match="wrong units.*look like \\$/kWh"):
        fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)


@respx.mock
def test_base_url_comes_from_the_environment_when_the_site_has_none(token, monkeypatch, fast_policy):
    monkeypatch.setenv("POWERSYNC_AMBER_BASE_URL", "http://mirror.test/v1/")
    route = respx.get(f"http://mirror.test/v1/sites/{SITE_ID}/prices/current").mock(
        return_value=httpx.Response(200, content=PRICES))
    s = make_site("amber", region="SA1", token_env="AMBER_TEST_TOKEN", site_id=SITE_ID)
    fetch_amber(s, NOW, policy=fast_policy)
    assert route.called


@respx.mock
def test_import_only_plans_earn_nothing_for_export(token, fast_policy):
    import json

    items = [x for x in json.loads(PRICES) if x["channelType"] == "general"]
    prices_route(respx, httpx.Response(200, json=items))
    frame = fetch_amber(site(site_id=SITE_ID), NOW, policy=fast_policy)
    assert (frame["export_price"] == 0).all() and frame["controlled_load_price"].isna().all()
