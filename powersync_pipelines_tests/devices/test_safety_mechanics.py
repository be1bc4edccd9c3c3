"""Reconnect backoff, the single-writer lock, the in-memory simulated kind, and fault safety on the other kinds."""

from __future__ import annotations

import pytest
from filelock import FileLock

from powersync_pipelines.devices import open_device
from powersync_pipelines.devices.locks import DeviceBusy, device_writer
from powersync_pipelines.devices.maps import SIG
from powersync_pipelines.devices.modbus import ModbusLink
from powersync_pipelines.paths import powersync_home

from .conftest import make_site


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    link = ModbusLink("127.0.0.1", 1, 1, backoff_base_s=0.5, backoff_max_s=10.0)
    caps = []
    for failures in (1, 2, 3, 4, 8):
        link._ep.failures = failures
        samples = [link._backoff_delay() for _ in range(200)]
        cap = min(10.0, 0.5 * 2 ** (failures - 1))
        assert all(cap / 2 <= s <= cap for s in samples)
        assert len({round(s, 6) for s in samples}) > 150  # jittered: clients do not retry in lock-step
        caps.append(max(samples))
    assert caps == sorted(caps) and caps[-1] <= 10.0


def test_a_second_writer_is_refused_while_the_device_is_held():
    key = "sungrow_sh@127.0.0.1:1502/1"
    with device_writer(key):
        other_process = FileLock(str(powersync_home() / "locks" / "device-sungrow_sh_127.0.0.1_1502_1.lock"))
        with pytest.raises(TimeoutError):
            other_process.acquire(timeout=0.1)
    other_process.acquire(timeout=0.1)
    try:
        with pytest.raises(DeviceBusy, match="another process"), device_writer(key, timeout_s=0.1):
            pass
    finally:
        other_process.release()


def test_simulated_kind_follows_the_same_rules(store):
    site = make_site({"kind": "simulated", "initial_soc_pct": 50}, site_id="simkind")
    with open_device(site, store) as dev:
        assert dev.force_charge(30, 9.0).params["clamped_to_rated_kw"] == 5.0
        assert dev.read_telemetry().battery_charge_kw == 5.0
        assert dev.restore_normal().ok
        dev.model.soc = 0.05
        assert dev.force_discharge(30).outcome == "refused"
        assert dev.set_export_limit(0).ok and dev.read_telemetry().grid_export_kw == 0


def test_sigenergy_connection_dropped_on_every_mode_write_ends_safe(sigen_sim, sigen_site):
    sigen_sim.inject("drop", address=SIG.CONTROL_MODE, on="write", count=2)
    with open_device(sigen_site) as dev:
        r = dev.force_charge(30, 2.0)
    assert not r.ok and "40031" in r.error and "saved state" in r.error
    assert (sigen_sim.state["remote_ems"], sigen_sim.state["control_mode"]) == (0, SIG.MODE_SELF)
    assert sigen_sim.state["charge_limit_w"] == 5000  # the forced power limit was put back too


def test_sigenergy_timeout_on_reads_refuses(sigen_sim, sigen_site):
    sigen_sim.inject("timeout", on="read", count=-1, delay_s=0.8)
    with open_device(sigen_site) as dev:
        r = dev.force_discharge(30, 2.0)
    sigen_sim.clear_faults()
    assert r.outcome == "refused" and sigen_sim.written_addresses(accepted_only=False) == []


def test_tesla_429_in_the_middle_of_a_force_puts_the_settings_back(tesla_sim, tesla_site):
    tesla_sim.set(soc=0.8)
    tesla_sim.inject(429, count=-1, path_contains="operation", retry_after=0.05)
    with open_device(tesla_site) as dev:
        r = dev.force_discharge(30)
    tesla_sim.faults.clear()
    assert not r.ok and "429" in r.error and "saved state" in r.error
    s = tesla_sim.state
    assert (s["tariff_code"], s["customer_preferred_export_rule"], s["default_real_mode"]) == (
        "USER_TARIFF", "battery_ok", "self_consumption")
    assert s["disallow_charge_from_grid_with_solar_installed"] is False
