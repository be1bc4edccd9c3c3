"""Loopback peers that misbehave at the TCP level, for fault tests of every driver (Modbus and HTTP alike).

``FaultyTcp()`` alone is a dead peer: it accepts each connection, counts it and answers with a TCP reset, so
connects can be counted at the server. ``FaultyTcp(upstream=port)`` is a proxy to a real peer (a simulator)
that resets the client's connection when a request matches ``reset_when`` (the request never reaches the
peer); with ``dies=True`` it then resets every later connection too, as a battery or gateway dying
mid-command would, until ``revive()``. ``EchoServer`` answers 400 with everything the client
sent (headers, path, query, body), the way some servers and proxies echo a bad request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from powersync_pipelines.sim.localhttp import serve_in_thread, stop_server


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST (``ConnectionResetError``), not an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultyTcp:
    def __init__(self, upstream: int | None = None, reset_when: Callable[[bytes], bool] | None = None,
                 dies: bool = False) -> None:
        self.upstream = upstream
        self.reset_when = reset_when
        self.dies = dies
        self.dead = upstream is None
        self.connects = 0
        self.resets = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, name="faulty-tcp", daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultyTcp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def revive(self) -> None:
        """The peer answers again (and resets nothing more)."""
        with self._lock:
            self.dead, self.reset_when = self.upstream is None, None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks, self._open = list(self._open), []
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
        self._thread.join(5)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connects += 1
                dead = self.dead
                if dead:
                    self.resets += 1
            if dead:
                _reset(client)
                continue
            assert self.upstream is not None
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            reset_when = self.reset_when
            if from_client and (self.dead or (reset_when is not None and reset_when(data))):
                with self._lock:
                    self.resets += 1
                    self.dead = self.dead or self.dies
                _reset(src)
                with contextlib.suppress(OSError):
                    dst.close()
                return
            try:
                dst.sendall(data)
            except OSError:
                return


def modbus_write_to(*addresses: int) -> Callable[[bytes], bool]:
    """Matches a Modbus TCP FC6/FC16 request to one of ``addresses`` (MBAP header, then FC and address)."""
    wanted = set(addresses)

    def match(frame: bytes) -> bool:
        return len(frame) >= 10 and frame[7] in (6, 16) and int.from_bytes(frame[8:10], "big") in wanted

    return match


def http_request_to(method: str, path_part: str) -> Callable[[bytes], bool]:
    """Matches an HTTP request whose request line has ``method`` and contains ``path_part``."""
    def match(data: bytes) -> bool:
        line = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        return line.startswith(method + " ") and path_part in line

    return match


class EchoServer:
    """Answers every request with ``status`` and a body echoing the request. ``style``: ``json-error`` (the
    echo inside ``error``), ``json`` (a JSON object without ``error``), ``text`` (a plain header dump) and
    ``text-cut`` (the same, padded so that a 200-character cut lands inside the credential). ``ok`` maps a
    path part to a JSON body served with 200 (so a driver gets far enough to write)."""

    def __init__(self, status: int = 400, style: str = "json-error", ok: dict[str, Any] | None = None) -> None:
        self.status, self.style, self.ok = status, style, ok or {}
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                owner.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                       "body": body})
                status, payload, ctype = owner._reply(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _any

        self._server = serve_in_thread(Handler, name="echo")
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _reply(self, method: str, path: str, headers: dict[str, str], body: str) -> tuple[int, bytes, str]:
        for part, payload in self.ok.items():
            if part in path and method == "GET":
                return 200, json.dumps(payload).encode(), "application/json"
        # credentials first, as an "invalid credentials: ..." reply puts them, so a 200-character cut keeps them
        headers = dict(sorted(headers.items(), key=lambda kv: kv[0].lower() != "authorization"))
        dump = "".join(f"{k}: {v}\n" for k, v in headers.items())
        echo = f"{method} {path}\n{dump}\n{body}"
        if self.style == "json-error":
            return self.status, json.dumps({"error": f"bad request: {echo}"}).encode(), "application/json"
        if self.style == "json":
            return self.status, json.dumps({"request": {"method": method, "path": path, "headers": headers,
                                                        "body": body}}).encode(), "application/json"
        pad = 0
        if self.style == "text-cut" and "Authorization" in echo:
            pad = max(0, 192 - echo.index("Authorization") - len("Authorization: Bearer "))
        return self.status, ("x" * pad + echo).encode(), "text/plain"

    def stop(self) -> None:
        stop_server(self._server)

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fragments(secret: str, n: int = 8) -> set[str]:
    """Every ``n``-character piece of ``secret``: none may appear in an error, a record or a log."""
    return {secret[i:i + n] for i in range(len(secret) - n + 1)}


def leaked(secret: str, *texts: object, n: int = 8) -> list[str]:
    """The pieces of ``secret`` found in ``texts`` (empty when nothing leaked)."""
    joined = "\n".join(str(t) for t in texts)
    return sorted(f for f in fragments(secret, n) if f in joined)
