"""A local HTTP server that behaves like the Fleet API / Teslemetry energy endpoints for one Powerwall.

Bearer auth (401 ``invalid bearer token``), a sliding-window rate limit (429 with Retry-After), ``{"response":
...}`` envelopes, command replies ``{"code": 201, "message": "Updated"}``, 404 for unknown sites/paths and 422
for bad bodies. Faults on demand: any status (408 gateway offline, 5xx, 429) for the next N matching requests.
The Powerwall follows its settings: self_consumption (reserve honoured; a reserve above SOC charges from the
grid if grid charging is allowed), autonomous (a period priced free to buy charges, a very high sell price
exports, else self-consumption), backup (charge to full); export rule ``never`` caps export at 0 and
``pv_only`` keeps the battery from exporting.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd

from ..devices.physics import BatteryModel
from ..devices.tesla_tariff import price_at
from .localhttp import serve_in_thread, stop_server

SITE_ID = "1689641298214901"
HIGH_SELL = 1.0  # $/kWh: above this the Powerwall exports in autonomous mode


@dataclass
class HttpFault:
    status: int
    count: int = 1
    path_contains: str = ""
    method: str | None = None
    retry_after: float = 1.0


class TeslaSimulator:
    name = "tesla"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, capacity_kwh: float = 13.5, soc: float = 0.5,
                 max_charge_kw: float = 5.0, max_discharge_kw: float = 5.0, *, token: str = "sim-token",
                 rate_limit_per_minute: int | None = None, rate_period_s: float = 60.0, reserve_pct: int = 20,
                 load_kw: float | Callable[[float], float] = 0.8, solar_kw: float | Callable[[float], float] = 0.0,
                 efficiency: float = 0.95, time_scale: float = 1.0, timezone: str = "Australia/Melbourne",
                 soh: float = 0.93) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"tesla simulator: host {host!r} is not loopback")
        self.host, self._requested_port = host, port
        self.token = token
        self.rate_limit, self.rate_period_s = rate_limit_per_minute, rate_period_s
        self.model = BatteryModel(capacity_kwh=capacity_kwh, soc=soc, soh=soh, max_charge_kw=max_charge_kw,
                                  max_discharge_kw=max_discharge_kw, charge_efficiency=efficiency,
                                  discharge_efficiency=efficiency, min_soc=0.0, reserve=reserve_pct / 100,
                                  load_kw=load_kw, solar_kw=solar_kw)
        self.time_scale = time_scale
        self.timezone = timezone
        self.settings: dict[str, Any] = {
            "default_real_mode": "self_consumption", "backup_reserve_percent": reserve_pct,
            "customer_preferred_export_rule": "battery_ok", "disallow_charge_from_grid_with_solar_installed": False,
            "tariff_content_v2": {"code": "USER_TARIFF", "name": "User's retail plan", "version": 1,
                                  "seasons": {}, "energy_charges": {}},
        }
        self.requests: list[tuple[str, str, Any]] = []
        self.faults: list[HttpFault] = []
        self.stale_s = 0.0
        self.lock = threading.RLock()
        self._stamps: deque[float] = deque()
        self._start_wall = pd.Timestamp.now(tz="UTC")
        self._last = time.monotonic()
        self._energy: dict[pd.Timestamp, dict[str, float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> TeslaSimulator:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                sim._handle(self, "GET")

            def do_POST(self) -> None:
                sim._handle(self, "POST")

        self._server = serve_in_thread(Handler, self.host, self._requested_port, "tesla-sim")
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    def serve_forever(self) -> None:
        if self._server is None:
            self.start()
        try:
            while self._server is not None:
                time.sleep(0.5)
                self._tick()
        finally:
            self.stop()

    def __enter__(self) -> TeslaSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- physics ----------------------------------------------------------------------------------------
    def now(self) -> pd.Timestamp:
        return self._start_wall + pd.Timedelta(seconds=self.model.sim_seconds)

    def _configure(self) -> None:
        s, m = self.settings, self.model
        mode = s["default_real_mode"]
        reserve = s["backup_reserve_percent"] / 100.0
        grid_charge = not s["disallow_charge_from_grid_with_solar_installed"]
        m.reserve = reserve
        m.export_limit_kw = 0.0 if s["customer_preferred_export_rule"] == "never" else None
        m.mode, m.command_kw = "self_consumption", 0.0
        below_reserve = mode == "self_consumption" and m.soc < reserve - 1e-6  # the reserve refills from the grid
        if grid_charge and (mode == "backup" or below_reserve):
            m.mode, m.command_kw = "charge", m.max_charge_kw
        elif mode == "autonomous":
            buy, sell = price_at(s["tariff_content_v2"] or {}, self.now().tz_convert(self.timezone))
            if sell is not None and sell >= HIGH_SELL and s["customer_preferred_export_rule"] == "battery_ok":
                m.mode, m.command_kw = "discharge", m.max_discharge_kw
            elif buy is not None and buy <= 0.0 and grid_charge:
                m.mode, m.command_kw = "charge", m.max_charge_kw
        if m.mode == "charge" and m.soc >= min(1.0, max(reserve, 0.0) if mode == "self_consumption" else 1.0):
            m.mode, m.command_kw = "self_consumption", 0.0

    def _step(self, seconds: float) -> None:
        remaining = seconds
        while remaining > 1e-9:  # 60-s steps so tariff periods and reserve targets are followed
            dt = min(60.0, remaining)
            self._configure()
            bucket = self.now().floor("5min")
            f = self.model.step(dt)
            e = self._energy.setdefault(bucket, {"battery_energy_exported": 0.0, "battery_energy_imported": 0.0,
                                                 "grid_energy_imported": 0.0, "grid_energy_exported": 0.0,
                                                 "solar_energy_exported": 0.0, "consumer_energy": 0.0})
            h = dt / 3600 * 1000  # Wh per kW
            e["battery_energy_exported"] += max(f.battery_kw, 0) * h
            e["battery_energy_imported"] += max(-f.battery_kw, 0) * h
            e["grid_energy_imported"] += max(f.grid_kw, 0) * h
            e["grid_energy_exported"] += max(-f.grid_kw, 0) * h
            e["solar_energy_exported"] += f.solar_kw * h
            e["consumer_energy"] += f.load_kw * h
            remaining -= dt
        self._configure()
        self.model.flows = self.model.compute(0.0)

    def _tick(self) -> None:
        with self.lock:
            now = time.monotonic()
            self._step((now - self._last) * self.time_scale)
            self._last = now

    def advance(self, seconds: float = 0.0, minutes: float = 0.0) -> None:
        with self.lock:
            self._step(seconds + 60 * minutes)

    def inject(self, status: int, *, count: int = 1, path_contains: str = "", method: str | None = None,
               retry_after: float = 1.0) -> HttpFault:
        fault = HttpFault(status, count, path_contains, method, retry_after)
        with self.lock:
            self.faults.append(fault)
        return fault

    def set(self, *, soc: float | None = None, load_kw: float | None = None, solar_kw: float | None = None,
            **settings: Any) -> None:
        with self.lock:
            self.model.update(soc, load_kw, solar_kw)
            self.settings.update(settings)
            self._step(0)

    @property
    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"soc": self.model.soc, "mode": self.model.mode, **self.settings,
                    "tariff_code": (self.settings["tariff_content_v2"] or {}).get("code")}

    def posts(self) -> list[tuple[str, Any]]:
        with self.lock:
            return [(p.rsplit("/", 1)[-1], b) for m, p, b in self.requests if m == "POST"]

    # -- HTTP -------------------------------------------------------------------------------------------
    def _reply(self, h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._reply(h, 400, {"error": "invalid json"})
        with self.lock:
            self.requests.append((method, url.path, body))
            if h.headers.get("Authorization") != f"Bearer {self.token}":
                return self._reply(h, 401, {"error": "invalid bearer token"})
            if self.rate_limit:
                t = time.monotonic()
                while self._stamps and t - self._stamps[0] >= self.rate_period_s:
                    self._stamps.popleft()
                if len(self._stamps) >= self.rate_limit:
                    wait = self._stamps[0] + self.rate_period_s - t
                    return self._reply(h, 429, {"error": "rate limit exceeded"},
                                       {"Retry-After": str(max(1, int(wait + 0.999)))})
                self._stamps.append(t)
            for f in self.faults:
                if f.count != 0 and f.path_contains in url.path and (f.method in (None, method)):
                    if f.count > 0:
                        f.count -= 1
                    headers = {"Retry-After": str(f.retry_after)} if f.status == 429 else None
                    msg = {408: "vehicle unavailable: gateway offline", 429: "rate limit exceeded"}
                    return self._reply(h, f.status, {"error": msg.get(f.status, f"server error {f.status}")}, headers)
            self._tick()
            status, payload = self._route(method, url.path, parse_qs(url.query), body)
        self._reply(h, status, payload)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts == ["api", "1", "products"] and method == "GET":
            return 200, {"response": [{"energy_site_id": int(SITE_ID), "resource_type": "battery",
                                       "site_name": "Sim Home", "gateway_id": "SIM-GW"}], "count": 1}
        if len(parts) != 5 or parts[:3] != ["api", "1", "energy_sites"]:
            return 404, {"error": f"not found: {path}"}
        if parts[3] != SITE_ID:
            return 404, {"error": f"energy site {parts[3]} not found"}
        endpoint = parts[4]
        s = self.settings
        if method == "GET" and endpoint == "site_info":
            return 200, {"response": {
                "id": "SIM-GW", "site_name": "Sim Home", "backup_reserve_percent": s["backup_reserve_percent"],
                "default_real_mode": s["default_real_mode"], "installation_time_zone": self.timezone,
                "nameplate_energy": int(self.model.capacity_kwh * 1000),
                "nameplate_power": int(self.model.max_discharge_kw * 1000),
                "components": {"battery": True, "solar": True, "grid": True,
                               "customer_preferred_export_rule": s["customer_preferred_export_rule"],
                               "disallow_charge_from_grid_with_solar_installed":
                                   s["disallow_charge_from_grid_with_solar_installed"]},
                "tariff_content_v2": s["tariff_content_v2"]}}
        if method == "GET" and endpoint == "live_status":
            f, m = self.model.flows, self.model
            ts = (self.now() - pd.Timedelta(seconds=self.stale_s)).tz_convert(self.timezone)
            return 200, {"response": {
                "solar_power": round(f.solar_kw * 1000), "battery_power": round(f.battery_kw * 1000),
                "load_power": round(f.load_kw * 1000), "grid_power": round(f.grid_kw * 1000),
                "percentage_charged": round(m.soc * 100, 3), "energy_left": round(m.soc * m.capacity_kwh * 1000),
                "total_pack_energy": round(m.capacity_kwh * m.soh * 1000), "grid_status": "Active",
                "island_status": "on_grid", "storm_mode_active": False, "backup_capable": True,
                "grid_services_active": False, "timestamp": ts.isoformat()}}
        if method == "GET" and endpoint == "calendar_history":
            kind = (query.get("kind") or ["energy"])[0]
            if kind not in ("energy", "backup"):
                return 400, {"error": f"invalid kind {kind}"}
            series = [{"timestamp": ts.tz_convert(self.timezone).isoformat(), **{k: round(v, 3) for k, v in e.items()}}
                      for ts, e in sorted(self._energy.items())]
            return 200, {"response": {"serial_number": "SIM-GW", "period": (query.get("period") or ["day"])[0],
                                      "time_series": series if kind == "energy" else []}}
        if method == "POST":
            return self._command(endpoint, body if isinstance(body, dict) else {})
        return 404, {"error": f"not found: {path}"}

    def _command(self, endpoint: str, body: dict[str, Any]) -> tuple[int, Any]:
        s = self.settings
        ok = {"response": {"code": 201, "message": "Updated"}}
        if endpoint == "backup":
            v = body.get("backup_reserve_percent")
            if not isinstance(v, int | float) or not 0 <= v <= 100:
                return 422, {"error": "backup_reserve_percent must be 0-100"}
            s["backup_reserve_percent"] = int(v)
        elif endpoint == "operation":
            v = body.get("default_real_mode")
            if v not in ("self_consumption", "autonomous", "backup"):
                return 422, {"error": f"invalid default_real_mode {v!r}"}
            s["default_real_mode"] = v
        elif endpoint == "grid_import_export":
            rule = body.get("customer_preferred_export_rule")
            dis = body.get("disallow_charge_from_grid_with_solar_installed")
            if rule is None and dis is None:
                return 422, {"error": "nothing to set"}
            if rule is not None and rule not in ("never", "pv_only", "battery_ok"):
                return 422, {"error": f"invalid export rule {rule!r}"}
            if rule is not None:
                s["customer_preferred_export_rule"] = rule
            if dis is not None:
                s["disallow_charge_from_grid_with_solar_installed"] = bool(dis)
        elif endpoint == "time_of_use_settings":
            tariff = (body.get("tou_settings") or {}).get("tariff_content_v2")
            if not isinstance(tariff, dict) or "seasons" not in tariff or "energy_charges" not in tariff:
                return 422, {"error": "tou_settings.tariff_content_v2 needs seasons and energy_charges"}
            s["tariff_content_v2"] = tariff
        else:
            return 404, {"error": f"unknown command {endpoint}"}
        self._step(0)
        return 200, ok
