"""Sungrow SG, Fronius (SunSpec), GoodWe and Huawei: curtail to zero export, restore, read back, on local peers."""

from __future__ import annotations

import pytest
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from powersync_pipelines.config import AcInverterConfig
from powersync_pipelines.devices.base import DeviceRejected, Unsupported, VerifyError
from powersync_pipelines.devices.inverters import open_inverter
from powersync_pipelines.devices.inverters.fronius import Fronius
from powersync_pipelines.devices.inverters.huawei import HuaweiSun2000

from .brand_peers import FroniusPeer, GoodWePeer, HuaweiPeer, SungrowSGPeer


def _cfg(brand: str, port: int, unit: int | None = None, **kw: object) -> AcInverterConfig:
    return AcInverterConfig(brand=brand, host="127.0.0.1", port=port, device_id=unit, **kw)


# -- Sungrow SG ---------------------------------------------------------------------------------------------
def test_sungrow_sg_limit_to_zero_and_back() -> None:
    with (
        SungrowSGPeer(limit_enabled=True, ratio=800) as peer,
        open_inverter(_cfg("sungrow_sg", peer.port, 1)) as inv,
    ):
        before, after = inv.curtail()
        assert before["limit_enabled"] and before["limit_pct"] == 80.0 and not before["curtailed"]
        assert peer.holding[1][5006] == 0xAA and peer.holding[1][5007] == 0  # doc 5007/5008
        assert after["curtailed"]
        restored = inv.restore(inv.settings_of(before))
        assert restored["limit_pct"] == 80.0 and restored["limit_enabled"]
        assert peer.holding[1][5007] == 800


def test_sungrow_sg_stop_mode_for_models_that_ignore_zero_percent() -> None:
    with SungrowSGPeer() as peer:
        inv = open_inverter(_cfg("sungrow_sg", peer.port, 1), zero_by="stop")
        try:
            before, after = inv.curtail()
            assert peer.holding[1][5005] == 0xCE and peer.inputs[1][5037] == 0x8000
            assert after["curtailed"] and not after["running"]
            inv.restore(None)  # nothing saved: the no-limit default
            assert (
                peer.holding[1][5005] == 0xCF
                and peer.holding[1][5006] == 0x55
                and peer.holding[1][5007] == 1000
            )
            assert peer.inputs[1][5037] == 0
        finally:
            inv.close()


def test_sungrow_sg_rejected_value_is_a_clear_error() -> None:
    with (
        SungrowSGPeer() as peer,
        open_inverter(_cfg("sungrow_sg", peer.port, 1)) as inv,
        pytest.raises(
            DeviceRejected, match=r"sungrow_sg 127\.0\.0\.1:\d+ unit 1: write holding 5007=2000 .*exception 3"
        ),
    ):
        inv.restore({"running": True, "limit_enabled": True, "limit_pct": 200.0})


# -- Fronius / SunSpec --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("inverter_model", "control_model"), [(103, 123), (113, 123), (103, 704)])
def test_fronius_walks_the_sunspec_chain_and_limits_to_zero(inverter_model: int, control_model: int) -> None:
    with FroniusPeer(inverter_model=inverter_model, control_model=control_model) as peer:
        inv = Fronius(_cfg("fronius", peer.port, 1))
        try:
            models = inv.discover()
            assert list(models) == [1, inverter_model, control_model]
            assert models[control_model] == peer.control_start  # float map (113) shifts the controls by +10
            before, after = inv.curtail()
            assert before == {
                "limit_pct": 100.0,
                "limit_enabled": False,
                "revert_s": 0,
                "curtailed": False,
                "readings": {"model": control_model, "scale_factor": -2, "raw_pct": 10000},
            }
            assert after["curtailed"] and after["limit_pct"] == 0.0
            inv.restore(inv.settings_of(before))
        finally:
            inv.close()


