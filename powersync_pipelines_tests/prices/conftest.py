"""Helpers for the price-provider tests: sites per provider kind, our fixtures, and a loopback HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from powersync_pipelines.config import SiteConfig
from powersync_pipelines.prices.http import RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures"
BATTERY = {"kind": "simulated", "capacity_kwh": 13.5, "max_charge_kw": 5, "max_discharge_kw": 5}
TIMEZONES = {"NSW1": "Australia/Sydney", "QLD1": "Australia/Brisbane", "VIC1": "Australia/Melbourne",
             "SA1": "Australia/Adelaide", "TAS1": "Australia/Hobart"}


def make_site(kind: str, name: str = "home", timezone: str | None = None, **provider: Any) -> SiteConfig:
    """A valid site whose provider section is ``kind`` + ``provider`` (the battery is irrelevant here)."""
    region = provider.get("region")
    tz = timezone or ("Europe/London" if kind == "octopus" else TIMEZONES.get(region or "", "Australia/Adelaide"))
    return SiteConfig.model_validate({
        "id": name, "timezone": tz, "country": "UK" if kind == "octopus" else "AU",
        "provider": {"kind": kind, **provider}, "battery": BATTERY,
    })


class NoSleep:
    """Records the backoff delays instead of waiting for them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def no_sleep() -> NoSleep:
    return NoSleep()


@pytest.fixture
def fast_policy(no_sleep: NoSleep) -> RetryPolicy:
    return RetryPolicy(attempts=3, backoff_s=1.0, sleep=no_sleep)


Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[str, dict[str, list[str]]], Reply]


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 (free port) answering from a path -> reply table.

    A route is a ``Reply`` or a callable ``(path, query) -> Reply``; a list of them is served in turn (the last
    repeats), which is how tests script "429, then 200". Every request is recorded in ``hits``.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Route | list[Reply | Route]] = {}
        self.hits: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                outer.hits.append((parts.path, query, dict(self.headers)))
                status, headers, body = outer.reply(parts.path, query)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reply(self, path: str, query: dict[str, list[str]]) -> Reply:
        route = self.routes.get(path) or self.routes.get(path.lower())
        if route is None:
            for key, value in self.routes.items():
                if key.lower() == path.lower():
                    route = value
        if route is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        step = (route.pop(0) if len(route) > 1 else route[0]) if isinstance(route, list) else route
        return step(path, query) if callable(step) else step

    def paths_hit(self) -> list[str]:
        return [h[0] for h in self.hits]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv
