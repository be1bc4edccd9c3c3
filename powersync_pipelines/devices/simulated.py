"""``kind: simulated``: an in-memory battery (no network) for backtests and quick local runs.

The model lives in this process, one per site id, and advances with the wall clock. It follows the same
interface and safety rules as the real drivers, so a site can switch kind without code changes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd

from .base import BatteryDevice, Telemetry, split_power
from .physics import BatteryModel

_models: dict[str, tuple[BatteryModel, list[float], dict[str, Any]]] = {}
_guard = threading.Lock()


class SimulatedBattery(BatteryDevice):
    kind = "simulated"

    def __init__(self, site: Any, store: Any = None, arbitrated: bool = False) -> None:
        super().__init__(site, store, arbitrated)
        b = self.cfg
        with _guard:
            if site.id not in _models:
                model = BatteryModel(capacity_kwh=b.capacity_kwh, soc=b.initial_soc_pct / 100.0,
                                     max_charge_kw=b.max_charge_kw, max_discharge_kw=b.max_discharge_kw,
                                     charge_efficiency=b.charge_efficiency,
                                     discharge_efficiency=b.discharge_efficiency, min_soc=0.0,
                                     reserve=b.backup_reserve_pct / 100.0)
                _models[site.id] = (model, [time.monotonic()], {"export_limit_w": None})
        self.model, self._clock, self._extra = _models[site.id]

    @property
    def device_key(self) -> str:
        return f"simulated@{self.site.id}"

    def _advance(self) -> None:
        now = time.monotonic()
        self.model.step(now - self._clock[0])
        self._clock[0] = now

    def _set(self, key: str, value: Any) -> None:
        self._wrote(key, value)
        self._advance()
        if key == "export_limit_w":
            self._extra[key] = value
            self.model.export_limit_kw = None if value is None else value / 1000.0
        else:
            setattr(self.model, key, value)
        got = self._extra[key] if key == "export_limit_w" else getattr(self.model, key)
        self._read_back(key, got)

    def _read_telemetry(self) -> Telemetry:
        self._advance()
        f, m = self.model.flows, self.model
        discharge, charge = split_power(f.battery_kw)
        imp, exp = split_power(f.grid_kw)
        return Telemetry(ts=pd.Timestamp.now(tz="UTC"), soc=m.soc, soh=m.soh, battery_charge_kw=charge,
                         battery_discharge_kw=discharge, grid_import_kw=imp, grid_export_kw=exp, load_kw=f.load_kw,
                         solar_kw=f.solar_kw, mode=m.mode,
                         raw={"reserve_pct": m.reserve * 100, "command_kw": m.command_kw})

    def _snapshot(self) -> dict[str, Any]:
        m = self.model
        return {"mode": m.mode, "command_kw": m.command_kw, "reserve_pct": m.reserve * 100,
                "export_limit_w": self._extra["export_limit_w"], "charge_rate_kw": m.charge_limit_kw,
                "discharge_rate_kw": m.discharge_limit_kw}

    def _restore_snapshot(self, snap: dict[str, Any]) -> None:
        self._set("mode", snap["mode"])
        self._set("command_kw", snap["command_kw"])
        self._set("reserve", snap["reserve_pct"] / 100.0)
        self._set("export_limit_w", snap["export_limit_w"])
        self._set("charge_limit_kw", snap["charge_rate_kw"])
        self._set("discharge_limit_kw", snap["discharge_rate_kw"])

    def _force(self, direction: str, power_kw: float) -> None:
        self._set("command_kw", power_kw)
        self._set("mode", direction)

    def _idle(self, telemetry: Telemetry) -> None:
        self._set("command_kw", 0.0)
        self._set("mode", "idle")

    def _normal(self) -> None:
        self._set("command_kw", 0.0)
        self._set("mode", "self_consumption")

    def _set_reserve(self, pct: float) -> None:
        self._set("reserve", pct / 100.0)

    def _set_charge_rate(self, kw: float) -> None:
        self._set("charge_limit_kw", kw)

    def _set_discharge_rate(self, kw: float) -> None:
        self._set("discharge_limit_kw", kw)

    def _set_export_limit(self, watts: float | None) -> None:
        self._set("export_limit_w", watts)

    def _curtail_snapshot(self) -> dict[str, Any]:
        return {"export_limit_w": self._extra["export_limit_w"]}

    def _restore_curtail(self, snap: dict[str, Any]) -> None:
        self._set("export_limit_w", snap["export_limit_w"])
