"""Sungrow SG string inverters (SG-RS/RT, AC-coupled): zero export by the power-limitation switch and ratio.

Source: Sungrow "Communication Protocol of Residential and Commercial PV Grid-connected Inverter" V1.1.53
(2023-01-17), holding table (4X), as summarised in reference/devices.md §1.10. The document numbers registers
from 1; the Modbus address is the number minus 1 (same rule as its hybrid sibling, SG-DOC §1.2).

| Doc # | addr | meaning |
|---|---|---|
| 5006 | 5005 | start/stop: 0xCF start, 0xCE stop |
| 5007 | 5006 | power limitation switch: 0xAA enable, 0x55 disable |
| 5008 | 5007 | power limitation setting, 0.1 % of rated (0-1000, some models up to 1100); used only while enabled |
| 5038 (input) | 5037 | work state (reading only) |

Quirks:
* The limit caps inverter *output*, so "zero export" here means "produce nothing": the house then imports.
  Export limitation at the meter (doc 5010/5011) needs a Sungrow meter and is not used.
* Power limiting to 0 % does not fully stop some models (SG5.0RS, noted in reference/devices.md §1.10), so
  ``zero_by="stop"`` stops the inverter (0xCE) instead and restore starts it again (0xCF).
* Older SG.05RS units move the limit toggle to addr 5147; not supported here (clear error via read-back).
"""

from __future__ import annotations

from typing import Any, Literal

from ...config import AcInverterConfig
from .modbus_inverter import ModbusInverter

START_STOP, LIMIT_SWITCH, LIMIT_RATIO = 5005, 5006, 5007
WORK_STATE = 5037
START, STOP, ENABLE, DISABLE = 0xCF, 0xCE, 0xAA, 0x55


class SungrowSG(ModbusInverter):
    brand = "sungrow_sg"

    def __init__(self, cfg: AcInverterConfig, *, zero_by: Literal["limit", "stop"] = "limit", **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.zero_by = zero_by

    def read_state(self) -> dict[str, Any]:
        start_stop, switch, ratio = self.link.read_holding(START_STOP, 3)
        work_state = self.link.read_input(WORK_STATE, 1)[0]
        running = start_stop != STOP
        enabled = switch == ENABLE
        pct = ratio / 10.0
        return {
            "running": running, "limit_enabled": enabled, "limit_pct": pct,
            "curtailed": (not running) or (enabled and pct == 0.0),
            "readings": {"work_state": work_state, "start_stop_raw": start_stop, "switch_raw": switch},
        }

    def _write_zero_export(self, state: dict[str, Any]) -> None:
        if self.zero_by == "stop":
            self.write(START_STOP, STOP, "stop inverter")
            return
        self.write(LIMIT_RATIO, 0, "power limitation 0.0 %")
        self.write(LIMIT_SWITCH, ENABLE, "power limitation switch on")

    def _write_state(self, state: dict[str, Any]) -> None:
        self.write(LIMIT_RATIO, round(float(state["limit_pct"]) * 10), f"power limitation {state['limit_pct']} %")
        self.write(LIMIT_SWITCH, ENABLE if state["limit_enabled"] else DISABLE,
                   f"power limitation switch {'on' if state['limit_enabled'] else 'off'}")
        if state["running"]:
            self.write(START_STOP, START, "start inverter")

    def default_state(self) -> dict[str, Any]:
        return {"running": True, "limit_enabled": False, "limit_pct": 100.0}
