"""Enphase IQ Gateway (Envoy) over local HTTPS: zero export by the DPEL (device power export limit) settings.

Sources: Matthew1471/Enphase-API documentation (``IQ Gateway API/Auth/Check_JWT.adoc``, ``IVP/SS/dpel.adoc``),
pyenphase ``auth.py``/``const.py``, summarised in reference/devices.md §4.5.

* Auth (firmware 7+): a JWT from Enlighten (owner tokens last ~1 year, installer tokens 12 h), sent as
  ``Authorization: Bearer <jwt>``. ``GET /auth/check_jwt`` validates it and creates a session (``sessionId``
  cookie, valid while used within 10 minutes); later calls carry the cookie and the header.
* ``GET /ivp/ss/dpel`` returns ``{"dynamic_pel_settings": {enable, export_limit, limit_value_W, slew_rate,
  enable_dynamic_limiting, ...}}``; writes send the same object back (``PUT``), merged with our changes so
  firmware-specific keys (AU/NZ ``installed_capacity``, relay config) are preserved.
* Zero export: ``enable: true, export_limit: true`` (limit at the meter, not production), ``limit_value_W: 0``.
  Restore: the saved object (or ``enable: false``).

Quirks: the gateway has a self-signed certificate (verification off by default; pass ``verify`` to pin one);
DPEL is reverse-engineered and "legacy, replaced by AGF" on newer firmware, where ``/ivp/ss/dpel`` answers 404
(``{"err": "404 - Not Found"}``) and this driver reports the brand as unsupported; the write verb is not
documented (PUT is used, 405 is reported as unsupported). Best effort by nature; read-back decides success.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from ...config import AcInverterConfig
from ...redaction import excerpt, redact, register, response_excerpt
from ..base import DeviceRejected, DeviceUnavailable, Unsupported
from .base import AcInverter, token_from_env

DPEL = "/ivp/ss/dpel"
CHECK_JWT = "/auth/check_jwt"


class EnphaseGateway(AcInverter):
    brand = "enphase"
    default_port = 443

    def __init__(self, cfg: AcInverterConfig, *, scheme: str = "https", verify: bool | str | ssl.SSLContext = False,
                 timeout_s: float = 10.0) -> None:
        super().__init__(cfg)
        self.base_url = f"{scheme}://{self.host}:{self.port}"
        self._verify, self._timeout = verify, timeout_s
        self._client: httpx.Client | None = None

    # -- http -----------------------------------------------------------------------------------------------
    def _session(self) -> httpx.Client:
        if self._client is None:
            token = token_from_env(self.cfg)
            register(token)
            client = httpx.Client(base_url=self.base_url, verify=self._verify, timeout=self._timeout,
                                  headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
            try:
                resp = client.get(CHECK_JWT)
            except httpx.HTTPError as exc:
                client.close()
                raise DeviceUnavailable(f"{self.device_key}: {CHECK_JWT}: {type(exc).__name__}: {redact(exc)}") from None
            if resp.status_code == 401:
                client.close()
                raise DeviceRejected(f"{self.device_key}: {CHECK_JWT} answered 401: the token in "
                                     f"{self.cfg.token_env} is invalid or expired (owner tokens last ~1 year)", 401)
            if resp.status_code >= 400:
                client.close()
                raise DeviceRejected(f"{self.device_key}: {CHECK_JWT} answered HTTP {resp.status_code}",
                                     resp.status_code)
            self._client = client
        return self._client

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        client = self._session()
        try:
            resp = client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(f"{self.device_key}: {method} {path}: {type(exc).__name__}: {redact(exc)}") from None
        if resp.status_code in (404, 405):
            raise Unsupported(f"{self.device_key}: {method} {path} answered {resp.status_code}: this gateway firmware "
                              "has no DPEL export limit (legacy, replaced by AGF grid profiles)")
        if resp.status_code >= 400:
            raise DeviceRejected(f"{self.device_key}: {method} {path} answered HTTP {resp.status_code}: "
                                 f"{response_excerpt(resp)}", resp.status_code)
        try:
            data = resp.json() if resp.content else {}
        except ValueError as exc:
            raise DeviceRejected(f"{self.device_key}: {method} {path}: reply is not JSON: "
                                 f"{response_excerpt(resp, 120)!r}") from exc
        if isinstance(data, dict) and "err" in data:
            raise Unsupported(f"{self.device_key}: {method} {path}: gateway says {excerpt(data['err'], 120)!r}")
        return data

    # -- state ----------------------------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        data = self._request("GET", DPEL)
        settings = data.get("dynamic_pel_settings") if isinstance(data, dict) else None
        if not isinstance(settings, dict):
            raise DeviceRejected(f"{self.device_key}: GET {DPEL}: no 'dynamic_pel_settings' object in "
                                 f"{excerpt(repr(data), 160)}")
        return settings

    def read_state(self) -> dict[str, Any]:
        s = self._settings()
        enabled, export = bool(s.get("enable")), bool(s.get("export_limit"))
        limit = _watts(s.get("limit_value_W", 0.0), self.device_key)
        return {"dpel": s, "curtailed": enabled and export and limit == 0.0, "readings": {}}

    def _put(self, settings: dict[str, Any], what: str) -> None:
        self._request("PUT", DPEL, {"dynamic_pel_settings": settings})
        self._wrote(f"PUT {DPEL} ({what})", settings)

    def _write_zero_export(self, state: dict[str, Any]) -> None:
        merged = {**state["dpel"], "enable": True, "export_limit": True, "limit_value_W": 0.0}
        self._put(merged, "zero export at the meter")

    def _write_state(self, state: dict[str, Any]) -> None:
        self._put(dict(state["dpel"]), "restore")

    def default_state(self) -> dict[str, Any]:
        current = self._settings()
        return {"dpel": {**current, "enable": False}}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _watts(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise DeviceRejected(f"{where}: GET {DPEL}: limit_value_W is {excerpt(repr(value), 40)}, not a number")
    return float(value)
