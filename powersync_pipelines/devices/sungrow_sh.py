"""Sungrow SH hybrid over Modbus TCP (SPEC §7; reference/devices.md §1).

Signs are converted here, once: register 5213 (+ discharging) and 5600 (+ importing) become named
non-negative powers. Every write is read back; the forced-mode order is power → EMS mode → command (SH-RS
firmware answers exception 4 to a command without a power). A backup-reserve write refused with exception 4
while the inverter is in forced mode is handled the way the firmware demands: step to self-consumption, write
the reserve, put the forced mode back.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .base import BatteryDevice, DeviceRejected, Telemetry, VerifyError, split_power
from .maps import SG
from .modbus import ModbusLink, s32, u32

MODE_NAMES = {0: "self_consumption", 3: "external_ems", 4: "vpp", 8: "microgrid"}
CMD_NAMES = {SG.CMD_CHARGE: "force_charge", SG.CMD_DISCHARGE: "force_discharge", SG.CMD_STOP: "idle"}
REG_NAMES = {v: k.lower() for k, v in vars(SG).items() if k.isupper() and isinstance(v, int) and v > 4000}


class SungrowSH(BatteryDevice):
    kind = "sungrow_sh"

    def __init__(self, site: Any, store: Any = None, arbitrated: bool = False) -> None:
        super().__init__(site, store, arbitrated)
        cfg = self.cfg
        self.link = ModbusLink(cfg.host or "127.0.0.1", cfg.port or 502,
                               cfg.device_id if cfg.device_id is not None else 1,
                               timeout_s=cfg.timeout_s, attempts=cfg.connect_attempts,
                               backoff_base_s=cfg.backoff_base_s, name="sungrow_sh")

    @property
    def device_key(self) -> str:
        return f"sungrow_sh@{self.link.host}:{self.link.port}/{self.link.device_id}"

    def close(self) -> None:
        self.link.close()

    # -- low level --------------------------------------------------------------------------------------
    def _get(self, address: int) -> int:
        return self.link.read_holding(address, 1)[0]

    def _put(self, address: int, value: int) -> None:
        """Write one holding register and verify it by reading it back."""
        key = f"{address}:{REG_NAMES.get(address, 'holding')}"
        self._wrote(key, value)
        self.link.write_register(address, value)
        got = self._get(address)
        self._read_back(key, got)
        if got != value:
            raise VerifyError(f"{self.link.where}: register {address} read back {got} after writing {value}")

    # -- telemetry --------------------------------------------------------------------------------------
    def _read_telemetry(self) -> Telemetry:
        wo = SG.WORD_ORDER
        block = self.link.read_input(SG.RUNNING_STATE, SG.SOH - SG.RUNNING_STATE + 1)

        def at(addr: int, n: int = 1) -> list[int]:
            return block[addr - SG.RUNNING_STATE: addr - SG.RUNNING_STATE + n]

        soc_raw, soh_raw = at(SG.SOC)[0], at(SG.SOH)[0]
        battery_w = s32(self.link.read_input(SG.BATTERY_POWER, 2), wo)
        meter_w = s32(self.link.read_input(SG.METER_POWER, 2), wo)
        pv_w = u32(self.link.read_input(SG.PV_POWER, 2), wo)
        load_w = s32(at(SG.LOAD_POWER, 2), wo)
        ems = self.link.read_holding(SG.EMS_MODE, 3)
        reserve = self._get(SG.RESERVE)
        if soc_raw == SG.NA_U16 or soc_raw > 1000:
            raise DeviceRejected(f"{self.link.where}: SOC register {SG.SOC} reads {soc_raw} (not available)")
        discharge_kw, charge_kw = split_power(battery_w / 1000.0)
        import_kw, export_kw = split_power(meter_w / 1000.0)
        mode_reg, cmd = ems[0], ems[1]
        mode = CMD_NAMES.get(cmd, "forced") if mode_reg == SG.MODE_FORCED else MODE_NAMES.get(mode_reg, f"ems_{mode_reg}")
        return Telemetry(
            ts=pd.Timestamp.now(tz="UTC"), soc=soc_raw / 1000.0,
            soh=None if soh_raw in (SG.NA_U16, 0) or soh_raw > 1000 else soh_raw / 1000.0,
            battery_charge_kw=charge_kw, battery_discharge_kw=discharge_kw,
            grid_import_kw=import_kw, grid_export_kw=export_kw,
            load_kw=None if load_w == SG.NA_S32 else load_w / 1000.0,
            solar_kw=None if pv_w == 0xFFFFFFFF else pv_w / 1000.0, mode=mode,
            raw={"running_state": at(SG.RUNNING_STATE)[0], "power_flow": at(SG.POWER_FLOW)[0],
                 "battery_power_w": battery_w, "meter_power_w": meter_w, "pv_power_w": pv_w, "load_power_w": load_w,
                 "ems_mode": mode_reg, "command": cmd, "forced_power_w": ems[2], "reserve_pct": reserve},
        )

    # -- snapshot / restore ----------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        ems = self.link.read_holding(SG.EMS_MODE, 3)
        limit_w, switch = self._get(SG.EXPORT_LIMIT), self._get(SG.EXPORT_SWITCH)
        return {
            "ems_mode": ems[0], "command": ems[1], "forced_power_w": ems[2],
            "reserve_pct": float(self._get(SG.RESERVE)),
            "export_limit_w": float(limit_w) if switch == SG.ON else None,
            "charge_rate_kw": self._get(SG.MAX_CHARGE_POWER) / 100.0,
            "discharge_rate_kw": self._get(SG.MAX_DISCHARGE_POWER) / 100.0,
        }

    def _restore_snapshot(self, snap: dict[str, Any]) -> None:
        """Write back only what differs, mode last: stop → power → EMS mode (the firmware's restore order)."""
        now = self._snapshot()
        mode, cmd, power = int(snap["ems_mode"]), int(snap["command"]), int(snap.get("forced_power_w", 0))
        if (now["ems_mode"], now["command"]) != (mode, cmd) or now["forced_power_w"] != power:
            if mode == SG.MODE_FORCED:
                self._put(SG.FORCED_POWER, power)
                self._put(SG.EMS_MODE, mode)
                self._put(SG.COMMAND, cmd)
            else:
                self._put(SG.COMMAND, SG.CMD_STOP)
                self._put(SG.FORCED_POWER, power)
                self._put(SG.EMS_MODE, mode)
                if cmd != SG.CMD_STOP:
                    self._put(SG.COMMAND, cmd)
        if snap.get("reserve_pct") is not None and now["reserve_pct"] != snap["reserve_pct"]:
            self._set_reserve(float(snap["reserve_pct"]))
        if snap.get("export_limit_w", "absent") != "absent" and now["export_limit_w"] != snap["export_limit_w"]:
            self._set_export_limit(snap["export_limit_w"])
        for key, reg in (("charge_rate_kw", SG.MAX_CHARGE_POWER), ("discharge_rate_kw", SG.MAX_DISCHARGE_POWER)):
            if snap.get(key) is not None and abs(now[key] - float(snap[key])) > 1e-6:
                self._put(reg, int(round(float(snap[key]) * 100)))

    # -- controls ---------------------------------------------------------------------------------------
    def _force(self, direction: str, power_kw: float) -> None:
        self._put(SG.FORCED_POWER, int(round(power_kw * 1000)))
        self._put(SG.EMS_MODE, SG.MODE_FORCED)
        self._put(SG.COMMAND, SG.CMD_CHARGE if direction == "charge" else SG.CMD_DISCHARGE)

    def _idle(self, telemetry: Telemetry) -> None:
        self._put(SG.FORCED_POWER, 0)
        self._put(SG.EMS_MODE, SG.MODE_FORCED)
        self._put(SG.COMMAND, SG.CMD_STOP)

    def _normal(self) -> None:
        self._put(SG.COMMAND, SG.CMD_STOP)
        self._put(SG.FORCED_POWER, 0)
        self._put(SG.EMS_MODE, SG.MODE_SELF)

    def _set_reserve(self, pct: float) -> None:
        value = int(round(pct))
        try:
            self._put(SG.RESERVE, value)
        except DeviceRejected as exc:
            if exc.code != 4:
                raise
            ems = self.link.read_holding(SG.EMS_MODE, 3)
            if ems[0] != SG.MODE_FORCED:
                raise
            # The firmware refuses reserve writes in forced mode: leave it, write, and re-enter.
            self._put(SG.EMS_MODE, SG.MODE_SELF)
            try:
                self._put(SG.RESERVE, value)
            finally:
                self._put(SG.FORCED_POWER, ems[2])
                self._put(SG.EMS_MODE, SG.MODE_FORCED)
                self._put(SG.COMMAND, ems[1])

    def _set_charge_rate(self, kw: float) -> None:
        self._put(SG.MAX_CHARGE_POWER, int(round(kw * 100)))

    def _set_discharge_rate(self, kw: float) -> None:
        self._put(SG.MAX_DISCHARGE_POWER, int(round(kw * 100)))

    def _set_export_limit(self, watts: float | None) -> None:
        if watts is None:
            self._put(SG.EXPORT_SWITCH, SG.OFF)
            return
        self._put(SG.EXPORT_LIMIT, min(0xFFFF, int(round(watts))))
        self._put(SG.EXPORT_SWITCH, SG.ON)

    def _curtail_snapshot(self) -> dict[str, Any]:
        limit_w, switch = self._get(SG.EXPORT_LIMIT), self._get(SG.EXPORT_SWITCH)
        return {"export_limit_w": float(limit_w) if switch == SG.ON else None, "limit_register_w": limit_w}

    def _restore_curtail(self, snap: dict[str, Any]) -> None:
        if snap.get("export_limit_w") is None:
            self._put(SG.EXPORT_SWITCH, SG.OFF)
            before = snap.get("limit_register_w")
            if before is not None and self._get(SG.EXPORT_LIMIT) != int(before):
                self._put(SG.EXPORT_LIMIT, int(before))
        else:
            self._set_export_limit(float(snap["export_limit_w"]))
