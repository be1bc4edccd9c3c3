"""Fronius (and other SunSpec inverters) over Modbus TCP: zero export by the SunSpec power limit.

Sources: SunSpec Information Model (models 1, 101-103/111-113, 123, 704 as shipped in pysunspec2 1.3.7's
``model_*.json``); the Fronius Gen24 "Int + SF" register map (reference/devices.md §4.1): SID "SunS" at Fronius
40001-40002 = Modbus address 40000, model 123 at 40228 (1-based) in the int+SF map, shifted +10 in the float map.

Nothing is hard-coded by address: the driver finds "SunS" (at 40000, else 0 or 50000), walks the model chain
(ID, L, next = start + 2 + L, end at ID 0xFFFF), and uses model **704** (DER AC controls, IEEE 1547-2018) when
present, else **123** (immediate controls). Offsets from the model's ID register:

| model | WMaxLimPct (uint16, SF) | enable (enum16) | revert timeout | scale factor (sunssf) |
|---|---|---|---|---|
| 123 | +5 | WMaxLim_Ena +9 | WMaxLimPct_RvrtTms +7 (uint16 s) | WMaxLimPct_SF +23 |
| 704 | +15 | WMaxLimPctEna +14 | WMaxLimPctRvrtTms +18 (uint32 s) | WMaxLimPct_SF +54 |

Percent = raw × 10^SF (Fronius: SF −2, so 100 % is raw 10000).

Quirks:
* Writes are rejected unless "Inverter control via Modbus" is enabled on the inverter (Home Assistant
  Fronius docs, PRs #47615/#47619); the error says so.
* The limit caps inverter *output* (production), not the grid point; a hybrid Gen24 treats 0 % as "produce
  nothing". Zero export at the meter is Fronius's own soft export limit, set in its web UI.
* A revert timeout (``revert_s``) makes the inverter drop the limit by itself if we stop refreshing it; the
  default 0 keeps the limit until restore (the curtailment sensor owns the timing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...config import AcInverterConfig
from ..base import DeviceError, DeviceRejected, Unsupported
from ..modbus import s16, u32
from .modbus_inverter import ModbusInverter

SUNS = (0x5375, 0x6E53)  # "SunS"
BASES = (40000, 0, 50000)
END_ID = 0xFFFF


@dataclass(frozen=True)
class LimitMap:
    model: int
    start: int
    pct: int
    enable: int
    revert: int
    revert_words: int
    sf: int


def limit_map(model: int, start: int) -> LimitMap:
    if model == 704:
        return LimitMap(704, start, start + 15, start + 14, start + 18, 2, start + 54)
    if model == 123:
        return LimitMap(123, start, start + 5, start + 9, start + 7, 1, start + 23)
    raise ValueError(f"model {model} has no WMaxLimPct control")


class Fronius(ModbusInverter):
    brand = "fronius"

    def __init__(self, cfg: AcInverterConfig, *, revert_s: int = 0, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.revert_s = revert_s
        self._map: LimitMap | None = None
        self.models: dict[int, int] = {}

    # -- discovery ------------------------------------------------------------------------------------------
    def discover(self) -> dict[int, int]:
        """Walk the SunSpec chain: {model id: address of its ID register}."""
        base = None
        for candidate in BASES:
            try:
                if tuple(self.link.read_holding(candidate, 2)) == SUNS:
                    base = candidate
                    break
            except DeviceRejected:
                continue
        if base is None:
            raise Unsupported(f"{self.device_key}: no SunSpec 'SunS' marker at {', '.join(map(str, BASES))}")
        models: dict[int, int] = {}
        addr = base + 2
        for _ in range(64):
            model_id, length = self.link.read_holding(addr, 2)
            if model_id == END_ID:
                break
            models.setdefault(model_id, addr)
            addr += 2 + length
        else:
            raise DeviceError(f"{self.device_key}: SunSpec chain has no end marker after 64 models")
        self.models = models
        return models

    @property
    def map(self) -> LimitMap:
        if self._map is None:
            models = self.models or self.discover()
            for m in (704, 123):
                if m in models:
                    self._map = limit_map(m, models[m])
                    break
            else:
                raise Unsupported(f"{self.device_key}: SunSpec models {sorted(models)} include neither 704 nor 123 "
                                  "(no power-limit control)")
        return self._map

    # -- state ----------------------------------------------------------------------------------------------
    def _sf(self) -> int:
        return s16(self.link.read_holding(self.map.sf, 1)[0])

    def read_state(self) -> dict[str, Any]:
        m = self.map
        sf = self._sf()
        raw_pct = self.link.read_holding(m.pct, 1)[0]
        enabled = self.link.read_holding(m.enable, 1)[0] == 1
        rv = self.link.read_holding(m.revert, m.revert_words)
        revert = u32(rv, "big") if m.revert_words == 2 else rv[0]
        pct = round(raw_pct * 10.0**sf, 6)
        return {"limit_pct": pct, "limit_enabled": enabled, "revert_s": revert,
                "curtailed": enabled and pct == 0.0,
                "readings": {"model": m.model, "scale_factor": sf, "raw_pct": raw_pct}}

    def _raw_pct(self, pct: float) -> int:
        return int(round(pct / 10.0**self._sf()))

    def _write(self, address: int, value: int, what: str) -> None:
        try:
            self.write(address, value, what)
        except DeviceRejected as exc:
            raise DeviceRejected(f"{exc}; Fronius rejects control writes unless 'Inverter control via Modbus' is "
                                 "enabled on the inverter", exc.code) from exc

    def _write_revert(self, seconds: int) -> None:
        m = self.map
        if m.revert_words == 2:
            try:
                self.write_u32(m.revert, seconds, "WMaxLimPct revert timeout s")
            except DeviceRejected as exc:
                raise DeviceRejected(f"{exc}; is 'Inverter control via Modbus' enabled?", exc.code) from exc
        else:
            self._write(m.revert, seconds, "WMaxLimPct_RvrtTms s")

    def _write_zero_export(self, state: dict[str, Any]) -> None:
        m = self.map
        self._write_revert(self.revert_s)
        self._write(m.pct, 0, f"WMaxLimPct 0 % (model {m.model})")
        self._write(m.enable, 1, "WMaxLim enable")

    def _write_state(self, state: dict[str, Any]) -> None:
        m = self.map
        self._write(m.enable, 0, "WMaxLim disable while setting")  # disable → write → enable: no 0 % glitch
        self._write(m.pct, self._raw_pct(float(state["limit_pct"])), f"WMaxLimPct {state['limit_pct']} %")
        self._write_revert(int(state["revert_s"]))
        if state["limit_enabled"]:
            self._write(m.enable, 1, "WMaxLim enable")

    def default_state(self) -> dict[str, Any]:
        return {"limit_pct": 100.0, "limit_enabled": False, "revert_s": 0}
