"""The Tesla driver against the local Fleet-API-like server: requests, read-backs, signs, status codes."""

from __future__ import annotations

import logging

import pytest

from powersync_pipelines.devices import open_device
from powersync_pipelines.devices.tesla_tariff import window_tariff
from powersync_pipelines.sim.tesla import SITE_ID


def test_site_discovery_and_telemetry_signs(tesla_sim, tesla_site):
    tesla_sim.set(soc=0.6, load_kw=3.0, solar_kw=1.0)
    with open_device(tesla_site) as dev:
        t = dev.read_telemetry()
        assert dev.site_id == SITE_ID  # discovered from /api/1/products
    assert ("GET", "/api/1/products", None) in tesla_sim.requests
    # battery_power +2000 (discharging) serves 3 kW load with 1 kW solar
    assert (t.battery_discharge_kw, t.battery_charge_kw, t.grid_import_kw) == (2.0, 0.0, 0.0)
    assert t.soc == pytest.approx(0.6) and t.soh == pytest.approx(0.93) and t.mode == "self_consumption"
    tesla_sim.set(solar_kw=9.0)
    with open_device(tesla_site) as dev:
        t = dev.read_telemetry()
    assert t.battery_charge_kw == 5.0 and t.grid_export_kw == pytest.approx(1.0)  # 9 - 3 load - 5 battery


def test_backup_reserve_is_confirmed_by_read_back(tesla_sim, tesla_site, store):
    with open_device(tesla_site, store) as dev:
        r = dev.set_backup_reserve(35)
    assert r.ok and r.readback == {"reserve_pct": 35}
    assert tesla_sim.posts() == [("backup", {"backup_reserve_percent": 35})]
    assert tesla_sim.state["backup_reserve_percent"] == 35


def test_operation_mode_export_rule_and_grid_charging(tesla_sim, tesla_site):
    with open_device(tesla_site) as dev:
        assert dev.set_operation_mode("autonomous").ok
        assert dev.set_grid_export("pv_only").ok
        assert dev.set_grid_charging(False).ok
        assert dev.set_operation_mode("turbo").outcome == "refused"
        assert dev.set_charge_rate(2).outcome == "refused"  # no such control on a Powerwall
    assert tesla_sim.posts() == [
        ("operation", {"default_real_mode": "autonomous"}),
        ("grid_import_export", {"customer_preferred_export_rule": "pv_only"}),
        ("grid_import_export", {"disallow_charge_from_grid_with_solar_installed": True}),
    ]


def test_force_charge_then_restore_puts_everything_back(tesla_sim, tesla_site, store):
    tesla_sim.set(soc=0.4, load_kw=1.0)
    with open_device(tesla_site, store) as dev:
        r = dev.force_charge(60)
        assert r.ok, r.error
        assert tesla_sim.state["tariff_code"] == "POWERSYNC_FORCE_CHARGE"
        assert (tesla_sim.state["default_real_mode"], tesla_sim.state["backup_reserve_percent"]) == ("autonomous", 100)
        tesla_sim.advance(minutes=30)
        t = dev.read_telemetry()
        assert t.battery_charge_kw == 5.0 and t.soc > 0.4
        assert dev.restore_normal().ok
    s = tesla_sim.state
    assert (s["default_real_mode"], s["backup_reserve_percent"], s["tariff_code"]) == ("self_consumption", 20,
                                                                                      "USER_TARIFF")


def test_force_discharge_exports_and_respects_reserve(tesla_sim, tesla_site):
    tesla_sim.set(soc=0.8, load_kw=1.0)
    with open_device(tesla_site) as dev:
        assert dev.force_discharge(30).ok
        assert tesla_sim.state["customer_preferred_export_rule"] == "battery_ok"
        assert tesla_sim.state["disallow_charge_from_grid_with_solar_installed"] is True
        tesla_sim.advance(minutes=10)
        t = dev.read_telemetry()
        assert t.battery_discharge_kw == 5.0 and t.grid_export_kw == pytest.approx(4.0)
        tesla_sim.set(soc=0.2)
        assert dev.force_discharge(30).outcome == "refused"  # at the 20 % reserve


