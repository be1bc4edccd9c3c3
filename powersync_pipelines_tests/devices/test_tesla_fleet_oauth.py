"""Tesla Fleet API log-ins that stay logged in, against a loopback token endpoint (real reply shape, single-use
rotating refresh tokens) paired with the Fleet-API simulator: refreshed before expiry, the rotated refresh
token kept in a 0600 file and reused by the next process, an access token that expires mid-session gets one
refresh and one retry, and no token ever reaches a log, an error or a repr."""

from __future__ import annotations

import logging
import stat

import pytest

from powersync_pipelines.devices.base import DeviceError
from powersync_pipelines.devices.credentials import CredentialFile
from powersync_pipelines.devices.tesla import TeslaPowerwall, fleet_oauth
from powersync_pipelines.devices.tesla_api import (
    REFRESH_MARGIN_S,
    FleetOAuthClient,
    TeslaAuthError,
    TeslaClient,
    TeslaOAuth,
)
from powersync_pipelines.redaction import MASK, redact
from powersync_pipelines.sim.tesla import SITE_ID, TeslaSimulator

from .conftest import make_site
from .tesla_auth_peer import TeslaAuthPeer, jwt

CLIENT_ID = "powersync-test-app"
SEED = "NA_seed-refresh-token-0123456789abcdef"


@pytest.fixture
def fleet():
    sim = TeslaSimulator(port=0, soc=0.6, load_kw=1.0, token="nobody-has-this-yet", time_scale=0.0).start()
    yield sim
    sim.stop()


@pytest.fixture
def auth(fleet):
    peer = TeslaAuthPeer(CLIENT_ID, SEED, fleet=fleet).start()
    yield peer
    peer.stop()


def oauth(auth, clock=None, seed=SEED, name="tesla_TESLA_REFRESH") -> TeslaOAuth:
    kwargs = {"clock": clock} if clock else {}
    return TeslaOAuth(CLIENT_ID, seed, CredentialFile(name), token_url=auth.token_url, seed_name="TESLA_REFRESH",
                      **kwargs)


def client(fleet, auth_oauth) -> FleetOAuthClient:
    return FleetOAuthClient(fleet.base_url, auth_oauth, backoff_base_s=0.01)


def test_the_first_call_refreshes_and_the_rotated_token_is_kept_in_a_0600_file(fleet, auth):
    c = client(fleet, oauth(auth))
    assert c.live_status(SITE_ID)["percentage_charged"] == pytest.approx(60.0)
    c.close()
    form = auth.requests[0]
    assert form == {"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": SEED}
    f = CredentialFile("tesla_TESLA_REFRESH")
    stored = f.read()
    assert stored["refresh_token"] in auth.valid_refresh and stored["refresh_token"] != SEED
    assert stored["access_token"] == auth.issued[0] and stored["rotations"] == 1
    assert stat.S_IMODE(f.path.stat().st_mode) == 0o600 and stat.S_IMODE(f.path.parent.stat().st_mode) == 0o700


def test_the_next_process_reuses_the_access_token_and_later_refreshes_with_the_rotated_one(fleet, auth):
    now = [1_000_000.0]
    first = client(fleet, oauth(auth, clock=lambda: now[0]))
    first.live_status(SITE_ID)
    first.close()
    second = client(fleet, oauth(auth, clock=lambda: now[0]))  # a new Dagster run: the seed is spent by now
    second.live_status(SITE_ID)
    assert auth.refreshes == 1  # the stored access token was still good
    now[0] += 28800 - REFRESH_MARGIN_S + 1  # within the margin of expiry: refreshed before the call
    second.site_info(SITE_ID)
    second.close()
    assert auth.refreshes == 2 and auth.requests[1]["refresh_token"] != SEED
    assert second.auth_retries == 0  # no 401 was needed to find out
    assert CredentialFile("tesla_TESLA_REFRESH").read()["rotations"] == 2


def test_an_access_token_that_expires_mid_session_gets_one_refresh_and_one_retry(fleet, auth):
    c = client(fleet, oauth(auth))
    c.live_status(SITE_ID)
    auth.expire_access()  # revoked / expired early: the Fleet API now answers 401
    c.set_backup_reserve(SITE_ID, 35)
    c.close()
    assert fleet.state["backup_reserve_percent"] == 35
    statuses = [p for m, p, _ in fleet.requests if m == "POST"]
    assert len(statuses) == 2  # the refused POST and its one retry
    assert c.auth_retries == 1 and auth.refreshes == 2


def test_a_second_401_after_the_refresh_is_reported_not_looped_on(fleet, auth):
    c = client(fleet, oauth(auth))
    c.live_status(SITE_ID)
    auth.fleet = None  # new tokens are issued but the API refuses them (e.g. the app lost its energy scopes)
    fleet.token = "a-token-no-refresh-will-give"
    with pytest.raises(TeslaAuthError, match="token rejected"):
        c.live_status(SITE_ID)
    c.close()
    assert c.auth_retries == 1 and auth.refreshes == 2


