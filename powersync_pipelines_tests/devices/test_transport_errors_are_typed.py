"""A battery that dies mid-command (TCP reset between two writes) ends in a recorded command, an attempted safe
mode and a saved state that the next check restores, for every driver; no transport error escapes as a
traceback (issue 31 item 3)."""

from __future__ import annotations

import pytest

from powersync_pipelines.config import parse_sites
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.restore import due
from powersync_pipelines.devices import DeviceRejected, DeviceUnavailable, open_device, state
from powersync_pipelines.devices.inverters.control import curtail_inverter, restore_inverter
from powersync_pipelines.devices.maps import SG, SIG
from powersync_pipelines.devices.modbus import ModbusLink
from powersync_pipelines.devices.sigenergy_cloud import SigenergyCloud
from powersync_pipelines.devices.tesla_api import TeslaClient

from ..arbitrated import arbitrated, restore_due
from ..fault_peers import EchoServer, FaultyTcp, http_request_to, modbus_write_to


def _saved(store) -> dict:
    return store.query("SELECT status, attempts, last_error FROM device_saved_state WHERE slot = 'forced'") \
        .iloc[0].to_dict()


def _through(site, port: int):
    return site.model_copy(update={"battery": site.battery.model_copy(update={"port": port})})


def test_sungrow_dies_after_the_power_write_is_recorded_and_restored_when_it_comes_back(
        sungrow_sim, sungrow_site, store):
    # 13051 = 5000 W is applied and read back; the write of 13049 gets a TCP reset and the battery stays dead
    with FaultyTcp(upstream=sungrow_sim.port, reset_when=modbus_write_to(SG.EMS_MODE), dies=True) as battery:
        site = _through(sungrow_site, battery.port)
        with arbitrated(store, site) as dev:
            result = dev.force_discharge(30, 5.0)
        assert sungrow_sim.state["forced_power_w"] == 5000 and sungrow_sim.state["ems_mode"] == SG.MODE_SELF
        assert not result.ok and result.outcome == "error"
        assert "reset" in result.error.lower() and "safe-state restore also failed" in result.error
        rows = store.query("SELECT command, outcome, error, written FROM commands")
        assert rows["command"].tolist() == ["force_discharge"] and rows["outcome"].tolist() == ["error"]
        assert '"13051:forced_power": 5000' in rows["written"].iloc[0]
        saved = _saved(store)
        assert saved["status"] == "restore_failed" and saved["attempts"] == 1 and "no reply" in saved["last_error"]

        battery.revive()  # the battery comes back: the next check restores at once, not after the lease
        again = restore_due(store, site)
    assert again is not None and again.ok, again and again.describe()
    s = sungrow_sim.state
    assert (s["ems_mode"], s["command"], s["forced_power_w"]) == (SG.MODE_SELF, SG.CMD_STOP, 0)
    assert _saved(store)["status"] == "restored" and _saved(store)["attempts"] == 2


def test_sigenergy_dies_after_the_limit_write_is_recorded_and_restored(sigen_sim, sigen_site, store):
    with FaultyTcp(upstream=sigen_sim.port, reset_when=modbus_write_to(SIG.REMOTE_EMS), dies=True) as plant:
        site = _through(sigen_site, plant.port)
        with arbitrated(store, site) as dev:
            result = dev.force_discharge(30, 4.0)
        assert sigen_sim.state["discharge_limit_w"] == 4000
        assert not result.ok and result.outcome == "error"
        assert store.query("SELECT outcome FROM commands")["outcome"].tolist() == ["error"]
        assert _saved(store)["status"] == "restore_failed"
        plant.revive()
        assert restore_due(store, site).ok
    s = sigen_sim.state
    assert (s["remote_ems"], s["control_mode"]) == (0, SIG.MODE_SELF)
    assert s["discharge_limit_w"] != 4000  # the saved limit is back