def test_fronius_writes_are_visible_to_pysunspec2() -> None:
    """pysunspec2 (its own Modbus client) is the independent reader of what our driver wrote."""
    with FroniusPeer() as peer, Fronius(_cfg("fronius", peer.port, 1)) as inv:
        inv.curtail()
        reader = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=peer.port, timeout=2)
        try:
            reader.scan()
            controls = reader.models[123][0]
            controls.read()
            assert controls.WMaxLimPct.cvalue == 0 and controls.WMaxLim_Ena.value == 1
            assert reader.models[1][0].Mn.value == "Fronius"
            inv.restore(None)
            controls.read()
            assert controls.WMaxLimPct.cvalue == 100.0 and controls.WMaxLim_Ena.value == 0
            # and the other way round: a limit set by pysunspec2 is read back by us with its scale factor
            controls.WMaxLimPct.cvalue = 37.5
            controls.WMaxLim_Ena.value = 1
            controls.write()
            assert inv.read_state()["limit_pct"] == 37.5
        finally:
            reader.close()


def test_fronius_without_modbus_control_says_what_to_enable() -> None:
    with (
        FroniusPeer(control_enabled=False) as peer,
        Fronius(_cfg("fronius", peer.port, 1)) as inv,
        pytest.raises(DeviceRejected, match="Inverter control via Modbus"),
    ):
        inv.curtail()


def test_fronius_device_without_sunspec_is_unsupported() -> None:
    with (
        GoodWePeer(unit=1) as peer,
        Fronius(_cfg("fronius", peer.port, 1)) as inv,
        pytest.raises(Unsupported, match="no SunSpec 'SunS' marker"),
    ):
        inv.read_state()


# -- GoodWe -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("unit", "watts", "enable", "value"), [(247, 7000, 47509, [47510]), (127, 70000, 40327, [40328, 40329])]
)
def test_goodwe_export_limit_zero_and_restore(unit: int, watts: int, enable: int, value: list[int]) -> None:
    with (
        GoodWePeer(unit=unit, enabled=1, watts=watts) as peer,
        open_inverter(_cfg("goodwe", peer.port, unit)) as inv,
    ):
        before, after = inv.curtail()
        assert before["export_limit_enabled"] and before["export_limit_w"] == watts
        assert after["curtailed"] and after["export_limit_w"] == 0
        assert peer.holding[unit][enable] == 1 and [peer.holding[unit][a] for a in value] == [0] * len(value)
        inv.restore(inv.settings_of(before))
        assert inv.read_state()["export_limit_w"] == watts
        assert inv.read_state()["readings"]["family"] == ("et" if unit == 247 else "dt")


# -- Huawei -------------------------------------------------------------------------------------------------
def test_huawei_zero_power_grid_connection_and_restore() -> None:
    with (
        HuaweiPeer(mode=6, limit_w=4200, pct_x10=555) as peer,
        HuaweiSun2000(_cfg("huawei", peer.port, 1), settle_s=0.0, timeout_s=2.0) as inv,
    ):
        before, after = inv.curtail()
        assert before["mode"] == 6 and before["limit_w"] == 4200 and before["limit_pct"] == 55.5
        assert peer.holding[1][47415] == 5 and after["curtailed"]
        inv.restore(inv.settings_of(before))
        assert peer.holding[1][47415] == 6
        assert (peer.holding[1][47416] << 16 | peer.holding[1][47417]) == 4200


def test_readback_mismatch_is_a_verify_error() -> None:
    class StubbornHuawei(HuaweiPeer):
        """Accepts the mode write but keeps the old value (a dongle that ignores writes without login)."""

        def after_write(self, unit: int, address: int, values: list[int]) -> None:
            if address == 47415:
                self.holding[unit][47415] = 0

    with (
        StubbornHuawei() as peer,
        HuaweiSun2000(_cfg("huawei", peer.port, 1), settle_s=0.0, timeout_s=2.0) as inv,
        pytest.raises(VerifyError, match="read-back says not curtailed"),
    ):
        inv.curtail()
