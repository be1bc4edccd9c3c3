"""A loopback stand-in for Tesla's OAuth token endpoint (``POST /oauth2/v3/token``), in the real reply shape.

``grant_type=refresh_token`` with the app's ``client_id`` and the current refresh token answers
``{"access_token", "refresh_token", "id_token", "expires_in": 28800, "state", "token_type": "Bearer"}``; the
refresh token just used is spent (single use) and a spent or unknown one gets 401 ``login_required``. Each
new access token (a JWT with ``exp``) becomes the only one the paired ``TeslaSimulator`` accepts, so the
previous one answers 401 there, as an expired token does. ``expire_access()`` ends the current one early
(expiry mid-session).
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

from powersync_pipelines.sim.localhttp import serve_in_thread, stop_server

TOKEN_PATH = "/oauth2/v3/token"


def jwt(exp: float) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'exp': int(exp), 'jti': secrets.token_hex(8)})}.sig"


class TeslaAuthPeer:
    def __init__(self, client_id: str, refresh_token: str, fleet: Any = None, expires_in: int = 28800) -> None:
        self.client_id, self.fleet, self.expires_in = client_id, fleet, expires_in
        self.valid_refresh = {refresh_token}
        self.requests: list[dict[str, str]] = []
        self.issued: list[str] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def token_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{TOKEN_PATH}"

    @property
    def refreshes(self) -> int:
        return len(self.issued)

    def start(self) -> TeslaAuthPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                status, body = peer._token(self.path, self.headers.get("Content-Type", ""), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = serve_in_thread(Handler, name="tesla-auth-peer")
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    def expire_access(self) -> None:
        """The current access token stops working (the Fleet API answers 401 to it)."""
        if self.fleet is not None:
            self.fleet.token = "expired-" + secrets.token_hex(4)

    def _token(self, path: str, content_type: str, raw: str) -> tuple[int, dict[str, Any]]:
        if path != TOKEN_PATH:
            return 404, {"error": "not_found"}
        if "application/x-www-form-urlencoded" not in content_type:
            return 400, {"error": "invalid_request", "error_description": "form body expected"}
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        with self.lock:
            self.requests.append(form)
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            if form.get("client_id") != self.client_id:
                return 401, {"error": "invalid_client"}
            if form.get("refresh_token") not in self.valid_refresh:
                return 401, {"error": "login_required", "error_description": "The refresh_token is invalid"}
            self.valid_refresh.discard(form["refresh_token"])  # single use
            access, rotated = jwt(time.time() + self.expires_in), "NA_" + secrets.token_hex(24)
            self.valid_refresh.add(rotated)
            self.issued.append(access)
            if self.fleet is not None:
                self.fleet.token = access
            return 200, {"access_token": access, "refresh_token": rotated, "id_token": jwt(time.time() + 3600),
                         "expires_in": self.expires_in, "state": secrets.token_hex(8), "token_type": "Bearer"}