def test_reset_after_an_applied_write_is_retried_and_verified(sungrow_sim, sungrow_site, store):
    sungrow_sim.inject("reset_after_write", address=SG.FORCED_POWER, on="write", count=1)
    with open_device(sungrow_site, store) as dev:
        result = dev.force_discharge(30, 5.0)
    assert result.ok, result.error
    assert (sungrow_sim.state["command"], sungrow_sim.state["forced_power_w"]) == (SG.CMD_DISCHARGE, 5000)


def test_reset_on_one_write_only_is_retried_and_the_command_succeeds(sungrow_sim, sungrow_site, store):
    sungrow_sim.inject("reset", address=SG.EMS_MODE, on="write", count=1)
    with open_device(sungrow_site, store) as dev:
        result = dev.force_charge(30, 2.0)
    assert result.ok, result.error
    assert (sungrow_sim.state["ems_mode"], sungrow_sim.state["command"]) == (SG.MODE_FORCED, SG.CMD_CHARGE)


def test_modbus_link_turns_every_transport_failure_into_device_unavailable():
    with FaultyTcp() as dead:
        link = ModbusLink("127.0.0.1", dead.port, 1, timeout_s=0.5, attempts=2, backoff_base_s=0.01,
                          sleep=lambda s: None)
        with pytest.raises(DeviceUnavailable, match="no reply after 2 attempt"):
            link.read_holding(13049, 3)
        with pytest.raises(DeviceUnavailable):
            link.write_register(13049, 2)
        link.close()


def test_modbus_link_refuses_a_reply_with_too_few_registers(monkeypatch):
    class Reply:
        registers = [1]

        def isError(self) -> bool:  # noqa: N802 - pymodbus's name
            return False

    link = ModbusLink("127.0.0.1", 1, 1, sleep=lambda s: None)
    monkeypatch.setattr(link, "_call", lambda what, fn, attempts: Reply())
    with pytest.raises(DeviceRejected, match="returned 1 register"):
        link.read_input(13022, 2)


def test_modbus_link_maps_an_undecodable_reply_to_device_unavailable(sungrow_sim, monkeypatch):
    from struct import error as struct_error

    from pymodbus.client import ModbusTcpClient

    def broken(self, *a, **kw):
        raise struct_error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(ModbusTcpClient, "read_holding_registers", broken)
    link = ModbusLink("127.0.0.1", sungrow_sim.port, 1, attempts=2, sleep=lambda s: None)
    with pytest.raises(DeviceUnavailable, match="unpack requires"):
        link.read_holding(13049, 1)
    link.close()


def test_tesla_reset_on_the_operation_post_ends_in_the_saved_state(tesla_sim, tesla_site, store):
    before = dict(tesla_sim.state)
    with FaultyTcp(upstream=tesla_sim.port, reset_when=http_request_to("POST", "/operation")) as proxy:
        site = tesla_site.model_copy(update={"battery": tesla_site.battery.model_copy(
            update={"base_url": f"http://127.0.0.1:{proxy.port}"})})
        with open_device(site, store) as dev:
            result = dev.force_charge(30)
    assert proxy.resets >= 1
    assert not result.ok and "battery returned to its saved state" in result.error
    assert store.query("SELECT outcome FROM commands")["outcome"].tolist() == ["error"]
    after = tesla_sim.state
    for key in ("default_real_mode", "backup_reserve_percent"):
        assert after[key] == before[key]


def test_tesla_client_reset_is_device_unavailable():
    with FaultyTcp() as dead:
        client = TeslaClient(f"http://127.0.0.1:{dead.port}", "tok-abcdefgh-123", attempts=2, backoff_base_s=0.0)
        with pytest.raises(DeviceUnavailable, match="ReadError|RemoteProtocolError|ConnectError"):
            client.site_info("1")
        client.close()


