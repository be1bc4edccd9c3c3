"""A loopback stand-in for the Sigenergy cloud endpoints the tariff upload uses.

It decrypts the login password (AES-128-CBC, fixed app key) and compares it, issues expiring access tokens and
refresh tokens, answers 401 to expired/revoked tokens, and stores saved tariffs after checking their shape.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from .localhttp import serve_in_thread, stop_server

_KEY = b"sigensigensigenp"


def _decrypt(b64: str) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    dec = Cipher(algorithms.AES(_KEY), modes.CBC(_KEY)).decryptor()
    data = dec.update(base64.b64decode(b64)) + dec.finalize()
    unpad = padding.PKCS7(128).unpadder()
    return (unpad.update(data) + unpad.finalize()).decode()


class SigenergyCloudSimulator:
    def __init__(self, username: str = "owner@example.com", password: str = "pw", *, station_id: int = 202411,
                 token_ttl_s: int = 3600, port: int = 0) -> None:
        self.username, self.password, self.station_id = username, password, station_id
        self.token_ttl_s = token_ttl_s
        self._port = port
        self.tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.saved: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SigenergyCloudSimulator:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                sim._handle(self, "GET")

            def do_POST(self) -> None:
                sim._handle(self, "POST")

        self._server = serve_in_thread(Handler, "127.0.0.1", self._port, "sigenergy-cloud-sim")
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    def revoke_access_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        self.tokens[access] = time.time() + self.token_ttl_s
        self.refresh_tokens.add(refresh)
        return {"code": 0, "msg": "success", "data": {"access_token": access, "refresh_token": refresh,
                                                      "token_type": "bearer", "expires_in": self.token_ttl_s}}

    def _reply(self, h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self.lock:
            self.requests.append((method, h.path))
            status, body = self._route(h, method, raw)
        self._reply(h, status, body)

    def _route(self, h: BaseHTTPRequestHandler, method: str, raw: bytes) -> tuple[int, Any]:
        if h.path == "/auth/oauth/token" and method == "POST":
            if h.headers.get("Authorization") != "Basic " + base64.b64encode(b"sigen:sigen").decode():
                return 401, {"error": "invalid_client"}
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if form.get("grant_type") == "password":
                try:
                    ok = form.get("username") == self.username and _decrypt(form.get("password", "")) == self.password
                except ValueError:
                    ok = False
                return (200, self._issue()) if ok else (400, {"code": 1, "msg": "bad credentials"})
            if form.get("grant_type") == "refresh_token":
                rt = form.get("refresh_token")
                if rt in self.refresh_tokens:
                    self.refresh_tokens.discard(rt)  # single use
                    return 200, self._issue()
                return 400, {"error": "invalid_grant", "msg": "refresh token invalid"}
            return 400, {"error": "unsupported_grant_type"}
        auth = h.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if self.tokens.get(token, 0) < time.time():
            return 401, {"code": 401, "msg": "token expired"}
        if h.path == "/device/station/list" and method == "GET":
            return 200, {"code": 0, "msg": "success", "data": [{"stationId": self.station_id, "stationName": "Sim"}]}
        if h.path == "/device/stationelecsetprice/save" and method == "POST":
            try:
                body = json.loads(raw)
                sp = body["buyPrice"]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"]
                body["sellPrice"]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"]
            except (ValueError, KeyError, IndexError, TypeError):
                return 200, {"code": 1, "msg": "invalid tariff body"}
            if body.get("stationId") != self.station_id:
                return 200, {"code": 1, "msg": f"unknown station {body.get('stationId')}"}
            if not sp or not sp[-1]["timeRange"].endswith("24:00"):
                return 200, {"code": 1, "msg": "prices must cover the day up to 24:00"}
            self.saved.append(body)
            return 200, {"code": 0, "msg": "success", "data": True}
        return 404, {"code": 404, "msg": f"not found {h.path}"}
