"""The Sungrow SH driver against the loopback simulator: registers, read-back, signs, SOC direction, safety."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from powersync_pipelines.devices import open_device
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.devices.sungrow_sh import SungrowSH


def test_telemetry_signs_discharging_and_importing(sungrow_sim, sungrow_site):
    sungrow_sim.set(soc=0.6, load_kw=4.0, solar_kw=0.0)
    with open_device(sungrow_site) as dev:
        t = dev.read_telemetry()
    # register 5213 = +4000 (discharging), 5600 = 0: the battery serves the 4 kW load
    assert sungrow_sim.state["battery_w"] == 4000
    assert (t.battery_discharge_kw, t.battery_charge_kw) == (4.0, 0.0)
    assert t.grid_import_kw == 0.0 and t.grid_export_kw == 0.0
    assert t.soc == pytest.approx(0.6) and t.soh == pytest.approx(0.97)
    assert t.load_kw == 4.0 and t.mode == "self_consumption"
    assert t.ts.tzinfo is not None


def test_telemetry_signs_charging_and_exporting(sungrow_sim, sungrow_site):
    sungrow_sim.set(soc=0.5, load_kw=1.0, solar_kw=8.0)
    with open_device(sungrow_site) as dev:
        t = dev.read_telemetry()
    # surplus 7 kW: 5 kW into the battery (5213 = -5000), 2 kW exported (5600 = -2000)
    assert sungrow_sim.state["battery_w"] == -5000 and sungrow_sim.state["meter_w"] == -2000
    assert (t.battery_charge_kw, t.battery_discharge_kw) == (5.0, 0.0)
    assert (t.grid_export_kw, t.grid_import_kw) == (2.0, 0.0)
    assert t.solar_kw == 8.0


def test_telemetry_grid_import_when_battery_at_reserve(sungrow_sim, sungrow_site):
    sungrow_sim.set(soc=0.10, load_kw=2.5)
    with open_device(sungrow_site) as dev:
        t = dev.read_telemetry()
    assert sungrow_sim.state["meter_w"] == 2500
    assert t.grid_import_kw == 2.5 and t.battery_discharge_kw == 0.0


def test_force_charge_writes_power_mode_command_in_order_and_soc_rises(sungrow_sim, sungrow_site, store):
    with open_device(sungrow_site, store) as dev:
        result = dev.force_charge(duration_minutes=30, power_kw=3.0)
        assert result.ok, result.error
        assert list(result.written) == ["13051:forced_power", "13049:ems_mode", "13050:command"]
        assert result.written == result.readback == {"13051:forced_power": 3000, "13049:ems_mode": 2,
                                                     "13050:command": 0xAA}
        assert sungrow_sim.written_addresses() == [SG.FORCED_POWER, SG.EMS_MODE, SG.COMMAND]
        before = sungrow_sim.state["soc"]
        sungrow_sim.advance(minutes=60)
        t = dev.read_telemetry()
    assert t.mode == "force_charge" and t.battery_charge_kw == 3.0
    # 3 kW for 1 h at 95 % into 13.5 kWh
    assert t.soc - before == pytest.approx(3.0 * 0.95 / 13.5, abs=0.002)
    assert t.grid_import_kw == pytest.approx(4.0)  # 1 kW load + 3 kW charge
    row = store.query("SELECT command, outcome, written, readback FROM commands")
    assert list(row["command"]) == ["force_charge"] and list(row["outcome"]) == ["ok"]
    assert json.loads(row["readback"][0])["13049:ems_mode"] == 2


def test_force_discharge_soc_falls_and_exports(sungrow_sim, sungrow_site):
    sungrow_sim.set(soc=0.8, load_kw=1.0)
    with open_device(sungrow_site) as dev:
        assert dev.force_discharge(duration_minutes=15, power_kw=4.0).ok
        assert sungrow_sim.state["command"] == SG.CMD_DISCHARGE
        sungrow_sim.advance(minutes=30)
        t = dev.read_telemetry()
    assert t.battery_discharge_kw == 4.0 and t.grid_export_kw == pytest.approx(3.0)
    assert t.soc == pytest.approx(0.8 - 4.0 * 0.5 / 0.95 / 13.5, abs=0.002)


def test_power_is_clamped_to_the_rating(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        result = dev.force_charge(duration_minutes=30, power_kw=12.0)
    assert result.ok and result.params["clamped_to_rated_kw"] == 5.0
    assert sungrow_sim.state["forced_power_w"] == 5000


def test_discharge_below_reserve_is_refused_and_nothing_written(sungrow_sim, sungrow_site, store):
    sungrow_sim.set(soc=0.10)
    with open_device(sungrow_site, store) as dev:
        result = dev.force_discharge(duration_minutes=30)
        assert not result.ok and result.outcome == "refused"
        assert "reserve" in result.error
        assert dev.apply("EXPORT", 3.0).outcome == "refused"
    assert sungrow_sim.written_addresses(accepted_only=False) == []
    assert set(store.query("SELECT outcome FROM commands")["outcome"]) == {"refused"}


def test_duration_outside_15_to_240_is_refused(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        assert dev.force_charge(duration_minutes=5).outcome == "refused"
        assert dev.force_discharge(duration_minutes=241).outcome == "refused"
    assert sungrow_sim.writes == []


def test_apply_maps_each_action(sungrow_sim, sungrow_site):
    until = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=5)
    with open_device(sungrow_site) as dev:
        assert dev.apply("CHARGE", 2.0, until).ok
        assert (sungrow_sim.state["ems_mode"], sungrow_sim.state["command"]) == (2, 0xAA)
        assert sungrow_sim.state["forced_power_w"] == 2000
        assert dev.apply("EXPORT", 9.0, until).ok  # clamped to 5 kW
        assert (sungrow_sim.state["command"], sungrow_sim.state["forced_power_w"]) == (0xBB, 5000)
        assert dev.apply("IDLE", 0.0, until).ok
        assert (sungrow_sim.state["ems_mode"], sungrow_sim.state["command"]) == (2, 0xCC)
        assert dev.read_telemetry().battery_discharge_kw == 0.0
        assert dev.apply("SELF_CONSUMPTION", 0.0).ok
        assert sungrow_sim.state["ems_mode"] == 0
        assert dev.apply("BOGUS", 1.0).outcome == "refused"


def test_restore_normal_puts_back_the_saved_state(sungrow_sim, sungrow_site, store):
    sungrow_sim.set(RESERVE=25, EXPORT_LIMIT=3000, EXPORT_SWITCH=SG.ON)
    with open_device(sungrow_site, store) as dev:
        assert dev.force_discharge(duration_minutes=30, power_kw=2.0).ok
        saved = dev.saved_state()
        assert saved is not None and saved.state["reserve_pct"] == 25 and saved.state["export_limit_w"] == 3000
        assert dev.restore_normal().ok
        assert dev.saved_state() is None
    s = sungrow_sim.state
    assert (s["ems_mode"], s["command"], s["forced_power_w"]) == (0, 0xCC, 0)
    assert (s["reserve_pct"], s["export_limit_w"], s["export_switch"]) == (25, 3000, SG.ON)


def test_second_force_keeps_the_original_saved_state(sungrow_sim, sungrow_site, store):
    with open_device(sungrow_site, store) as dev:
        assert dev.force_charge(30, 2.0).ok
        assert dev.force_discharge(60, 2.0).ok
        assert dev.saved_state().state["ems_mode"] == 0  # not the forced mode of the first command
        assert dev.restore_normal().ok
    assert sungrow_sim.state["ems_mode"] == 0


def test_backup_reserve_write_and_firmware_quirk_in_forced_stop(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        assert dev.set_backup_reserve(30).ok
        assert sungrow_sim.state["reserve_pct"] == 30
        assert dev.apply("IDLE", 0).ok
        sungrow_sim.clear_log()
        result = dev.set_backup_reserve(40)
        assert result.ok, result.error
    # exception 4 twice (write + retry), then leave forced mode, write, and re-enter forced stop
    assert [w.code for w in sungrow_sim.writes[:2]] == [4, 4]
    assert sungrow_sim.state["reserve_pct"] == 40
    assert (sungrow_sim.state["ems_mode"], sungrow_sim.state["command"]) == (2, 0xCC)
    assert dev.set_backup_reserve(140).outcome == "refused"


def test_rates_and_export_limit_registers(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        assert dev.set_charge_rate(2.5).ok
        assert dev.set_discharge_rate(9.0).params["clamped_to_rated_kw"] == 5.0
        assert dev.set_export_limit(1500).ok
        h = sungrow_sim.state["holding"]
        assert (h[SG.MAX_CHARGE_POWER], h[SG.MAX_DISCHARGE_POWER]) == (250, 500)
        assert (h[SG.EXPORT_LIMIT], h[SG.EXPORT_SWITCH]) == (1500, SG.ON)
        assert dev.set_export_limit(None).ok
        assert sungrow_sim.state["export_switch"] == SG.OFF
        assert dev.set_export_limit(-1).outcome == "refused"


def test_curtail_zero_export_then_restore(sungrow_sim, sungrow_site, store):
    sungrow_sim.set(soc=1.0, load_kw=1.0, solar_kw=6.0)
    with open_device(sungrow_site, store) as dev:
        assert dev.read_telemetry().grid_export_kw == pytest.approx(5.0)
        assert dev.curtail().ok
        t = dev.read_telemetry()
        assert t.grid_export_kw == 0.0 and t.solar_kw == pytest.approx(1.0)  # solar still feeds the house
        assert dev.restore_curtailment().ok
        assert dev.read_telemetry().grid_export_kw == pytest.approx(5.0)
    assert sungrow_sim.state["export_switch"] == SG.OFF


def test_driver_is_the_sungrow_class(sungrow_site):
    assert isinstance(open_device(sungrow_site), SungrowSH)