def test_tesla_reply_that_is_not_json_is_a_device_error():
    with EchoServer(status=200, style="text") as srv:
        client = TeslaClient(srv.url, "tok-abcdefgh-123", attempts=1)
        with pytest.raises(DeviceRejected, match="not JSON"):
            client.site_info("1")
        client.close()


def test_sigenergy_cloud_login_against_a_dead_peer_is_device_unavailable():
    with FaultyTcp() as dead:
        cloud = SigenergyCloud(f"http://127.0.0.1:{dead.port}", "me@example.com", "s3cret-password", attempts=1)
        with pytest.raises(DeviceUnavailable, match="login"):
            cloud.stations()
        cloud.close()


@pytest.mark.parametrize("brand", ["fronius", "sungrow_sg", "enphase", "zeversolar"])
def test_ac_inverter_on_a_dead_peer_is_recorded_and_the_restore_stays_pending(brand, store, monkeypatch):
    monkeypatch.setenv("TEST_ENVOY_TOKEN", "envoy-token-abcdefgh")
    with FaultyTcp() as dead:
        inverter = {"brand": brand, "host": "127.0.0.1", "port": dead.port}
        if brand == "enphase":
            inverter["token_env"] = "TEST_ENVOY_TOKEN"
        doc = {"sites": [{"id": "inv", "timezone": "Australia/Melbourne", "provider": {"kind": "aemo", "region": "VIC1"},
                          "battery": {"kind": "simulated", "capacity_kwh": 10, "max_charge_kw": 5,
                                      "max_discharge_kw": 5}, "ac_inverter": inverter}]}
        site = parse_sites(doc).sites[0]


        state.save_if_absent(store, site.id, "ac_curtail", f"ac_inverter:{brand}", "curtail", {"limit_pct": 100.0},
                             None)
        curtailed = curtail_inverter(site, store)
        restored = restore_inverter(site, store)
    assert curtailed.outcome == "error" and restored.outcome == "error"
    assert store.query("SELECT outcome FROM commands")["outcome"].tolist() == ["error", "error"]
    pending = state.load_pending(store, site.id, "ac_curtail")
    assert pending is not None and pending.status == "restore_failed" and pending.attempts == 1


def test_a_failed_restore_is_due_at_once_and_a_new_force_takes_control_again(sungrow_sim, sungrow_site, store):
    with arbitrated(store, sungrow_site) as dev:
        assert dev.force_charge(60, 2.0).ok
    sungrow_sim.inject("exception", code=4, address=SG.COMMAND, on="write", count=-1)
    with arbitrated(store, sungrow_site) as dev:
        assert dev.restore_normal().outcome == "error"
    ctx = ControlContext(store)
    assert due(ctx) == [sungrow_site.id]  # lease not over, the restore is owed now
    sungrow_sim.clear_faults()
    with arbitrated(store, sungrow_site) as dev:
        assert dev.force_discharge(30, 2.0).ok
    assert state.load_pending(store, sungrow_site.id, "forced").status == "active"
    assert due(ctx) == []

def test_an_unexpected_exception_in_a_driver_is_still_recorded_and_the_safe_state_attempted(
        sungrow_sim, sungrow_site, store, monkeypatch):
    from powersync_pipelines.devices.sungrow_sh import SungrowSH

    real_force = SungrowSH._force

    def half_force(self, direction, power_kw):
        self._put(SG.FORCED_POWER, int(power_kw * 1000))
        raise KeyError("bug in the driver")

    monkeypatch.setattr(SungrowSH, "_force", half_force)
    with open_device(sungrow_site, store) as dev:
        result = dev.force_discharge(30, 3.0)
    monkeypatch.setattr(SungrowSH, "_force", real_force)
    assert result.outcome == "error" and "unexpected KeyError" in result.error
    assert "battery returned to its saved state" in result.error
    assert sungrow_sim.state["forced_power_w"] == 0
    assert store.query("SELECT outcome FROM commands")["outcome"].tolist() == ["error"]

