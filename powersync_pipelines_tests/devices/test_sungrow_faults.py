"""Faults injected into the Sungrow simulator end in a clear error and a safe battery state."""

from __future__ import annotations

import pytest

from powersync_pipelines.devices import open_device
from powersync_pipelines.devices.maps import SG


@pytest.mark.parametrize("code", [2, 4, 6])
def test_exception_on_command_write_restores_self_consumption(sungrow_sim, sungrow_site, store, code):
    sungrow_sim.inject("exception", code=code, address=SG.COMMAND, on="write", count=2)
    with open_device(sungrow_site, store) as dev:
        result = dev.force_charge(30, 3.0)
    assert not result.ok and result.outcome == "error"
    assert f"exception {code}" in result.error and "13050" in result.error
    assert "returned to its saved state" in result.error
    s = sungrow_sim.state
    assert (s["ems_mode"], s["command"]) == (0, SG.CMD_STOP)
    assert store.query("SELECT outcome FROM commands")["outcome"].tolist() == ["error"]
    saved = store.query("SELECT status FROM device_saved_state")
    assert saved["status"].tolist() == ["restored"]


def test_single_exception_is_retried_once_and_succeeds(sungrow_sim, sungrow_site):
    sungrow_sim.inject("exception", code=6, address=SG.EMS_MODE, on="write", count=1)
    with open_device(sungrow_site) as dev:
        result = dev.force_discharge(30, 2.0)
    assert result.ok, result.error
    assert [w.code for w in sungrow_sim.writes if w.address == SG.EMS_MODE] == [6, None]


def test_connection_dropped_mid_write_is_reconnected_and_verified(sungrow_sim, sungrow_site):
    # the write is applied, then the connection drops before the reply: the driver reconnects, rewrites, verifies
    sungrow_sim.inject("drop_after_write", address=SG.EMS_MODE, on="write", count=1)
    with open_device(sungrow_site) as dev:
        result = dev.force_charge(30, 2.0)
    assert result.ok, result.error
    assert (sungrow_sim.state["ems_mode"], sungrow_sim.state["command"]) == (2, SG.CMD_CHARGE)


def test_connection_keeps_dropping_on_command_ends_in_safe_state(sungrow_sim, sungrow_site):
    sungrow_sim.inject("drop", address=SG.COMMAND, on="write", count=2)
    with open_device(sungrow_site) as dev:
        result = dev.force_discharge(30, 2.0)
    assert not result.ok and "no reply" in result.error
    assert sungrow_sim.state["ems_mode"] == 0


def test_timeout_on_telemetry_refuses_to_command(sungrow_sim, sungrow_site, store):
    sungrow_sim.inject("timeout", on="read", count=-1, delay_s=0.8)
    with open_device(sungrow_site, store) as dev:
        result = dev.force_charge(30, 2.0)
    sungrow_sim.clear_faults()
    assert result.outcome == "refused" and "refusing to command" in result.error
    assert sungrow_sim.written_addresses(accepted_only=False) == []


def test_unreachable_device_is_a_clear_error(sungrow_site):
    site = sungrow_site.model_copy(update={"battery": sungrow_site.battery.model_copy(update={"port": 1})})
    with open_device(site) as dev, pytest.raises(Exception) as info:
        dev.read_telemetry()
    assert "cannot connect" in str(info.value) and "127.0.0.1:1" in str(info.value)
