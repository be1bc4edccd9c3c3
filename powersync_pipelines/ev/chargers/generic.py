"""A generic charger: a switch and a current setpoint, over Modbus TCP or plain HTTP (``ev.generic``).

Modbus (holding registers, pymodbus addresses): ``enable_register`` 1 on / 0 off, ``current_register`` =
amps x ``current_scale``; optional ``power_register`` (input register, W). Every write is read back.
HTTP: ``GET status_path`` -> ``{"enabled": bool, "current_a": A, "power_w": W?, "car_connected": bool?}``;
``POST enable_path {"enabled": bool}``, ``POST current_path {"current_a": A}``.
"""

from __future__ import annotations

from typing import Any

from ...config import EvConfig
from ...devices.base import DeviceRejected, VerifyError
from ...devices.modbus import ModbusLink
from ...storage import HistoryStore
from .base import Charger, ChargerStatus
from .http import JsonHttp


class GenericCharger(Charger):
    kind = "generic"

    def __init__(self, cfg: EvConfig, site_id: str, store: HistoryStore | None = None, *, timeout_s: float = 5.0) -> None:
        super().__init__(cfg, site_id, store)
        g = cfg.generic
        assert g is not None  # the config model requires it
        self.g = g
        if g.protocol == "modbus":
            self.link: ModbusLink | None = ModbusLink(str(cfg.host), cfg.port or 502, cfg.device_id, timeout_s=timeout_s,
                                                      name="ev generic")
            self.http: JsonHttp | None = None
        else:
            self.link = None
            self.http = JsonHttp(f"ev generic {cfg.host}", cfg.base_url or f"http://{cfg.host}:{cfg.port or 80}", timeout_s)

    # -- reads --------------------------------------------------------------------------------------------
    def _modbus_state(self) -> dict[str, Any]:
        assert self.link is not None
        enabled = self.link.read_holding(self.g.enable_register)[0]
        current = self.link.read_holding(self.g.current_register)[0] / self.g.current_scale
        power = self.link.read_input(self.g.power_register)[0] if self.g.power_register is not None else None
        return {"enabled": bool(enabled), "current_a": current, "power_w": power}

    def _http_state(self) -> dict[str, Any]:
        assert self.http is not None
        _, b = self.http.request("GET", self.g.status_path)
        if not isinstance(b, dict) or "enabled" not in b or "current_a" not in b:
            raise DeviceRejected(f"ev generic {self.cfg.host}: {self.g.status_path} needs 'enabled' and 'current_a'")
        return b

    def _state(self) -> dict[str, Any]:
        return self._modbus_state() if self.link is not None else self._http_state()

    def read_status(self) -> ChargerStatus:
        s = self._state()
        power = s.get("power_w")
        kw = None if power is None else float(power) / 1000.0
        return ChargerStatus(car_connected=bool(s.get("car_connected", True)),
                             charging=bool(s["enabled"]) and (kw is None or kw > 0), power_kw=kw,
                             current_limit_a=float(s["current_a"]), session_energy_kwh=s.get("session_energy_kwh"),
                             state="on" if s["enabled"] else "off", raw=s)

    # -- writes -------------------------------------------------------------------------------------------
    def _write_current(self, amps: int) -> None:
        if self.link is not None:
            raw = int(round(amps * self.g.current_scale))
            self.link.write_register(self.g.current_register, raw)
            self._wrote(f"holding {self.g.current_register}", raw)
        else:
            assert self.http is not None
            self.http.request("POST", self.g.current_path, json={"current_a": amps})
            self._wrote(f"POST {self.g.current_path}", {"current_a": amps})

    def _switch(self, on: bool) -> None:
        if self.link is not None:
            self.link.write_register(self.g.enable_register, int(on))
            self._wrote(f"holding {self.g.enable_register}", int(on))
        else:
            assert self.http is not None
            self.http.request("POST", self.g.enable_path, json={"enabled": on})
            self._wrote(f"POST {self.g.enable_path}", {"enabled": on})
        got = bool(self._state()["enabled"])
        self._read_back("enabled", got)
        if got != on:
            raise VerifyError(f"ev generic {self.cfg.host}: switched {'on' if on else 'off'}, it reports {'on' if got else 'off'}")

    def _pause(self) -> None:
        self._switch(False)

    def _resume(self) -> None:
        self._switch(True)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        if self.http is not None:
            self.http.close()
