"""Huawei SUN2000 over Modbus TCP (SDongle or the inverter's own AP): zero export by active power control.

Source: the register definitions of ``huawei-solar`` (wlcrs/huawei-solar-lib @873c1b3, PyPI 3.0.7), summarised
in reference/devices.md §4.4. Register numbers are Modbus addresses; 32-bit values high word first.

| addr | type | meaning |
|---|---|---|
| 47415 | U16 | active power control mode: 0 unlimited, 1 DI scheduling, 5 zero-power grid connection, 6 limited (W), 7 limited (%) |
| 47416-47417 | I32 W | maximum feed-grid power (mode 6) |
| 47418 | I16, gain 10 | maximum feed-grid power % (mode 7) |

Zero export: mode 5 (needs the Huawei power meter; the inverter then holds the grid point at 0 W, solar still
serves the house). Restore: the saved limits, then the saved mode (usually 0).

Quirks (huawei-solar README): the SDongle reacts slowly (library timeout 10 s) and wants ~1.5 s after
connecting before the first request (``settle_s``); port 502 on the SDongle with unit 1, port 6607 on the
inverter's WiFi AP with unit 0; some writes need the installer login first. With an EMMA controller the limits
move to 40107/40109 (not supported here).
"""

from __future__ import annotations

import time
from typing import Any

from ...config import AcInverterConfig
from ..modbus import s16, s32, to_u32
from .modbus_inverter import ModbusInverter

MODE, LIMIT_W, LIMIT_PCT = 47415, 47416, 47418
UNLIMITED, ZERO_EXPORT, LIMIT_WATTS, LIMIT_PERCENT = 0, 5, 6, 7


class HuaweiSun2000(ModbusInverter):
    brand = "huawei"

    def __init__(self, cfg: AcInverterConfig, *, settle_s: float = 1.5, timeout_s: float = 10.0, **kw: Any) -> None:
        super().__init__(cfg, timeout_s=timeout_s, **kw)
        self.settle_s = settle_s
        self._settled = False

    def _settle(self) -> None:
        if not self._settled:
            self.link.read_holding(MODE, 1)  # connects
            time.sleep(self.settle_s)
            self._settled = True

    def read_state(self) -> dict[str, Any]:
        self._settle()
        mode, w_hi, w_lo, pct_raw = self.link.read_holding(MODE, 4)
        watts = s32([w_hi, w_lo], "big")
        return {"mode": mode, "limit_w": watts, "limit_pct": s16(pct_raw) / 10.0,
                "curtailed": mode == ZERO_EXPORT or (mode == LIMIT_WATTS and watts == 0),
                "readings": {}}

    def _write_zero_export(self, state: dict[str, Any]) -> None:
        self._settle()
        self.write(MODE, ZERO_EXPORT, "active power control: zero-power grid connection")

    def _write_state(self, state: dict[str, Any]) -> None:
        self._settle()
        self.link.write_registers(LIMIT_W, to_u32(int(state["limit_w"]), "big"))
        self._wrote(f"maximum feed-grid power W (holding {LIMIT_W}-{LIMIT_W + 1})", int(state["limit_w"]))
        self.write(LIMIT_PCT, round(float(state["limit_pct"]) * 10), "maximum feed-grid power % x10")
        self.write(MODE, int(state["mode"]), "active power control mode")

    def default_state(self) -> dict[str, Any]:
        rated_w = int((self.cfg.rated_kw or 10.0) * 1000)
        return {"mode": UNLIMITED, "limit_w": rated_w, "limit_pct": 100.0}

    def close(self) -> None:
        super().close()
        self._settled = False

