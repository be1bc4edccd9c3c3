"""Pluggable notifications: log, webhook (JSON POST), ntfy-style HTTP, Home Assistant's notify service.

A notification never breaks the thing it reports on: every failure is caught, recorded in ``notifications``
with its reason, and the caller carries on (the battery command has already been verified by then). Tokens come
from the environment variable a channel names and never reach a log line, an error text or the database.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pandas as pd

from ..config.automations import (
    Channel,
    HomeAssistantChannel,
    LogChannel,
    NotificationSettings,
    NtfyChannel,
    WebhookChannel,
)
from ..storage import HistoryStore
from .live_store import record_notification

log = logging.getLogger("powersync.notify")
USER_AGENT = "powersync-pipelines/0.1 (notifications)"


@dataclass(frozen=True)
class Notification:
    event: str  # spike_start | spike_end | spike_deferred | restore_failed | command_failed | automation | ...
    title: str
    message: str
    site_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    channel: str
    channel_kind: str
    ok: bool
    status_code: int | None = None
    error: str | None = None


class Notifier(Protocol):
    name: str
    kind: str

    def send(self, note: Notification) -> Delivery: ...


class NotifierError(RuntimeError):
    pass


def _token(env: str | None, channel: str) -> str | None:
    if not env:
        return None
    value = os.environ.get(env, "").strip()
    if not value:
        raise NotifierError(f"channel {channel!r}: environment variable {env} is not set")
    return value


def _post(name: str, kind: str, url: str, timeout_s: float, **kwargs: Any) -> Delivery:
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
                          headers={"User-Agent": USER_AGENT}) as client:
            resp = client.post(url, **kwargs)
    except httpx.HTTPError as exc:
        return Delivery(name, kind, False, error=f"{type(exc).__name__} posting to {_host(url)}: {exc}"[:300])
    if resp.status_code >= 400:
        return Delivery(name, kind, False, resp.status_code,
                        f"HTTP {resp.status_code} from {_host(url)}: {resp.text[:200]!r}")
    return Delivery(name, kind, True, resp.status_code)


def _host(url: str) -> str:
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}{f':{u.port}' if u.port else ''}{u.path}"


@dataclass
class LogNotifier:
    name: str
    kind: str = "log"

    def send(self, note: Notification) -> Delivery:
        log.warning("[%s] %s: %s", note.site_id or "-", note.title, note.message)
        return Delivery(self.name, self.kind, True)


@dataclass
class WebhookNotifier:
    """POST ``{"event", "title", "message", "site_id", "data"}`` as JSON."""

    name: str
    url: str
    token_env: str | None = None
    timeout_s: float = 5.0
    kind: str = "webhook"

    def send(self, note: Notification) -> Delivery:
        try:
            token = _token(self.token_env, self.name)
        except NotifierError as exc:
            return Delivery(self.name, self.kind, False, error=str(exc))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"event": note.event, "title": note.title, "message": note.message, "site_id": note.site_id,
                "data": note.data}
        return _post(self.name, self.kind, self.url, self.timeout_s, json=_jsonable(body), headers=headers)


@dataclass
class NtfyNotifier:
    """ntfy publishing: the message is the body; title, priority and tags travel as headers."""

    name: str
    url: str
    topic: str
    priority: int = 4
    token_env: str | None = None
    timeout_s: float = 5.0
    kind: str = "ntfy"

    def send(self, note: Notification) -> Delivery:
        try:
            token = _token(self.token_env, self.name)
        except NotifierError as exc:
            return Delivery(self.name, self.kind, False, error=str(exc))
        headers = {"Title": _latin1(note.title), "Priority": str(self.priority), "Tags": note.event}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return _post(self.name, self.kind, f"{self.url.rstrip('/')}/{self.topic}", self.timeout_s,
                     content=note.message.encode(), headers=headers)


@dataclass
class HomeAssistantNotifier:
    """Home Assistant REST API: ``POST /api/services/notify/<service>`` with a long-lived access token."""

    name: str
    url: str
    service: str
    token_env: str
    timeout_s: float = 5.0
    kind: str = "home_assistant"

    def send(self, note: Notification) -> Delivery:
        try:
            token = _token(self.token_env, self.name)
        except NotifierError as exc:
            return Delivery(self.name, self.kind, False, error=str(exc))
        body = {"title": note.title, "message": note.message,
                "data": _jsonable({"event": note.event, "site_id": note.site_id, **note.data})}
        return _post(self.name, self.kind, f"{self.url.rstrip('/')}/api/services/notify/{self.service}",
                     self.timeout_s, json=body, headers={"Authorization": f"Bearer {token}"})


def _latin1(text: str) -> str:
    """HTTP header values must be latin-1; replace what is not (a '$' is fine, an emoji is not)."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def build_notifier(channel: Channel) -> Notifier:
    if isinstance(channel, LogChannel):
        return LogNotifier(channel.name)
    if isinstance(channel, WebhookChannel):
        return WebhookNotifier(channel.name, channel.url, channel.token_env, channel.timeout_s)
    if isinstance(channel, NtfyChannel):
        return NtfyNotifier(channel.name, channel.url, channel.topic, channel.priority, channel.token_env,
                            channel.timeout_s)
    if isinstance(channel, HomeAssistantChannel):
        return HomeAssistantNotifier(channel.name, channel.url, channel.service, channel.token_env, channel.timeout_s)
    raise NotifierError(f"unknown notification channel kind {type(channel).__name__}")


class NotificationCenter:
    """A site's channels, filtered by event, each delivery recorded in ``notifications``."""

    def __init__(self, settings: NotificationSettings, store: HistoryStore | None = None) -> None:
        self.settings = settings
        self.store = store
        self.notifiers = {c.name: (c, build_notifier(c)) for c in settings.channels}

    def send(self, note: Notification, channels: list[str] | None = None) -> list[Delivery]:
        out = []
        for name, (cfg, notifier) in self.notifiers.items():
            if channels is not None and name not in channels:
                continue
            if channels is None and note.event not in cfg.events:
                continue
            try:
                d = notifier.send(note)
            except Exception as exc:  # a notifier bug must not break the spike path
                d = Delivery(name, notifier.kind, False, error=f"{type(exc).__name__}: {exc}"[:300])
            if not d.ok:
                log.warning("notification %s via %s failed: %s", note.event, name, d.error)
            out.append(d)
            self._record(note, d)
        return out

    def _record(self, note: Notification, d: Delivery) -> None:
        if self.store is None:
            return
        try:
            record_notification(self.store, {
                "notification_id": uuid.uuid4().hex, "created_at": pd.Timestamp.now(tz="UTC"),
                "site_id": note.site_id, "event": note.event, "channel": d.channel, "channel_kind": d.channel_kind,
                "title": note.title, "message": note.message, "outcome": "sent" if d.ok else "failed",
                "status_code": d.status_code, "error": d.error,
            })
        except Exception as exc:  # the record is for the UI; losing it must not fail the caller
            log.warning("could not record notification: %s", exc)
