"""Sigenergy cloud tariff upload (token refresh) and the Tesla client-side rate limiter, against local servers."""

from __future__ import annotations

import pytest

from powersync_pipelines.devices.base import DeviceRejected
from powersync_pipelines.devices.sigenergy_cloud import SigenergyCloud, encrypt_password, tariff_body
from powersync_pipelines.devices.tesla_api import RateLimiter, TeslaClient
from powersync_pipelines.sim.sigenergy_cloud import SigenergyCloudSimulator
from powersync_pipelines.sim.tesla import SITE_ID, TeslaSimulator

DAY = [("00:00", "12:00", 25.0), ("12:00", "24:00", 31.5)]
SELL = [("00:00", "24:00", 5.0)]


@pytest.fixture
def cloud():
    sim = SigenergyCloudSimulator(username="me@example.com", password="s3cret!").start()
    yield sim
    sim.stop()


def test_password_is_encrypted_the_app_way():
    enc = encrypt_password("s3cret!")
    assert enc != "s3cret!" and len(enc) == 24  # one AES block, base64


def test_login_station_discovery_and_tariff_save(cloud):
    c = SigenergyCloud(cloud.base_url, "me@example.com", "s3cret!", backoff_base_s=0.01)
    sid = c.station_id()
    c.save_tariff(sid, DAY, SELL)
    c.close()
    assert sid == 202411 and c.logins == 1
    saved = cloud.saved[0]
    assert saved["priceMode"] == 1 and saved["stationId"] == 202411
    slots = saved["buyPrice"]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"]
    assert slots == [{"timeRange": "00:00-12:00", "price": 25.0}, {"timeRange": "12:00-24:00", "price": 31.5}]
    assert saved["buyPrice"]["staticPricing"]["currencyCode"] == "Cent"


def test_expired_token_is_refreshed_and_the_call_retried(cloud):
    c = SigenergyCloud(cloud.base_url, "me@example.com", "s3cret!", backoff_base_s=0.01)
    c.stations()
    cloud.revoke_access_tokens()  # the server now answers 401
    c.save_tariff(202411, DAY, SELL)
    assert (c.logins, c.refreshes) == (1, 1) and len(cloud.saved) == 1


def test_token_near_expiry_is_refreshed_before_the_call(cloud):
    now = [1000.0]
    c = SigenergyCloud(cloud.base_url, "me@example.com", "s3cret!", clock=lambda: now[0])
    c.stations()
    now[0] += 3590  # within a minute of expiry
    c.stations()
    assert (c.logins, c.refreshes) == (1, 1)


def test_wrong_password_is_a_clear_error_without_the_password(cloud):
    c = SigenergyCloud(cloud.base_url, "me@example.com", "not-it", backoff_base_s=0.01)
    with pytest.raises(DeviceRejected) as info:
        c.stations()
    assert "login refused" in str(info.value) and "not-it" not in str(info.value)


def test_tariff_body_rejects_bad_times():
    with pytest.raises(ValueError, match="25:00"):
        tariff_body(1, [("00:00", "25:00", 1.0)], SELL)


def test_rate_limiter_waits_for_the_oldest_call_to_leave_the_window():
    clock = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        clock[0] += s

    lim = RateLimiter(30, 60.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(30):
        assert lim.acquire() == 0.0
        clock[0] += 1.0
    assert lim.acquire() == pytest.approx(30.0)  # call 31 at t=30 waits until t=60
    assert waits == [pytest.approx(30.0)]


def test_client_side_limit_keeps_the_server_from_answering_429():
    sim = TeslaSimulator(port=0, token="tok", rate_limit_per_minute=4, rate_period_s=0.4, time_scale=0).start()
    try:
        client = TeslaClient(sim.base_url, "tok", rate_limit_per_minute=4, rate_period_s=0.4, backoff_base_s=0.01)
        for _ in range(9):
            client.live_status(SITE_ID)
        client.close()
        assert client.calls == 9 and len(sim.requests) == 9  # no 429, no retries
    finally:
        sim.stop()


def test_without_the_limiter_the_server_answers_429_and_the_client_retries():
    sim = TeslaSimulator(port=0, token="tok", rate_limit_per_minute=2, rate_period_s=0.3, time_scale=0).start()
    try:
        client = TeslaClient(sim.base_url, "tok", backoff_base_s=0.01, attempts=3)
        for _ in range(3):
            client.live_status(SITE_ID)
        client.close()
        assert client.calls > 3  # the third call met a 429, waited Retry-After and was retried
    finally:
        sim.stop()


def test_cloud_client_from_site_config(cloud, monkeypatch):
    from powersync_pipelines.devices.sigenergy_cloud import cloud_for_site

    from .conftest import make_site

    site = make_site({"kind": "sigenergy", "host": "127.0.0.1", "port": 1503, "cloud_base_url": cloud.base_url,
                      "cloud_username_env": "SIG_USER", "cloud_password_env": "SIG_PASS", "station_id": "202411"})
    with pytest.raises(Exception, match="SIG_USER, SIG_PASS not set"):
        cloud_for_site(site)
    monkeypatch.setenv("SIG_USER", "me@example.com")
    monkeypatch.setenv("SIG_PASS", "s3cret!")
    c = cloud_for_site(site)
    c.save_tariff(c.station_id(site.battery.station_id), DAY, SELL)
    c.close()
    assert len(cloud.saved) == 1
