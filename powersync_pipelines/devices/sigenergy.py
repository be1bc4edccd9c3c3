"""Sigenergy plant over Modbus TCP, unit 247 (SPEC §7; reference/devices.md §2).

Control is by remote EMS: 40029 = 1 hands the plant to 40031. Force charge = mode 4 (command charging, PV first)
with the charge limit 40032 at the requested power; force discharge = mode 6 (ESS first) with 40034; idle =
mode 1 (standby); normal = mode 2 then remote EMS off. Signs converted once: 30005 (+ buying) and 30037
(+ charging) become named non-negative powers. 32-bit registers (kW×1000) are written whole with FC16 and
read back.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .base import BatteryDevice, DeviceRejected, Telemetry, VerifyError, split_power
from .maps import SIG
from .modbus import ModbusLink, s32, to_u32, u32

CONTROL_NAMES = {0: "pcs_remote", 1: "idle", 2: "self_consumption", 3: "force_charge", 4: "force_charge",
                 5: "force_discharge", 6: "force_discharge", 8: "v2g"}
REG_NAMES = {v: k.lower() for k, v in vars(SIG).items() if k.isupper() and isinstance(v, int) and v >= 30000}


class Sigenergy(BatteryDevice):
    kind = "sigenergy"

    def __init__(self, site: Any, store: Any = None, arbitrated: bool = False) -> None:
        super().__init__(site, store, arbitrated)
        cfg = self.cfg
        self.link = ModbusLink(cfg.host or "127.0.0.1", cfg.port or 502,
                               cfg.device_id if cfg.device_id is not None else SIG.PLANT_UNIT,
                               timeout_s=cfg.timeout_s, attempts=cfg.connect_attempts,
                               backoff_base_s=cfg.backoff_base_s, name="sigenergy")

    @property
    def device_key(self) -> str:
        return f"sigenergy@{self.link.host}:{self.link.port}/{self.link.device_id}"

    def close(self) -> None:
        self.link.close()

    # -- low level --------------------------------------------------------------------------------------
    def _key(self, address: int) -> str:
        return f"{address}:{REG_NAMES.get(address, 'holding')}"

    def _put16(self, address: int, value: int) -> None:
        self._wrote(self._key(address), value)
        self.link.write_register(address, value)
        got = self.link.read_holding(address, 1)[0]
        self._read_back(self._key(address), got)
        if got != value:
            raise VerifyError(f"{self.link.where}: register {address} read back {got} after writing {value}")

    def _put32(self, address: int, value: int) -> None:
        self._wrote(self._key(address), value)
        self.link.write_registers(address, to_u32(value, SIG.WORD_ORDER))
        got = u32(self.link.read_holding(address, 2), SIG.WORD_ORDER)
        self._read_back(self._key(address), got)
        if got != value:
            raise VerifyError(f"{self.link.where}: registers {address}-{address + 1} read back {got} "
                              f"after writing {value}")

    def _get32(self, address: int) -> int:
        return u32(self.link.read_holding(address, 2), SIG.WORD_ORDER)

    # -- telemetry --------------------------------------------------------------------------------------
    def _read_telemetry(self) -> Telemetry:
        wo = SIG.WORD_ORDER
        head = self.link.read_input(30003, SIG.SOC - 30003 + 1)
        grid_w = s32(head[SIG.GRID_POWER - 30003: SIG.GRID_POWER - 30003 + 2], wo)
        soc_raw = head[SIG.SOC - 30003]
        flows = self.link.read_input(SIG.PV_POWER, 4)
        pv_w, ess_w = s32(flows[0:2], wo), s32(flows[2:4], wo)
        soh_raw = self.link.read_input(SIG.SOH, 1)[0]
        ctl = self.link.read_holding(SIG.REMOTE_EMS, 3)
        reserve = self.link.read_holding(SIG.BACKUP_SOC, 1)[0] / 10.0
        if soc_raw > 1000:
            raise DeviceRejected(f"{self.link.where}: SOC register {SIG.SOC} reads {soc_raw}")
        charge_kw, discharge_kw = split_power(ess_w / 1000.0)
        import_kw, export_kw = split_power(grid_w / 1000.0)
        remote, mode_reg = ctl[0], ctl[2]
        mode = CONTROL_NAMES.get(mode_reg, f"mode_{mode_reg}") if remote else "self_consumption"
        solar = pv_w / 1000.0
        load = max(0.0, import_kw - export_kw + solar + discharge_kw - charge_kw)  # the plant balance
        return Telemetry(
            ts=pd.Timestamp.now(tz="UTC"), soc=soc_raw / 1000.0, soh=soh_raw / 1000.0 if 0 < soh_raw <= 1000 else None,
            battery_charge_kw=charge_kw, battery_discharge_kw=discharge_kw, grid_import_kw=import_kw,
            grid_export_kw=export_kw, load_kw=round(load, 3), solar_kw=solar, mode=mode,
            raw={"ems_work_mode": head[0], "grid_power_w": grid_w, "ess_power_w": ess_w, "pv_power_w": pv_w,
                 "remote_ems": remote, "control_mode": mode_reg, "reserve_pct": reserve},
        )

    # -- snapshot / restore ----------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        ctl = self.link.read_holding(SIG.REMOTE_EMS, 3)
        export = self._get32(SIG.EXPORT_LIMIT)
        return {
            "remote_ems": ctl[0], "control_mode": ctl[2],
            "charge_rate_kw": self._get32(SIG.CHARGE_LIMIT) / 1000.0,
            "discharge_rate_kw": self._get32(SIG.DISCHARGE_LIMIT) / 1000.0,
            "export_limit_w": None if export in (SIG.UNLIMITED, SIG.INVALID) else float(export),
            "reserve_pct": self.link.read_holding(SIG.BACKUP_SOC, 1)[0] / 10.0,
        }

    def _restore_snapshot(self, snap: dict[str, Any]) -> None:
        now = self._snapshot()
        for key, reg in (("charge_rate_kw", SIG.CHARGE_LIMIT), ("discharge_rate_kw", SIG.DISCHARGE_LIMIT)):
            if snap.get(key) is not None and abs(now[key] - float(snap[key])) > 1e-6:
                self._put32(reg, int(round(float(snap[key]) * 1000)))
        if "export_limit_w" in snap and now["export_limit_w"] != snap["export_limit_w"]:
            self._set_export_limit(snap["export_limit_w"])
        if snap.get("reserve_pct") is not None and now["reserve_pct"] != snap["reserve_pct"]:
            self._set_reserve(float(snap["reserve_pct"]))
        if now["control_mode"] != snap["control_mode"]:
            self._put16(SIG.CONTROL_MODE, int(snap["control_mode"]))
        if now["remote_ems"] != snap["remote_ems"]:
            self._put16(SIG.REMOTE_EMS, int(snap["remote_ems"]))

    # -- controls ---------------------------------------------------------------------------------------
    def _force(self, direction: str, power_kw: float) -> None:
        if direction == "charge":
            self._put32(SIG.CHARGE_LIMIT, int(round(power_kw * 1000)))
            self._put16(SIG.REMOTE_EMS, 1)
            self._put16(SIG.CONTROL_MODE, SIG.MODE_CHARGE_PV)
        else:
            self._put32(SIG.DISCHARGE_LIMIT, int(round(power_kw * 1000)))
            self._put16(SIG.REMOTE_EMS, 1)
            self._put16(SIG.CONTROL_MODE, SIG.MODE_DISCHARGE_ESS)

    def _idle(self, telemetry: Telemetry) -> None:
        self._put16(SIG.REMOTE_EMS, 1)
        self._put16(SIG.CONTROL_MODE, SIG.MODE_STANDBY)

    def _normal(self) -> None:
        self._put16(SIG.CONTROL_MODE, SIG.MODE_SELF)
        self._put16(SIG.REMOTE_EMS, 0)

    def _set_reserve(self, pct: float) -> None:
        self._put16(SIG.BACKUP_SOC, int(round(pct * 10)))

    def _set_charge_rate(self, kw: float) -> None:
        self._put32(SIG.CHARGE_LIMIT, int(round(kw * 1000)))

    def _set_discharge_rate(self, kw: float) -> None:
        self._put32(SIG.DISCHARGE_LIMIT, int(round(kw * 1000)))

    def _set_export_limit(self, watts: float | None) -> None:
        self._put32(SIG.EXPORT_LIMIT, SIG.UNLIMITED if watts is None else int(round(watts)))

    def _curtail_snapshot(self) -> dict[str, Any]:
        export = self._get32(SIG.EXPORT_LIMIT)
        return {"export_limit_w": None if export in (SIG.UNLIMITED, SIG.INVALID) else float(export)}

    def _restore_curtail(self, snap: dict[str, Any]) -> None:
        self._set_export_limit(snap.get("export_limit_w"))
