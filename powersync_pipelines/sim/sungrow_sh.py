"""A Sungrow SH hybrid on loopback: the real register map (separate input/holding tables, 32-bit low word
first, exception 2 for undefined registers) over a battery model that integrates SOC from the commanded mode.

Firmware behaviours modelled: EMS mode 2 (forced) persists; command 0xCC stops the battery; external EMS/VPP
modes (3/4) fall back to self-consumption without a heartbeat; writing the backup reserve while in forced
stop answers exception 4; out-of-range values answer exception 3.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..devices.maps import SG
from ..devices.modbus import s32, to_u32, u32
from ..devices.physics import BatteryModel
from .modbus_server import ModbusSimulator


class SungrowSimulator(ModbusSimulator):
    name = "sungrow_sh"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, capacity_kwh: float = 13.5, soc: float = 0.5,
                 max_charge_kw: float = 5.0, max_discharge_kw: float = 5.0, *, device_id: int = 1,
                 soh: float = 0.97, reserve_pct: int = 10, min_soc: float = 0.05, max_soc: float = 1.0,
                 load_kw: float | Callable[[float], float] = 0.8, solar_kw: float | Callable[[float], float] = 0.0,
                 efficiency: float = 0.95, time_scale: float = 1.0, tick_s: float = 0.25) -> None:
        model = BatteryModel(capacity_kwh=capacity_kwh, soc=soc, soh=soh, max_charge_kw=max_charge_kw,
                             max_discharge_kw=max_discharge_kw, charge_efficiency=efficiency,
                             discharge_efficiency=efficiency, min_soc=min_soc, max_soc=max_soc,
                             reserve=reserve_pct / 100.0, load_kw=load_kw, solar_kw=solar_kw)
        super().__init__(host, port, model=model, time_scale=time_scale, tick_s=tick_s)
        self.device_id = device_id
        self.rated_w = int(round(max(max_charge_kw, max_discharge_kw) * 1000))
        self._heartbeat_at = time.monotonic()

    # -- tables -----------------------------------------------------------------------------------------
    def layout(self) -> dict[int, Any]:
        m = self.model
        holding = {
            4999: 2024, 5000: 2, 5001: 13, 5002: 7, 5003: 0, 5004: 0,  # clock Y/M/D/h/m/s
            12999: 0xCF,
            SG.EMS_MODE: SG.MODE_SELF, SG.COMMAND: SG.CMD_STOP, SG.FORCED_POWER: 0,
            SG.MAX_SOC: int(round(m.max_soc * 1000)), SG.MIN_SOC: int(round(m.min_soc * 1000)),
            SG.EXPORT_LIMIT: 0, SG.OFF_GRID_OPTION: 0xAA, SG.HEARTBEAT: 20, SG.EXPORT_SWITCH: SG.OFF,
            SG.RESERVE: int(round(m.reserve * 100)),
            SG.MAX_CHARGE_POWER: int(round(m.max_charge_kw * 100)),
            SG.MAX_DISCHARGE_POWER: int(round(m.max_discharge_kw * 100)),
        }
        inputs: dict[int, int] = {}
        serial = b"SIMSH00001".ljust(20, b"\0")
        for i in range(10):
            inputs[SG.SERIAL + i] = (serial[2 * i] << 8) | serial[2 * i + 1]
        inputs[SG.DEVICE_TYPE] = 0x0E01  # SH6.0RT
        for a in (SG.PV_POWER, SG.BATTERY_POWER, SG.METER_POWER):
            inputs[a] = inputs[a + 1] = 0
        inputs[SG.BDC_RATED] = self.rated_w // 100
        for a in range(SG.RUNNING_STATE, SG.SOH + 2):  # 12999..13024 contiguous, as on the device
            inputs[a] = 0
        inputs[SG.BATTERY_CAPACITY] = int(round(m.capacity_kwh * 10))
        return {self.device_id: (holding, inputs)}

    def _h(self) -> dict[int, int]:
        return self.holding[self.device_id]

    def _i(self) -> dict[int, int]:
        return self.inputs[self.device_id]

    # -- model <-> registers ----------------------------------------------------------------------------
    def _apply_settings(self) -> None:
        """Holding registers -> model settings."""
        h, m = self._h(), self.model
        mode, cmd = h[SG.EMS_MODE], h[SG.COMMAND]
        if mode in (SG.MODE_FORCED, SG.MODE_EXTERNAL, SG.MODE_VPP):
            m.mode = {SG.CMD_CHARGE: "charge", SG.CMD_DISCHARGE: "discharge"}.get(cmd, "idle")
        else:
            m.mode = "self_consumption"
        m.command_kw = h[SG.FORCED_POWER] / 1000.0
        m.max_soc, m.min_soc = h[SG.MAX_SOC] / 1000.0, h[SG.MIN_SOC] / 1000.0
        m.reserve = h[SG.RESERVE] / 100.0
        m.charge_limit_kw = h[SG.MAX_CHARGE_POWER] / 100.0
        m.discharge_limit_kw = h[SG.MAX_DISCHARGE_POWER] / 100.0
        m.export_limit_kw = h[SG.EXPORT_LIMIT] / 1000.0 if h[SG.EXPORT_SWITCH] == SG.ON else None

    def refresh(self) -> None:
        if not self.holding:
            return
        self._apply_settings()
        self.model.flows = self.model.compute(0.0)
        f, m, i = self.model.flows, self.model, self._i()
        wo = SG.WORD_ORDER

        def put32(addr: int, value: float) -> None:
            i[addr], i[addr + 1] = to_u32(int(round(value)), wo)

        put32(SG.PV_POWER, f.solar_kw * 1000)
        put32(SG.BATTERY_POWER, f.battery_kw * 1000)  # + discharging
        put32(SG.METER_POWER, f.grid_kw * 1000)  # + importing
        put32(SG.LOAD_POWER, f.load_kw * 1000)
        put32(SG.EXPORT_POWER, -f.grid_kw * 1000)  # + exporting
        i[13021] = int(round(abs(f.battery_kw) * 1000)) & 0xFFFF  # legacy battery power (unsigned)
        i[SG.SOC] = int(round(m.soc * 1000))
        i[SG.SOH] = int(round(m.soh * 1000))
        i[13019] = 2560  # battery voltage 256.0 V
        i[13024] = 250  # 25.0 degC
        mode = self._h()[SG.EMS_MODE]
        i[SG.RUNNING_STATE] = {SG.MODE_FORCED: 0x0800, SG.MODE_EXTERNAL: 0x4000}.get(mode, 0x0040)
        bits = 0
        bits |= 1 if f.solar_kw > 0.001 else 0
        bits |= 2 if f.battery_kw < -0.001 else 0
        bits |= 4 if f.battery_kw > 0.001 else 0
        bits |= 8 if f.load_kw > 0.001 else 0
        bits |= 16 if f.grid_kw < -0.001 else 0
        bits |= 32 if f.grid_kw > 0.001 else 0
        i[SG.POWER_FLOW] = bits

    def on_tick(self) -> None:
        h = self._h()
        silent_s = time.monotonic() - self._heartbeat_at
        if h[SG.EMS_MODE] in (SG.MODE_EXTERNAL, SG.MODE_VPP) and silent_s > max(1, h[SG.HEARTBEAT]):
            h[SG.EMS_MODE] = SG.MODE_SELF  # no heartbeat: the inverter falls back to self-consumption
            h[SG.COMMAND] = SG.CMD_STOP

    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        h = self._h()
        allowed: dict[int, Callable[[int], bool]] = {
            SG.EMS_MODE: lambda v: v in (0, 2, 3, 4, 8),
            SG.COMMAND: lambda v: v in (SG.CMD_CHARGE, SG.CMD_DISCHARGE, SG.CMD_STOP),
            SG.FORCED_POWER: lambda v: 0 <= v <= self.rated_w,
            SG.MAX_SOC: lambda v: 500 <= v <= 1000,
            SG.MIN_SOC: lambda v: 0 <= v <= 500,
            SG.EXPORT_LIMIT: lambda v: 0 <= v <= 0xFFFF,
            SG.OFF_GRID_OPTION: lambda v: v in (SG.ON, SG.OFF),
            SG.HEARTBEAT: lambda v: 0 <= v <= 1000,
            SG.EXPORT_SWITCH: lambda v: v in (SG.ON, SG.OFF),
            SG.RESERVE: lambda v: 0 <= v <= 100,
            SG.MAX_CHARGE_POWER: lambda v: 0 <= v <= self.rated_w // 10,
            SG.MAX_DISCHARGE_POWER: lambda v: 0 <= v <= self.rated_w // 10,
            12999: lambda v: v in (0xCE, 0xCF),
        }
        for k in range(5):
            allowed[4999 + k] = lambda v: 0 <= v <= 9999
        for offset, v in enumerate(values):
            a = address + offset
            check = allowed.get(a)
            if check is None:
                return 2
            if not check(v):
                return 3
            if a == SG.RESERVE and h[SG.EMS_MODE] == SG.MODE_FORCED and h[SG.COMMAND] == SG.CMD_STOP:
                return 4  # firmware quirk: reserve writes fail while in Forced + Stop
            if a == SG.HEARTBEAT:
                self._heartbeat_at = time.monotonic()
        return None

    # -- test helpers -----------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """A snapshot: SOC, mode, flows and both register tables."""
        with self.lock:
            m, h, i = self.model, self._h(), self._i()
            return {
                "soc": m.soc, "mode": m.mode, "command_kw": m.command_kw, "ems_mode": h[SG.EMS_MODE],
                "command": h[SG.COMMAND], "forced_power_w": h[SG.FORCED_POWER], "reserve_pct": h[SG.RESERVE],
                "battery_w": s32([i[SG.BATTERY_POWER], i[SG.BATTERY_POWER + 1]], SG.WORD_ORDER),
                "meter_w": s32([i[SG.METER_POWER], i[SG.METER_POWER + 1]], SG.WORD_ORDER),
                "pv_w": u32([i[SG.PV_POWER], i[SG.PV_POWER + 1]], SG.WORD_ORDER),
                "export_limit_w": h[SG.EXPORT_LIMIT], "export_switch": h[SG.EXPORT_SWITCH],
                "holding": dict(h), "inputs": dict(i),
            }

    def set(self, *, soc: float | None = None, load_kw: float | None = None, solar_kw: float | None = None,
            **registers: int) -> None:
        """Change the model or holding registers (by ``SG`` attribute name, e.g. ``EMS_MODE=2``)."""
        with self.lock:
            self.model.update(soc, load_kw, solar_kw)
            for name, value in registers.items():
                self._h()[getattr(SG, name)] = int(value)
            self.refresh()