def test_another_process_that_already_rotated_the_token_is_followed_not_raced(fleet, auth):
    now = [1_000_000.0]
    a = client(fleet, oauth(auth, clock=lambda: now[0]))
    b = client(fleet, oauth(auth, clock=lambda: now[0]))
    a.live_status(SITE_ID)
    b.live_status(SITE_ID)  # b reads the token a stored: no second refresh
    assert auth.refreshes == 1
    auth.expire_access()
    a.live_status(SITE_ID)  # a refreshes (rotation 2) ...
    b.live_status(SITE_ID)  # ... b's token is refused, and b takes a's new one instead of spending a dead token
    a.close()
    b.close()
    assert auth.refreshes == 2 and b.auth_retries == 1
    assert all(f["refresh_token"] != SEED for f in auth.requests[1:])


def test_a_refused_refresh_token_says_what_to_do_without_revealing_it(fleet, auth):
    auth.valid_refresh.clear()  # revoked, or expired after 3 months unused
    c = client(fleet, oauth(auth))
    with pytest.raises(TeslaAuthError) as info:
        c.live_status(SITE_ID)
    c.close()
    msg = str(info.value)
    assert "refresh refused (HTTP 401: login_required)" in msg and "TESLA_REFRESH" in msg and SEED not in msg


def test_a_new_seed_after_re_authorising_wins_over_the_stored_chain(fleet, auth):
    c = client(fleet, oauth(auth))
    c.live_status(SITE_ID)
    c.close()
    new_seed = "NA_new-seed-after-reauthorising"
    auth.valid_refresh = {new_seed}  # the owner signed in again: the old chain is revoked
    auth.expire_access()
    c = client(fleet, oauth(auth, seed=new_seed))
    c.live_status(SITE_ID)
    c.close()
    assert auth.requests[-1]["refresh_token"] == new_seed
    assert CredentialFile("tesla_TESLA_REFRESH").read()["rotations"] == 1


def test_a_current_access_token_from_the_environment_is_used_until_it_expires(fleet, auth):
    now = [1_000_000.0]
    fleet.token = seeded = jwt(now[0] + 3600)
    o = TeslaOAuth(CLIENT_ID, SEED, CredentialFile("tesla_X"), token_url=auth.token_url, access_token=seeded,
                   clock=lambda: now[0])
    c = client(fleet, o)
    c.live_status(SITE_ID)
    assert auth.refreshes == 0
    now[0] += 3600 - REFRESH_MARGIN_S
    c.live_status(SITE_ID)
    c.close()
    assert auth.refreshes == 1


def test_no_token_reaches_the_log_or_a_repr(fleet, auth, caplog):
    caplog.set_level(logging.DEBUG)
    o = oauth(auth)
    c = client(fleet, o)
    c.live_status(SITE_ID)
    auth.expire_access()
    c.live_status(SITE_ID)
    c.close()
    secrets = [SEED, *auth.issued, *auth.valid_refresh]
    text = caplog.text + repr(o) + repr(o.credentials) + str(o.status())
    assert not [s for s in secrets if s in text]
    assert o.status()["rotations"] == 2 and o.status()["stored"]


def test_refreshed_and_rotated_tokens_are_masked_in_any_later_error_text(fleet, auth):
    """A token this process obtained by refreshing is registered for redaction, so a server or a log line that
    repeats it in plain prose (no ``token=`` shape to catch) still shows only the mask."""
    o = oauth(auth)
    c = client(fleet, o)
    c.live_status(SITE_ID)
    auth.expire_access()
    c.live_status(SITE_ID)
    c.close()
    rotated = CredentialFile("tesla_TESLA_REFRESH").read()["refresh_token"]
    assert rotated.startswith("NA_") and rotated not in (SEED,)
    for secret in (rotated, auth.issued[-1]):
        text = redact(f"upstream said: {secret} is not valid here")
        assert secret not in text and secret[:12] not in text and MASK in text


def test_the_powerwall_driver_stays_logged_in_through_the_site_config(fleet, auth, monkeypatch):
    monkeypatch.setenv("TESLA_REFRESH", SEED)
    site = make_site({"kind": "tesla", "base_url": fleet.base_url, "energy_site_id": SITE_ID,
                      "oauth_client_id": CLIENT_ID, "refresh_token_env": "TESLA_REFRESH",
                      "oauth_token_url": auth.token_url})
    with TeslaPowerwall(site) as pw:
        first = pw.read_telemetry()
        auth.expire_access()
        second = pw.read_telemetry()
        assert isinstance(pw.client, FleetOAuthClient)
    assert first.soc == second.soc == pytest.approx(0.6) and auth.refreshes == 2
    monkeypatch.delenv("TESLA_REFRESH")
    with pytest.raises(DeviceError, match="TESLA_REFRESH is not set"):
        fleet_oauth(site)


def test_teslemetry_keeps_its_static_token_and_never_refreshes(fleet, monkeypatch):
    fleet.token = "teslemetry-token"
    monkeypatch.setenv("TESLEMETRY_TOKEN", "teslemetry-token")
    site = make_site({"kind": "tesla", "base_url": fleet.base_url, "api": "teslemetry", "energy_site_id": SITE_ID,
                      "token_env": "TESLEMETRY_TOKEN"})
    with TeslaPowerwall(site) as pw:
        pw.read_telemetry()
        assert type(pw.client) is TeslaClient
        fleet.token = "rotated-elsewhere"
        with pytest.raises(TeslaAuthError):
            pw.client.live_status(SITE_ID)
