"""The Sigenergy cloud log-in stays logged in: the account's 13-digit device id goes with the password login,
tokens are kept between processes in a 0600 file (a new run neither logs in again nor spends a refresh token
another process already rotated), and a token that expires mid-session is refreshed once and the call
retried. Against the loopback app-API simulator."""

from __future__ import annotations

import stat
from typing import Any
from urllib.parse import parse_qs

import pytest

from powersync_pipelines.devices.credentials import CredentialFile
from powersync_pipelines.devices.sigenergy_cloud import cloud_for_site
from powersync_pipelines.sim.sigenergy_cloud import SigenergyCloudSimulator

from .conftest import make_site

USER, PASSWORD, DEVICE_ID = "owner@example.com", "pw-Sigen-42!", "1234567890123"
DAY = [("00:00", "12:00", 25.0), ("12:00", "24:00", 31.5)]
SELL = [("00:00", "24:00", 5.0)]


class DeviceIdCloud(SigenergyCloudSimulator):
    """The simulator, plus what an account with a device id checks: the login's ``userDeviceId``."""

    def __init__(self, device_id: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.device_id = device_id
        self.forms: list[dict[str, str]] = []

    def _route(self, h, method, raw):  # noqa: ANN001, ANN202 - the simulator's handler hook
        if h.path == "/auth/oauth/token":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            self.forms.append(form)
            if form.get("grant_type") == "password" and form.get("userDeviceId") != self.device_id:
                return 400, {"code": 1, "msg": "device id mismatch"}
        return super()._route(h, method, raw)


@pytest.fixture
def cloud():
    sim = DeviceIdCloud(DEVICE_ID, username=USER, password=PASSWORD).start()
    yield sim
    sim.stop()


@pytest.fixture
def site(cloud, monkeypatch):
    monkeypatch.setenv("SIG_USER", USER)
    monkeypatch.setenv("SIG_PASS", PASSWORD)
    return make_site({"kind": "sigenergy", "host": "127.0.0.1", "port": 1503, "cloud_base_url": cloud.base_url,
                      "cloud_username_env": "SIG_USER", "cloud_password_env": "SIG_PASS", "station_id": "202411",
                      "cloud_device_id": DEVICE_ID})


def grants(cloud: DeviceIdCloud) -> list[str]:
    return [f["grant_type"] for f in cloud.forms]


def test_the_login_sends_the_accounts_device_id(cloud, site):
    c = cloud_for_site(site)
    c.save_tariff(202411, DAY, SELL)
    c.close()
    assert cloud.forms[0]["userDeviceId"] == DEVICE_ID and len(cloud.saved) == 1


def test_an_account_without_a_device_id_logs_in_without_one(monkeypatch):
    sim = DeviceIdCloud(None, username=USER, password=PASSWORD).start()
    try:
        monkeypatch.setenv("SIG_USER", USER)
        monkeypatch.setenv("SIG_PASS", PASSWORD)
        s = make_site({"kind": "sigenergy", "host": "127.0.0.1", "port": 1503, "cloud_base_url": sim.base_url,
                       "cloud_username_env": "SIG_USER", "cloud_password_env": "SIG_PASS"})
        c = cloud_for_site(s)
        assert c.station_id() == 202411
        c.close()
        assert "userDeviceId" not in sim.forms[0]
    finally:
        sim.stop()


def test_the_next_process_reuses_the_stored_token_without_logging_in(cloud, site):
    first = cloud_for_site(site)
    first.stations()
    first.close()
    second = cloud_for_site(site)  # a new Dagster run
    second.save_tariff(202411, DAY, SELL)
    second.close()
    assert grants(cloud) == ["password"] and (second.logins, second.refreshes) == (0, 0)
    files = list(CredentialFile("x").path.parent.glob("sigenergy_*.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    text = files[0].read_text()
    assert PASSWORD not in text and USER not in text


def test_an_expired_token_mid_session_is_refreshed_once_by_one_process_and_followed_by_the_other(cloud, site):
    a, b = cloud_for_site(site), cloud_for_site(site)
    a.stations()
    b.stations()  # b adopted a's token
    cloud.revoke_access_tokens()  # the server now answers 401 to it
    a.save_tariff(202411, DAY, SELL)  # 401 -> refresh (the single-use refresh token is spent) -> retry
    b.save_tariff(202411, DAY, SELL)  # 401 -> takes a's new token from the file, no second refresh
    a.close()
    b.close()
    assert grants(cloud) == ["password", "refresh_token"] and len(cloud.saved) == 2
    assert (b.logins, b.refreshes) == (0, 0)


def test_a_token_near_expiry_is_refreshed_before_the_call_and_stored(cloud, site):
    c = cloud_for_site(site)
    c.stations()
    c.clock = lambda: c._expires_at - 30  # inside the minute before expiry
    c.stations()
    c.close()
    assert grants(cloud) == ["password", "refresh_token"]
    stored = CredentialFile(c.credentials.path.stem).read()
    assert stored["access_token"] in cloud.tokens and stored["refresh_token"] in cloud.refresh_tokens


def test_the_device_id_is_validated_and_belongs_to_sigenergy():
    with pytest.raises(Exception, match="cloud_device_id"):
        make_site({"kind": "sigenergy", "host": "127.0.0.1", "port": 1503, "cloud_device_id": "12345"})
    with pytest.raises(Exception, match="cloud_device_id is the Sigenergy"):
        make_site({"kind": "tesla", "cloud_device_id": DEVICE_ID})
