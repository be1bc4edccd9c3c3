"""The Sigenergy driver against the loopback plant simulator (unit 247, big-endian 32-bit, kW×1000)."""

from __future__ import annotations

import pytest

from powersync_pipelines.devices import open_device
from powersync_pipelines.devices.maps import SIG


def test_telemetry_signs_ess_charging_is_positive_on_the_wire(sigen_sim, sigen_site):
    sigen_sim.set(soc=0.4, load_kw=1.0, solar_kw=4.0)
    with open_device(sigen_site) as dev:
        t = dev.read_telemetry()
    assert sigen_sim.state["ess_w"] == 3000 and sigen_sim.state["grid_w"] == 0  # 30037 + charging
    assert (t.battery_charge_kw, t.battery_discharge_kw) == (3.0, 0.0)
    assert t.solar_kw == 4.0 and t.load_kw == pytest.approx(1.0)
    assert t.soc == pytest.approx(0.4) and t.soh == pytest.approx(0.98)


def test_telemetry_signs_discharging_and_buying(sigen_sim, sigen_site):
    sigen_sim.set(soc=0.10, load_kw=2.0)  # at the reserve: the grid serves the load
    with open_device(sigen_site) as dev:
        t = dev.read_telemetry()
    assert sigen_sim.state["grid_w"] == 2000  # 30005 + buying
    assert t.grid_import_kw == 2.0 and t.battery_discharge_kw == 0.0
    sigen_sim.set(soc=0.6)
    with open_device(sigen_site) as dev:
        t = dev.read_telemetry()
    assert sigen_sim.state["ess_w"] == -2000 and t.battery_discharge_kw == 2.0


def test_force_charge_writes_limit_then_remote_ems_then_mode(sigen_sim, sigen_site, store):
    with open_device(sigen_site, store) as dev:
        r = dev.force_charge(30, 3.5)
        assert r.ok, r.error
        assert list(r.written) == ["40032:charge_limit", "40029:remote_ems", "40031:control_mode"]
        assert r.readback == {"40032:charge_limit": 3500, "40029:remote_ems": 1, "40031:control_mode": 4}
        assert [(w.fc, w.address) for w in sigen_sim.writes] == [(16, 40032), (6, 40029), (6, 40031)]
        assert sigen_sim.state["ems_work_mode"] == 7
        before = sigen_sim.state["soc"]
        sigen_sim.advance(minutes=60)
        assert dev.read_telemetry().battery_charge_kw == 3.5
    assert sigen_sim.state["soc"] - before == pytest.approx(3.5 * 0.95 / 13.5, abs=0.002)


def test_force_discharge_and_restore_normal(sigen_sim, sigen_site, store):
    sigen_sim.set(soc=0.9)
    with open_device(sigen_site, store) as dev:
        assert dev.force_discharge(15, 4.0).ok
        assert (sigen_sim.state["control_mode"], sigen_sim.state["discharge_limit_w"]) == (6, 4000)
        t = dev.read_telemetry()
        assert t.battery_discharge_kw == 4.0 and t.grid_export_kw == pytest.approx(3.0)
        sigen_sim.clear_log()
        assert dev.restore_normal().ok
    s = sigen_sim.state
    assert (s["remote_ems"], s["control_mode"], s["discharge_limit_w"]) == (0, 2, 5000)
    # only what differed is written back: the discharge limit, the mode, remote EMS off
    assert sigen_sim.written_addresses() == [40034, 40031, 40029]


def test_idle_is_standby(sigen_sim, sigen_site):
    sigen_sim.set(soc=0.7, load_kw=2.0)
    with open_device(sigen_site) as dev:
        assert dev.apply("IDLE", 0).ok
        t = dev.read_telemetry()
    assert sigen_sim.state["control_mode"] == SIG.MODE_STANDBY
    assert t.battery_discharge_kw == 0 and t.grid_import_kw == 2.0 and t.mode == "idle"


def test_reserve_rates_export_limit_and_curtail(sigen_sim, sigen_site, store):
    sigen_sim.set(soc=1.0, load_kw=1.0, solar_kw=5.0)
    with open_device(sigen_site, store) as dev:
        assert dev.set_backup_reserve(25).ok and sigen_sim.state["backup_soc_pct"] == 25
        assert dev.set_charge_rate(2.0).ok and sigen_sim.state["charge_limit_w"] == 2000
        assert dev.set_discharge_rate(3.0).ok and sigen_sim.state["discharge_limit_w"] == 3000
        assert dev.set_export_limit(2500).ok and sigen_sim.state["export_limit_w"] == 2500
        assert dev.read_telemetry().grid_export_kw == pytest.approx(2.5)
        assert dev.curtail().ok and sigen_sim.state["export_limit_w"] == 0
        assert dev.read_telemetry().grid_export_kw == 0
        assert dev.restore_curtailment().ok and sigen_sim.state["export_limit_w"] == 2500
        assert dev.set_export_limit(None).ok and sigen_sim.state["export_limit_w"] == SIG.UNLIMITED


@pytest.mark.parametrize("code", [2, 4, 6])
def test_exception_on_mode_write_ends_in_safe_state(sigen_sim, sigen_site, code):
    sigen_sim.inject("exception", code=code, address=SIG.CONTROL_MODE, on="write", count=2)
    with open_device(sigen_site) as dev:
        r = dev.force_discharge(30, 2.0)
    assert not r.ok and f"exception {code}" in r.error and "40031" in r.error
    assert (sigen_sim.state["remote_ems"], sigen_sim.state["control_mode"]) == (0, 2)


def test_half_written_32bit_register_is_rejected_by_the_simulator(sigen_sim):
    from pymodbus.client import ModbusTcpClient

    c = ModbusTcpClient("127.0.0.1", port=sigen_sim.port, timeout=1, retries=0)
    assert c.connect()
    r = c.write_register(SIG.CHARGE_LIMIT, 1, device_id=247)
    c.close()
    assert r.isError() and r.exception_code == 3
