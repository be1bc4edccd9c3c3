"""Easee (Home, Charge) through the Easee cloud API (developer.easee.com; reference/ev-chargers-solcast.md §3).

* Login: ``POST /api/accounts/login`` ``{userName, password}`` -> ``accessToken``, ``expiresIn`` (s),
  ``refreshToken``. Refresh: ``POST /api/accounts/refresh_token`` ``{accessToken, refreshToken}``; when that
  fails, log in again.
* State: ``GET /api/chargers/{id}/state`` -> ``chargerOpMode`` (1 disconnected, 2 awaiting start, 3 charging,
  4 completed, 5 error, 6 ready, 7 awaiting authorization, 0 offline), ``totalPower`` (kW), ``sessionEnergy``
  (kWh), ``dynamicChargerCurrent`` (A), ``outputCurrent``.
* Limit: ``POST /api/chargers/{id}/commands/set_dynamic_charger_current`` ``{"amps", "minutes"}``: volatile
  (after ``minutes`` the charger falls back to its own limits), 0 A pauses. Writes answer 200 (no change) or
  202 (confirmed later), so the read-back may lag: a 202 with the old value read back is reported as
  accepted, not failed.
* ``POST /api/chargers/{id}/commands/{pause_charging|resume_charging}``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ...config import EvConfig
from ...devices.base import DeviceRejected
from ...redaction import register
from ...storage import HistoryStore
from .base import Charger, ChargerStatus, secret
from .http import JsonHttp

API = "https://api.easee.com"
CONNECTED = {2, 3, 4, 6, 7}
REFRESH_MARGIN_S = 60.0


class Easee(Charger):
    kind = "easee"

    def __init__(self, cfg: EvConfig, site_id: str, store: HistoryStore | None = None, *, ttl_minutes: int = 30,
                 timeout_s: float = 10.0) -> None:
        super().__init__(cfg, site_id, store)
        self.charger_id = str(cfg.charger_id)
        self.http = JsonHttp(f"easee {self.charger_id}", cfg.base_url or os.environ.get("POWERSYNC_EASEE_BASE_URL") or API,
                             timeout_s)
        self.ttl_minutes = ttl_minutes
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires = 0.0
        self._last_status_code = 0
        self._write_code = 0

    def _take(self, body: Any, what: str) -> None:
        try:
            self._access, self._refresh = str(body["accessToken"]), str(body["refreshToken"])
            register(self._access, self._refresh)
            self._expires = time.time() + float(body["expiresIn"])
        except (KeyError, TypeError, ValueError):
            raise DeviceRejected(f"easee {what}: the answer has no accessToken/refreshToken/expiresIn") from None

    def _login(self) -> None:
        body = {"userName": secret(self.cfg.username_env, "easee login", sensitive=False),
                "password": secret(self.cfg.password_env, "easee login")}
        try:
            _, r = self.http.request("POST", "/api/accounts/login", json=body)
        except DeviceRejected as exc:
            if exc.code in (400, 401, 403):
                raise DeviceRejected("easee login refused: check the user name and password", exc.code) from None
            raise
        self._take(r, "login")

    def _token(self) -> str:
        if self._access is None:
            self._login()
        elif time.time() >= self._expires - REFRESH_MARGIN_S:
            try:
                _, r = self.http.request("POST", "/api/accounts/refresh_token",
                                         json={"accessToken": self._access, "refreshToken": self._refresh})
                self._take(r, "token refresh")
            except DeviceRejected:
                self._login()
        assert self._access is not None
        return self._access

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        for attempt in (0, 1):
            try:
                code, body = self.http.request(method, path, headers={"Authorization": f"Bearer {self._token()}"}, json=json)
                self._last_status_code = code
                return body
            except DeviceRejected as exc:
                if exc.code == 401 and attempt == 0:
                    self._access = None
                    continue
                raise
        raise AssertionError("unreachable")

    def read_status(self) -> ChargerStatus:
        b = self._call("GET", f"/api/chargers/{self.charger_id}/state")
        if not isinstance(b, dict) or "chargerOpMode" not in b:
            raise DeviceRejected(f"easee {self.charger_id}: state without chargerOpMode")
        mode = int(b["chargerOpMode"])
        return ChargerStatus(car_connected=mode in CONNECTED, charging=mode == 3, power_kw=_num(b.get("totalPower")),
                             current_limit_a=_num(b.get("dynamicChargerCurrent")),
                             session_energy_kwh=_num(b.get("sessionEnergy")), state=f"chargerOpMode {mode}", raw=b)

    def _dynamic(self, amps: int) -> None:
        body = {"amps": amps, "minutes": self.ttl_minutes}
        path = f"/api/chargers/{self.charger_id}/commands/set_dynamic_charger_current"
        self._call("POST", path, body)
        self._wrote(f"POST {path}", body)
        self._write_code = self._last_status_code
        self._wrote("http_status", self._write_code)

    def _write_current(self, amps: int) -> None:
        self._dynamic(amps)

    def _read_limit(self) -> float | None:
        got = self.read_status().current_limit_a
        wrote = self._written.get(f"POST /api/chargers/{self.charger_id}/commands/set_dynamic_charger_current", {})
        if self._write_code == 202 and got is not None and got != wrote.get("amps"):
            self._read_back("note", "202: confirmed asynchronously, read-back still shows the old limit")
            return None
        return got

    def _pause(self) -> None:
        self._dynamic(0)

    def _resume(self) -> None:
        if self.read_status().state == "chargerOpMode 2":  # awaiting start: nudge it
            path = f"/api/chargers/{self.charger_id}/commands/resume_charging"
            self._call("POST", path)
            self._wrote(f"POST {path}", None)

    def close(self) -> None:
        self.http.close()


def _num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None
