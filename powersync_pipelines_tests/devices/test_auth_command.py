"""``powersync auth``: a site's cloud log-ins without their secrets; ``--refresh`` renews them (Tesla: rotates
the refresh token, Sigenergy: logs in) and exits 1 with the reason when the cloud refuses."""

from __future__ import annotations

import json

import pytest
import yaml

from powersync_pipelines import cli
from powersync_pipelines.sim.sigenergy_cloud import SigenergyCloudSimulator
from powersync_pipelines.sim.tesla import SITE_ID, TeslaSimulator

from .tesla_auth_peer import TeslaAuthPeer

SEED = "NA_cli-seed-refresh-token"
BATTERY = {"capacity_kwh": 13.5, "max_charge_kw": 5.0, "max_discharge_kw": 5.0}


def sites_file(tmp_path, battery):
    doc = {"sites": [{"id": "home", "timezone": "Australia/Sydney", "provider": {"kind": "aemo", "region": "NSW1"},
                      "battery": {**BATTERY, **battery}}]}
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def tesla_cloud():
    fleet = TeslaSimulator(port=0, token="none-yet", time_scale=0.0).start()
    auth = TeslaAuthPeer("cli-app", SEED, fleet=fleet).start()
    yield fleet, auth
    auth.stop()
    fleet.stop()


def test_tesla_refresh_rotates_the_chain_and_prints_no_token(tesla_cloud, tmp_path, monkeypatch, capsys):
    fleet, auth = tesla_cloud
    monkeypatch.setenv("TESLA_REFRESH", SEED)
    sites = sites_file(tmp_path, {"kind": "tesla", "base_url": fleet.base_url, "energy_site_id": SITE_ID,
                                  "oauth_client_id": "cli-app", "refresh_token_env": "TESLA_REFRESH",
                                  "oauth_token_url": auth.token_url})
    assert cli.main(["auth", "--site-id", "home", "--sites", sites, "--refresh"]) == 0
    out = capsys.readouterr().out
    login = json.loads(out)["logins"][0]
    assert login["login"] == "tesla_fleet_oauth" and login["rotations"] == 1 and login["stored"]
    assert login["access_expires_at"] and login["credential_file"].endswith("tesla_TESLA_REFRESH.json")
    assert not [t for t in [SEED, *auth.issued, *auth.valid_refresh] if t in out]
    auth.valid_refresh.clear()  # revoked in the Tesla app
    assert cli.main(["auth", "--site-id", "home", "--sites", sites, "--refresh"]) == 1
    assert "refresh refused" in capsys.readouterr().err


def test_sigenergy_login_is_kept_and_shown(tmp_path, monkeypatch, capsys):
    sim = SigenergyCloudSimulator(username="me@example.com", password="S3cret-Sigen!").start()
    try:
        monkeypatch.setenv("SIG_USER", "me@example.com")
        monkeypatch.setenv("SIG_PASS", "S3cret-Sigen!")
        sites = sites_file(tmp_path, {"kind": "sigenergy", "host": "127.0.0.1", "port": 1502,
                                      "cloud_base_url": sim.base_url, "cloud_username_env": "SIG_USER",
                                      "cloud_password_env": "SIG_PASS", "cloud_device_id": "1234567890123"})
        assert cli.main(["auth", "--site-id", "home", "--sites", sites]) == 0
        before = json.loads(capsys.readouterr().out)["logins"][0]
        assert cli.main(["auth", "--site-id", "home", "--sites", sites, "--refresh"]) == 0
        after = json.loads(capsys.readouterr().out)["logins"][0]
    finally:
        sim.stop()
    assert not before["stored"] and after["stored"] and after["device_id_sent"]
    assert "S3cret-Sigen!" not in json.dumps(after)


def test_a_site_without_cloud_logins_is_told_so(tmp_path, capsys):
    sites = sites_file(tmp_path, {"kind": "simulated"})
    assert cli.main(["auth", "--site-id", "home", "--sites", sites]) == 2
    assert "no cloud log-in to check" in capsys.readouterr().err