def test_idle_holds_soc_by_reserve(tesla_sim, tesla_site):
    tesla_sim.set(soc=0.655)
    with open_device(tesla_site) as dev:
        assert dev.apply("IDLE", 0).ok
    assert tesla_sim.state["backup_reserve_percent"] == 66


def test_curtail_sets_export_never_and_restores(tesla_sim, tesla_site, store):
    with open_device(tesla_site, store) as dev:
        assert dev.curtail().ok and tesla_sim.state["customer_preferred_export_rule"] == "never"
        assert dev.restore_curtailment().ok
        assert dev.set_export_limit(1500).outcome == "refused"
    assert tesla_sim.state["customer_preferred_export_rule"] == "battery_ok"


def test_tou_upload_and_calendar_history(tesla_sim, tesla_site):
    import pandas as pd

    start = pd.Timestamp("2026-01-01T00:00Z")
    tariff = window_tariff(start, start + pd.Timedelta(hours=1), "Australia/Melbourne", buy_in=0.1, sell_in=0.05,
                           buy_out=0.3, sell_out=0.05, code="AMBER_TEST")
    with open_device(tesla_site) as dev:
        assert dev.upload_tariff(tariff).ok
        assert dev.upload_tariff({"code": "x"}).outcome == "refused"
        tesla_sim.advance(minutes=20)
        hist = dev.calendar_history(kind="energy", period="day")
    assert tesla_sim.state["tariff_code"] == "AMBER_TEST"
    posted = [b for name, b in tesla_sim.posts() if name == "time_of_use_settings"]
    assert posted[0]["tou_settings"]["tariff_content_v2"]["code"] == "AMBER_TEST"
    assert len(hist["time_series"]) >= 4 and "grid_energy_imported" in hist["time_series"][0]


def test_401_is_a_clear_auth_error_without_the_token(tesla_sim, tesla_site, monkeypatch, caplog):
    monkeypatch.setenv("TEST_TESLA_TOKEN", "wrong-secret-value")
    caplog.set_level(logging.DEBUG)
    with open_device(tesla_site) as dev:
        r = dev.set_backup_reserve(30)
    assert not r.ok and "401" in r.error and "token" in r.error
    assert "wrong-secret-value" not in r.error and "wrong-secret-value" not in caplog.text
    assert len(tesla_sim.requests) == 1  # no retry on 401


def test_408_offline_is_retried_then_reported(tesla_sim, tesla_site):
    tesla_sim.inject(408, count=5, path_contains="live_status")
    with open_device(tesla_site) as dev:
        r = dev.force_charge(30)
    assert r.outcome == "refused" and "offline (408" in r.error
    assert tesla_sim.posts() == []


def test_5xx_is_retried_and_recovers(tesla_sim, tesla_site):
    tesla_sim.inject(503, count=1, path_contains="backup", method="POST")
    with open_device(tesla_site) as dev:
        r = dev.set_backup_reserve(40)
    assert r.ok and tesla_sim.state["backup_reserve_percent"] == 40
    assert [n for n, _ in tesla_sim.posts()] == ["backup", "backup"]


def test_429_honours_retry_after_and_persistent_429_is_an_error(tesla_sim, tesla_site):
    tesla_sim.inject(429, count=1, path_contains="operation", retry_after=0.1)
    with open_device(tesla_site) as dev:
        assert dev.set_operation_mode("backup").ok
        tesla_sim.inject(429, count=-1, path_contains="operation", retry_after=0.1)
        r = dev.set_operation_mode("self_consumption")
    assert not r.ok and "rate limited (429" in r.error
    assert tesla_sim.state["default_real_mode"] == "backup"


def test_stale_live_status_refuses_commands(tesla_sim, tesla_site):
    tesla_sim.stale_s = 600
    with open_device(tesla_site) as dev:
        r = dev.force_discharge(30)
    assert r.outcome == "refused" and "old" in r.error
    assert tesla_sim.posts() == []


def test_missing_token_env_is_a_clear_error(tesla_site, monkeypatch):
    monkeypatch.delenv("TEST_TESLA_TOKEN")
    with open_device(tesla_site) as dev:
        r = dev.set_backup_reserve(30)
    assert not r.ok and "TEST_TESLA_TOKEN is not set" in r.error
