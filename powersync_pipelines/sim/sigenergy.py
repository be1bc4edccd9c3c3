"""A Sigenergy plant (unit 247) on loopback: one shared register space (FC3 and FC4 both answer), document
numbers on the wire, 32-bit values high word first, powers kW×1000 and SOC %×10 (reference/devices.md §2).

Behaviour: remote EMS (40029 = 1) switches the EMS work mode (30003) to 7 and hands control to 40031; the
charge limit 40032 acts in the command-charging modes 3/4, the discharge limit 40034 in 5/6; the export limit
40038 caps export at the grid point. 32-bit registers must be written whole with FC16 (else exception 3);
read-only registers answer exception 2 to writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..devices.maps import SIG
from ..devices.modbus import s32, to_u32, u32
from ..devices.physics import BatteryModel
from .modbus_server import ModbusSimulator

U32_HOLDING = (SIG.CHARGE_LIMIT, SIG.DISCHARGE_LIMIT, SIG.PV_LIMIT, SIG.EXPORT_LIMIT, SIG.IMPORT_LIMIT, 40042,
               40044, 40049)
U16_HOLDING = {SIG.REMOTE_EMS: (0, 1), SIG.CONTROL_MODE: (0, 8), 40030: (0, 1), SIG.BACKUP_SOC: (0, 1000),
               40047: (0, 1000), 40048: (0, 1000), 40000: (0, 1)}


class SigenergySimulator(ModbusSimulator):
    name = "sigenergy"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, capacity_kwh: float = 13.5, soc: float = 0.5,
                 max_charge_kw: float = 5.0, max_discharge_kw: float = 5.0, *, soh: float = 0.98,
                 reserve_pct: float = 10, load_kw: float | Callable[[float], float] = 0.8,
                 solar_kw: float | Callable[[float], float] = 0.0, efficiency: float = 0.95,
                 time_scale: float = 1.0, tick_s: float = 0.25) -> None:
        model = BatteryModel(capacity_kwh=capacity_kwh, soc=soc, soh=soh, max_charge_kw=max_charge_kw,
                             max_discharge_kw=max_discharge_kw, charge_efficiency=efficiency,
                             discharge_efficiency=efficiency, min_soc=0.0, max_soc=1.0, reserve=reserve_pct / 100,
                             load_kw=load_kw, solar_kw=solar_kw)
        super().__init__(host, port, model=model, time_scale=time_scale, tick_s=tick_s)

    def layout(self) -> dict[int, Any]:
        m = self.model
        table: dict[int, int] = dict.fromkeys(range(30000, 30090), 0)
        table.update(dict.fromkeys(range(40000, 40051), 0))

        def put32(addr: int, value: int) -> None:
            table[addr], table[addr + 1] = to_u32(value, SIG.WORD_ORDER)

        put32(SIG.RATED_CHARGE, int(m.max_charge_kw * 1000))
        put32(SIG.RATED_DISCHARGE, int(m.max_discharge_kw * 1000))
        put32(SIG.RATED_CAPACITY, int(round(m.capacity_kwh * 100)))
        put32(SIG.CHARGE_LIMIT, int(m.max_charge_kw * 1000))
        put32(SIG.DISCHARGE_LIMIT, int(m.max_discharge_kw * 1000))
        for a in (SIG.PV_LIMIT, SIG.EXPORT_LIMIT, SIG.IMPORT_LIMIT):
            put32(a, SIG.UNLIMITED)
        put32(40042, SIG.INVALID)
        put32(40044, SIG.INVALID)
        table[SIG.CONTROL_MODE] = SIG.MODE_SELF
        table[SIG.BACKUP_SOC] = int(round(m.reserve * 1000))
        table[40047], table[40048] = 1000, 0
        table[30085], table[30086] = 1000, 0
        return {SIG.PLANT_UNIT: table}

    def _t(self) -> dict[int, int]:
        return self.holding[SIG.PLANT_UNIT]

    def _u32(self, addr: int) -> int:
        t = self._t()
        return u32([t[addr], t[addr + 1]], SIG.WORD_ORDER)

    def refresh(self) -> None:
        if not self.holding:
            return
        t, m = self._t(), self.model
        remote, ctl = t[SIG.REMOTE_EMS], t[SIG.CONTROL_MODE]
        m.charge_limit_kw = m.discharge_limit_kw = None
        if not remote or ctl == SIG.MODE_SELF:
            m.mode, m.command_kw = "self_consumption", 0.0
        elif ctl in (SIG.MODE_CHARGE_GRID, SIG.MODE_CHARGE_PV):
            m.mode, m.command_kw = "charge", self._u32(SIG.CHARGE_LIMIT) / 1000.0
        elif ctl in (SIG.MODE_DISCHARGE_PV, SIG.MODE_DISCHARGE_ESS):
            m.mode, m.command_kw = "discharge", self._u32(SIG.DISCHARGE_LIMIT) / 1000.0
        else:
            m.mode, m.command_kw = "idle", 0.0
        if m.mode == "self_consumption":  # the limits are maximums everywhere, per SIG-DOC
            m.charge_limit_kw = self._u32(SIG.CHARGE_LIMIT) / 1000.0
            m.discharge_limit_kw = self._u32(SIG.DISCHARGE_LIMIT) / 1000.0
        export = self._u32(SIG.EXPORT_LIMIT)
        m.export_limit_kw = None if export in (SIG.UNLIMITED, SIG.INVALID) else export / 1000.0
        m.reserve = t[SIG.BACKUP_SOC] / 1000.0
        m.max_soc, m.min_soc = t[40047] / 1000.0, t[40048] / 1000.0
        m.flows = m.compute(0.0)
        f = m.flows

        def put32(addr: int, value: float) -> None:
            t[addr], t[addr + 1] = to_u32(int(round(value)), SIG.WORD_ORDER)

        t[30003] = SIG.REMOTE_EMS_WORK_MODE if remote else 0
        put32(SIG.GRID_POWER, f.grid_kw * 1000)  # + buying
        t[SIG.SOC] = int(round(m.soc * 1000))
        put32(SIG.PV_POWER, f.solar_kw * 1000)
        put32(SIG.ESS_POWER, -f.battery_kw * 1000)  # + charging
        t[SIG.RUNNING_STATE] = 1
        t[SIG.SOH] = int(round(m.soh * 1000))

    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        if unit != SIG.PLANT_UNIT:
            return 2
        a = address
        while a < address + len(values):
            v = values[a - address]
            if a in U16_HOLDING:
                lo, hi = U16_HOLDING[a]
                if not lo <= v <= hi or (a == SIG.CONTROL_MODE and v == 7):
                    return 3
                a += 1
            elif a in U32_HOLDING:
                if a + 1 >= address + len(values):
                    return 3  # half of a 32-bit register
                value = u32([v, values[a - address + 1]], SIG.WORD_ORDER)
                if a in (SIG.CHARGE_LIMIT, SIG.DISCHARGE_LIMIT):
                    rated = self.model.max_charge_kw if a == SIG.CHARGE_LIMIT else self.model.max_discharge_kw
                    if value > rated * 1000:
                        return 3
                a += 2
            else:
                return 2
        return None

    @property
    def state(self) -> dict[str, Any]:
        with self.lock:
            t, m = self._t(), self.model
            return {
                "soc": m.soc, "mode": m.mode, "command_kw": m.command_kw, "remote_ems": t[SIG.REMOTE_EMS],
                "control_mode": t[SIG.CONTROL_MODE], "ems_work_mode": t[30003],
                "charge_limit_w": self._u32(SIG.CHARGE_LIMIT), "discharge_limit_w": self._u32(SIG.DISCHARGE_LIMIT),
                "export_limit_w": self._u32(SIG.EXPORT_LIMIT), "backup_soc_pct": t[SIG.BACKUP_SOC] / 10,
                "grid_w": s32([t[SIG.GRID_POWER], t[SIG.GRID_POWER + 1]], SIG.WORD_ORDER),
                "ess_w": s32([t[SIG.ESS_POWER], t[SIG.ESS_POWER + 1]], SIG.WORD_ORDER),
                "registers": dict(t),
            }

    def set(self, *, soc: float | None = None, load_kw: float | None = None, solar_kw: float | None = None,
            **registers: int) -> None:
        with self.lock:
            self.model.update(soc, load_kw, solar_kw)
            for name, value in registers.items():
                addr = getattr(SIG, name)
                if addr in U32_HOLDING:
                    self._t()[addr], self._t()[addr + 1] = to_u32(int(value), SIG.WORD_ORDER)
                else:
                    self._t()[addr] = int(value)
            self.refresh()
