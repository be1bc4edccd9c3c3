"""Notifiers against a real local HTTP server: what goes on the wire, what is recorded, what never leaks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import TypeAdapter

from powersync_pipelines.config.automations import Channel, NotificationSettings
from powersync_pipelines.control.notify import Notification, NotificationCenter, build_notifier

TOKEN = "tok-very-secret-123"


class Capture:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        cap = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                cap.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                out = b'[]' if cap.status < 400 else b'{"message": "boom"}'
                self.send_response(cap.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        return H


@pytest.fixture
def capture() -> Iterator[Capture]:
    cap = Capture()
    yield cap
    cap.server.shutdown()
    cap.server.server_close()


NOTE = Notification(event="spike_start", title="AEMO price spike: battery responding",
                    message="sa-home: SA1 RRP 5,000.00 $/MWh at 17:35 >= 3000 $/MWh", site_id="sa-home",
                    data={"rrp": 5000.0})


def channel(**kw) -> Channel:
    return TypeAdapter(Channel).validate_python(kw)


def test_webhook_posts_json_with_bearer_token(capture, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    d = build_notifier(channel(kind="webhook", name="hook", url=f"{capture.url}/hooks/psync",
                               token_env="HOOK_TOKEN")).send(NOTE)
    assert d.ok and d.status_code == 200
    (req,) = capture.requests
    assert req["path"] == "/hooks/psync" and req["headers"]["Authorization"] == f"Bearer {TOKEN}"
    body = json.loads(req["body"])
    assert body == {"event": "spike_start", "title": NOTE.title, "message": NOTE.message, "site_id": "sa-home",
                    "data": {"rrp": 5000.0}}


def test_ntfy_posts_the_message_as_body_with_title_priority_and_tags(capture):
    d = build_notifier(channel(kind="ntfy", name="phone", url=capture.url, topic="powersync-alerts",
                               priority=5)).send(NOTE)
    assert d.ok
    (req,) = capture.requests
    assert req["path"] == "/powersync-alerts" and req["body"].decode() == NOTE.message
    assert req["headers"]["Title"] == NOTE.title and req["headers"]["Priority"] == "5"
    assert req["headers"]["Tags"] == "spike_start" and "Authorization" not in req["headers"]


def test_home_assistant_calls_the_notify_service_over_rest(capture, monkeypatch):
    monkeypatch.setenv("HA_TOKEN", TOKEN)
    d = build_notifier(channel(kind="home_assistant", name="ha", url=capture.url, service="mobile_app_pixel_8",
                               token_env="HA_TOKEN")).send(NOTE)
    assert d.ok
    (req,) = capture.requests
    assert req["path"] == "/api/services/notify/mobile_app_pixel_8"
    assert req["headers"]["Authorization"] == f"Bearer {TOKEN}"
    body = json.loads(req["body"])
    assert body["message"] == NOTE.message and body["title"] == NOTE.title
    assert body["data"]["event"] == "spike_start" and body["data"]["site_id"] == "sa-home"


def test_failures_are_recorded_with_their_reason_and_never_raise(capture, store, monkeypatch):
    monkeypatch.setenv("HA_TOKEN", TOKEN)
    capture.status = 500
    settings = NotificationSettings(channels=[
        channel(kind="home_assistant", name="ha", url=capture.url, service="phone", token_env="HA_TOKEN"),
        channel(kind="webhook", name="hook", url=capture.url, token_env="MISSING_TOKEN_ENV"),
        channel(kind="webhook", name="dead", url="http://127.0.0.1:9/unreachable", timeout_s=1),
        channel(kind="log", name="log"),
    ])
    monkeypatch.delenv("MISSING_TOKEN_ENV", raising=False)
    out = NotificationCenter(settings, store).send(NOTE)
    by = {d.channel: d for d in out}
    assert by["ha"].status_code == 500 and not by["ha"].ok
    assert "MISSING_TOKEN_ENV is not set" in by["hook"].error
    assert not by["dead"].ok and by["log"].ok
    rows = store.query("SELECT channel, outcome, error FROM notifications ORDER BY channel")
    assert rows["outcome"].tolist() == ["failed", "failed", "failed", "sent"]
    dump = store.query("SELECT * FROM notifications").to_json()
    assert TOKEN not in dump  # the token never reaches the database


def test_channels_only_get_the_events_they_subscribe_to(capture, store):
    settings = NotificationSettings(channels=[
        channel(kind="ntfy", name="ends-only", url=capture.url, topic="t", events=["spike_end"]),
        channel(kind="log", name="log")])
    center = NotificationCenter(settings, store)
    center.send(NOTE)
    assert capture.requests == []
    center.send(Notification(event="spike_end", title="over", message="restored", site_id="x"))
    assert len(capture.requests) == 1
    center.send(Notification(event="automation", title="hi", message="explicit"), channels=["ends-only"])
    assert len(capture.requests) == 2  # a notify action naming the channel reaches it whatever the event
