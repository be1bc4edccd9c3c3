"""Wallbox (Pulsar, Commander, Copper) through the Wallbox cloud (reference/ev-chargers-solcast.md §2).

* Sign-in: ``GET {auth}/users/signin`` with Basic auth (e-mail, password) and ``Partner: wallbox`` ->
  ``data.attributes.{token, refresh_token, ttl, refresh_token_ttl}`` (ttl: expiry in epoch milliseconds).
  Refresh: ``GET {auth}/users/refresh-token`` with ``Bearer <refresh_token>``; a failed refresh signs in again.
* Status: ``GET {api}/chargers/status/{id}`` -> ``status_id``, ``charging_power`` (kW), ``added_energy``
  (kWh), ``max_available_power`` (A), ``config_data.max_charging_current`` (A).
* Limit: ``PUT {api}/v2/charger/{id}`` ``{"maxChargingCurrent": A}`` (6 A up to max_available_power).
* Pause / resume: ``POST {api}/v3/chargers/{id}/remote-action`` ``{"action": 2}`` / ``{"action": 1}``.

The API rate-limits hard (429; reports range from one GET per minute to 3 GET + 5 writes per minute), so the
status is cached for ``status_cache_s`` (60 s) and a limit is written only when it differs from the last one.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

from ...config import EvConfig
from ...devices.base import DeviceRejected
from ...redaction import register
from ...storage import HistoryStore
from .base import Charger, ChargerStatus, secret
from .http import JsonHttp

API = "https://api.wall-box.com"
AUTH = "https://user-api.wall-box.com"
CHARGING = {193, 194, 195}
NO_CAR = {0, 161, 162, 163, 165, 166, 209, 14, 15}
PAUSED = {178, 182}
REFRESH_MARGIN_MS = 60_000


class Wallbox(Charger):
    kind = "wallbox"

    def __init__(self, cfg: EvConfig, site_id: str, store: HistoryStore | None = None, *, status_cache_s: float = 60.0,
                 timeout_s: float = 10.0) -> None:
        super().__init__(cfg, site_id, store)
        self.charger_id = str(cfg.charger_id)
        api = cfg.base_url or os.environ.get("POWERSYNC_WALLBOX_BASE_URL") or API
        auth = cfg.auth_url or os.environ.get("POWERSYNC_WALLBOX_AUTH_URL") or (cfg.base_url or AUTH)
        self.api = JsonHttp(f"wallbox {self.charger_id}", api, timeout_s)
        self.auth = JsonHttp("wallbox sign-in", auth, timeout_s)
        self.status_cache_s = status_cache_s
        self._token: str | None = None
        self._refresh: str | None = None
        self._expires_ms = 0
        self._status: tuple[float, dict[str, Any]] | None = None
        self._last_written: int | None = None

    # -- tokens ---------------------------------------------------------------------------------------------
    def _take(self, body: Any, what: str) -> None:
        try:
            a = body["data"]["attributes"]
            self._token, self._refresh, self._expires_ms = str(a["token"]), str(a["refresh_token"]), int(a["ttl"])
            register(self._token, self._refresh)
        except (KeyError, TypeError, ValueError):
            raise DeviceRejected(f"wallbox {what}: the answer has no data.attributes.token/refresh_token/ttl") from None

    def _sign_in(self) -> None:
        user = secret(self.cfg.username_env, "wallbox sign-in", sensitive=False)
        password = secret(self.cfg.password_env, "wallbox sign-in")
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            _, body = self.auth.request("GET", "/users/signin", headers={"Authorization": f"Basic {basic}",
                                                                        "Partner": "wallbox"})
        except DeviceRejected as exc:
            if exc.code in (401, 403):
                raise DeviceRejected("wallbox sign-in refused: check the e-mail and password", exc.code) from None
            raise
        self._take(body, "sign-in")

    def _ensure_token(self) -> str:
        now_ms = time.time() * 1000
        if self._token is None:
            self._sign_in()
        elif now_ms >= self._expires_ms - REFRESH_MARGIN_MS:
            try:
                _, body = self.auth.request("GET", "/users/refresh-token", headers={"Authorization": f"Bearer {self._refresh}",
                                                                                   "Partner": "wallbox"})
                self._take(body, "token refresh")
            except DeviceRejected:
                self._sign_in()
        assert self._token is not None
        return self._token

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        for attempt in (0, 1):
            headers = {"Authorization": f"Bearer {self._ensure_token()}", "Accept": "application/json"}
            try:
                return self.api.request(method, path, headers=headers, json=json)[1]
            except DeviceRejected as exc:
                if exc.code == 401 and attempt == 0:
                    self._token = None  # expired early: sign in again once
                    continue
                raise
        raise AssertionError("unreachable")

    # -- the charger -----------------------------------------------------------------------------------------
    def _raw_status(self, fresh: bool = False) -> dict[str, Any]:
        if not fresh and self._status is not None and time.monotonic() - self._status[0] < self.status_cache_s:
            return self._status[1]
        body = self._call("GET", f"/chargers/status/{self.charger_id}")
        if not isinstance(body, dict) or "status_id" not in body:
            raise DeviceRejected(f"wallbox {self.charger_id}: status without status_id")
        self._status = (time.monotonic(), body)
        return body

    def read_status(self) -> ChargerStatus:
        b = self._raw_status()
        sid = int(b["status_id"])
        cfg = b.get("config_data") or {}
        limit = cfg.get("max_charging_current")
        return ChargerStatus(car_connected=sid not in NO_CAR, charging=sid in CHARGING,
                             power_kw=_num(b.get("charging_power")), current_limit_a=_num(limit),
                             session_energy_kwh=_num(b.get("added_energy")), state=f"status_id {sid}", raw=b)

    def _write_current(self, amps: int) -> None:
        top = _num(self._raw_status().get("max_available_power"))
        if top is not None and amps > top:
            amps = int(top)
        if amps == self._last_written:
            self._wrote("skipped", f"{amps} A already written")
            return
        body = {"maxChargingCurrent": amps}
        self._call("PUT", f"/v2/charger/{self.charger_id}", body)
        self._wrote(f"PUT /v2/charger/{self.charger_id}", body)
        self._last_written = amps

    def _read_limit(self) -> float | None:
        cfg = self._raw_status(fresh=True).get("config_data") or {}
        return _num(cfg.get("max_charging_current"))

    def _action(self, action: int) -> None:
        body = {"action": action}
        self._call("POST", f"/v3/chargers/{self.charger_id}/remote-action", body)
        self._wrote(f"POST /v3/chargers/{self.charger_id}/remote-action", body)
        self._status = None

    def _pause(self) -> None:
        if int(self._raw_status()["status_id"]) not in PAUSED:
            self._action(2)

    def _resume(self) -> None:
        if int(self._raw_status()["status_id"]) in PAUSED:
            self._action(1)

    def close(self) -> None:
        self.api.close()
        self.auth.close()


def _num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None
