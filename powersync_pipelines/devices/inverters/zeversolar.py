"""Zeversolar (Zeverlution / TLC) over plain local HTTP: zero export by the power limit, else switch off.

Sources: the ``zeversolar`` library used by Home Assistant core (kvanzuijlen/zeversolar,
``src/zeversolar/__init__.py``) and a public fork of it, summarised in reference/devices.md §4.6. No auth.

* ``GET /home.cgi``: whitespace-separated text: wifi flag, registry id, registry key, HW version, SW version,
  time, date, comms status, inverter count, then per inverter: serial, Pac (W), energy today (kWh, the
  leading zero may be missing, e.g. ``.35``), status, meter status.
* ``GET /adv.cgi``: one value per line; line 11 = power limit %, line 14 = limit mode.
* ``POST /pwrlim.cgi`` (form): ``enlim=on, ac_mode=1 (1 = %, 2 = W via meter, 3 = DRM), ac_value1=<0-100>,
  ac_sys=<W>, ac_value2=0, ac_value3=0, em_ml=0, drm_sp=16.67``.
* ``POST /inv_ctrl.cgi`` (form): ``sn=<serial>&mode=1`` switches the inverter off, ``mode=0`` on.

Zero export: limit 0 %. The fork notes a minimum accepted limit of 5 % on some hardware: when the read-back
shows the limit clamped above 0, the inverter is switched off instead and must read Pac = 0 W.
Restore: switch on (harmless if already on; the on/off state cannot be read back) and write the saved limit.
Quirks: M11 hardware uses ``pwrlim.cgi`` (M10 uses ``adv.cgi`` for writes; not supported here); the inverter
may close the connection after a POST without answering, which counts as sent, and the read-back decides.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from ...config import AcInverterConfig
from ...redaction import redact
from ..base import DeviceRejected, DeviceUnavailable
from .base import AcInverter


def parse_home(text: str) -> dict[str, Any]:
    """The fields of ``/home.cgi`` this driver needs (first inverter)."""
    f = text.split()
    if len(f) < 14:
        raise DeviceRejected(f"zeversolar /home.cgi: expected at least 14 fields, got {len(f)}: {text[:80]!r}")
    energy = f[11]
    return {
        "registry_id": f[1], "sw_version": f[4], "inverters": int(_num(f[8], "home.cgi inverter count")),
        "serial": f[9], "pac_w": _num(f[10], "home.cgi Pac"),
        "energy_today_kwh": _num("0" + energy if energy.startswith(".") else energy, "home.cgi energy today"),
        "status": f[12],
    }


def parse_adv(text: str) -> dict[str, Any]:
    lines = [ln.strip() for ln in text.splitlines()]
    if len(lines) < 14:
        raise DeviceRejected(f"zeversolar /adv.cgi: expected at least 14 lines, got {len(lines)}")
    return {"limit_pct": int(_num(lines[10], "adv.cgi line 11 (limit %)")),
            "ac_mode": int(_num(lines[13], "adv.cgi line 14 (limit mode)"))}


def _num(field: str, what: str) -> float:
    """A finite number from the inverter's text pages, or a clear error naming the field."""
    try:
        value = float(field)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise DeviceRejected(f"zeversolar /{what} is {field[:40]!r}, not a number")
    return value


class Zeversolar(AcInverter):
    brand = "zeversolar"
    default_port = 80

    def __init__(self, cfg: AcInverterConfig, *, timeout_s: float = 5.0) -> None:
        super().__init__(cfg)
        self.base_url = f"http://{self.host}:{self.port}"
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self._off_requested = False

    def _get(self, path: str) -> str:
        try:
            resp = self._client.get(path)
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(f"{self.device_key}: GET {path}: {type(exc).__name__}: {redact(exc)}") from None
        if resp.status_code >= 400:
            raise DeviceRejected(f"{self.device_key}: GET {path} answered HTTP {resp.status_code}", resp.status_code)
        return resp.text

    def _post(self, path: str, form: dict[str, str], what: str) -> None:
        try:
            resp = self._client.post(path, data=form)
            if resp.status_code >= 400:
                raise DeviceRejected(f"{self.device_key}: POST {path} answered HTTP {resp.status_code}",
                                     resp.status_code)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            pass  # known quirk: the inverter hangs up after applying a POST; the read-back decides
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(f"{self.device_key}: POST {path}: {type(exc).__name__}: {redact(exc)}") from None
        self._wrote(f"POST {path} ({what})", form)

    def read_state(self) -> dict[str, Any]:
        home = parse_home(self._get("/home.cgi"))
        adv = parse_adv(self._get("/adv.cgi"))
        off = self._off_requested and home["pac_w"] == 0.0
        return {**adv, "curtailed": adv["limit_pct"] == 0 or off,
                "readings": {"pac_w": home["pac_w"], "status": home["status"], "serial": home["serial"]}}

    def _limit(self, pct: int, mode: int = 1) -> None:
        rated_w = int((self.cfg.rated_kw or 5.0) * 1000)
        form = {"enlim": "on", "ac_mode": str(int(mode)), "ac_value1": str(int(pct)), "ac_sys": str(rated_w), "ac_value2": "0",
                "ac_value3": "0", "em_ml": "0", "drm_sp": "16.67"}
        self._post("/pwrlim.cgi", form, f"power limit {pct} %")

    def _switch(self, on: bool, serial: str) -> None:
        self._post("/inv_ctrl.cgi", {"sn": serial, "mode": "0" if on else "1"}, "inverter on" if on else "inverter off")

    def _write_zero_export(self, state: dict[str, Any]) -> None:
        self._limit(0)
        adv = parse_adv(self._get("/adv.cgi"))
        if adv["limit_pct"] != 0:  # clamped to the hardware minimum: switch off instead
            self._off_requested = True
            self._switch(False, state["readings"]["serial"])

    def _write_state(self, state: dict[str, Any]) -> None:
        serial = parse_home(self._get("/home.cgi"))["serial"]
        self._switch(True, serial)
        self._off_requested = False
        self._limit(int(state["limit_pct"]), int(state.get("ac_mode", 1)))

    def default_state(self) -> dict[str, Any]:
        return {"limit_pct": 100, "ac_mode": 1}

    def close(self) -> None:
        self._client.close()
