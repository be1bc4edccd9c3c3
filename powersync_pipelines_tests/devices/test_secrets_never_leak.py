"""A server that echoes the request (the ``Authorization`` header, the query string, the form body) into its
error reply never gets a piece of a secret into the error, the ``commands`` row, the saved state or the logs,
for every HTTP client of the project (issue 31 item 9)."""

from __future__ import annotations

import logging

import httpx
import pytest

from powersync_pipelines.config import parse_sites
from powersync_pipelines.devices import DeviceRejected, open_device
from powersync_pipelines.devices.inverters.control import curtail_inverter
from powersync_pipelines.devices.inverters.enphase import EnphaseGateway
from powersync_pipelines.devices.sigenergy_cloud import SigenergyCloud, encrypt_password
from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.http import RetryPolicy, bearer, make_client, request

from ..fault_peers import EchoServer, leaked
from .conftest import make_site

TOKEN = "tsla-Q9v7Xk2mZp4Lr8Ws1Nb6Yc3Hd5Jf0Gt"
STYLES = ["json-error", "json", "text", "text-cut"]

TESLA_OK = {
    "/site_info": {"response": {
        "default_real_mode": "self_consumption", "backup_reserve_percent": 20, "nameplate_energy": 13500,
        "installation_time_zone": "Australia/Melbourne",
        "components": {"customer_preferred_export_rule": "battery_ok",
                       "disallow_charge_from_grid_with_solar_installed": True},
        "tariff_content_v2": {"code": "USER", "name": "user"}}},
    "/live_status": {"response": {"percentage_charged": 50.0, "battery_power": 0, "grid_power": 500,
                                  "load_power": 500, "solar_power": 0, "total_pack_energy": 13000}},
}


def _everything(store, result, caplog, capsys) -> list[object]:
    out, err = capsys.readouterr()
    return [result.error, store.query("SELECT * FROM commands").to_csv(),
            store.query("SELECT * FROM device_saved_state").to_csv(), caplog.text, out, err]


@pytest.mark.parametrize("style", STYLES)
def test_tesla_command_against_an_echoing_server(style, store, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ECHO_TESLA_TOKEN", TOKEN)
    with EchoServer(400, style, ok=TESLA_OK) as srv:
        site = make_site({"kind": "tesla", "base_url": srv.url, "token_env": "ECHO_TESLA_TOKEN",
                          "energy_site_id": "42", "connect_attempts": 1})
        with open_device(site, store) as dev:
            result = dev.force_charge(30)
        assert any("Authorization" in r["headers"] for r in srv.requests if r["method"] == "POST")
    assert result.outcome == "error" and "HTTP 400" in result.error
    assert leaked(TOKEN, *_everything(store, result, caplog, capsys)) == []


@pytest.mark.parametrize("style", STYLES)
def test_price_request_with_a_header_token_nobody_registered(style, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "amb-" + TOKEN[::-1]  # never passed through bearer(): only the request itself knows it
    with EchoServer(400, style) as srv, make_client() as client, pytest.raises(PriceDataError) as info:
        request(client, "amber", "GET", f"{srv.url}/v1/sites", headers={"Authorization": f"Bearer {secret}"},
                policy=RetryPolicy(attempts=1))
    assert "HTTP 400" in str(info.value)
    assert leaked(secret, str(info.value), caplog.text) == []


def test_price_request_with_a_key_in_the_query_string_and_the_httpx_log(caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    key = "octo-" + TOKEN[5:]
    monkeypatch.setenv("ECHO_AMBER", "amb-registered-" + TOKEN[:12])
    headers = bearer("ECHO_AMBER", "amber")
    with EchoServer(400, "text") as srv, make_client() as client, pytest.raises(PriceDataError) as info:
        request(client, "octopus", "GET", f"{srv.url}/v1/rates?api_key={key}&period_from=2024",
                headers=headers, policy=RetryPolicy(attempts=1))
    assert any("HTTP Request" in r.getMessage() for r in caplog.records if r.name == "httpx")
    assert leaked(key, str(info.value), caplog.text) == []
    assert leaked(headers["Authorization"].split()[1], str(info.value), caplog.text) == []


def test_enphase_gateway_echo_is_redacted_in_the_command_record(store, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJ1c2VyIjoiaW5zdGFsbGVyIn0." + TOKEN
    monkeypatch.setenv("ECHO_ENVOY", jwt)
    with EchoServer(400, "text", ok={"/auth/check_jwt": {}}) as srv:
        doc = {"sites": [{"id": "inv", "timezone": "Australia/Melbourne",
                          "provider": {"kind": "aemo", "region": "VIC1"},
                          "battery": {"kind": "simulated", "capacity_kwh": 10, "max_charge_kw": 5,
                                      "max_discharge_kw": 5},
                          "ac_inverter": {"brand": "enphase", "host": "127.0.0.1", "port": srv.port,
                                          "token_env": "ECHO_ENVOY"}}]}
        site = parse_sites(doc).sites[0]
        gateway = EnphaseGateway(site.ac_inverter, scheme="http")
        result = curtail_inverter(site, store, gateway)
        gateway.close()
    assert result.outcome == "error" and "HTTP 400" in result.error
    assert leaked(jwt, result.error, store.query("SELECT * FROM commands").to_csv(), caplog.text) == []


def test_sigenergy_login_echo_hides_the_password_and_its_encrypted_form(caplog):
    caplog.set_level(logging.DEBUG)
    password = "Sig-" + TOKEN[4:20]
    with EchoServer(400, "json-error") as srv:
        cloud = SigenergyCloud(srv.url, "me@example.com", password, attempts=1)
        with pytest.raises(DeviceRejected) as info:
            cloud.stations()
        cloud.close()
        assert "password=" in srv.requests[0]["body"]
    assert "login refused (HTTP 400" in str(info.value)
    encrypted = encrypt_password(password)
    assert leaked(password, str(info.value), caplog.text) == []
    assert leaked(encrypted, str(info.value), caplog.text) == []
    assert leaked(httpx.QueryParams({"p": encrypted})["p"], str(info.value), caplog.text) == []
