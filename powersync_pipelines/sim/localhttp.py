"""Loopback HTTP servers in a background thread: the Tesla and Sigenergy-cloud simulators, the NEMWEB feed
and the inverter test peers all serve this way, so starting and stopping live in one place."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_in_thread(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0,
                    name: str = "local-http", tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """Bind (port 0 = any free port; read ``server.server_address[1]``) and serve until ``stop_server``."""
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer | None) -> None:
    """Stop serving (``shutdown`` waits for the serving loop to end) and close the socket; None is a no-op."""
    if server is not None:
        server.shutdown()
        server.server_close()
