"""The MQTT side of the Home Assistant integration: publish discovery, states and forecasts; take HA's commands.

One paho-mqtt client serves every site. Its last will marks the bridge ``offline`` (retained) on
``powersync/bridge/availability``, so HA greys every entity out when the bridge dies. Configs and states are
published retained at QoS 1 (HA finds them after its own restart), and all of it again on every (re)connect
and on HA's birth message (``<prefix>/status`` = ``online``), because a restarted broker may have lost them.

HA's commands arrive on ``powersync/<site>/command/<object_id>``. Each is checked (UTF-8, short, the button's
press payload, the registry's parameter rules) and carried out by ``run_service(..., owner="manual")``, the same
path as ``powersync service``; its outcome, or the reason it was refused (naming the entity's setting as a person
calls it, not a CLI flag), is published on ``powersync/<site>/last_command``. A refused command writes nothing to
any device or table. The force duration is the bridge's own setting, kept per site in the history file
(``memory``) so a restart offers the duration last chosen.

All store and device work runs on the thread that calls :meth:`Bridge.serve` (paho's network thread only queues
events), so a slow Modbus write cannot stall the MQTT keep-alive.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from ..config import SiteConfig
from ..config.ev import check_hhmm
from ..control.context import ControlContext
from ..control.services import DURATION, REGISTRY, ServiceInputError, run_service
from ..ev.state import load_settings as ev_settings
from ..redaction import excerpt, register
from .discovery import (
    BRIDGE_AVAILABILITY,
    DEFAULT_PREFIX,
    EV_SET,
    FORCE_DURATION,
    OFFLINE,
    ONLINE,
    PRESS,
    Discovery,
    Topics,
    site_discovery,
)
from .memory import load_settings, save_setting
from .state import snapshot

log = logging.getLogger(__name__)

QOS = 1
MAX_PAYLOAD = 64  # bytes: no command of ours needs more; a longer payload is refused unread
PLAN_POLL_S = 5.0  # how often the serve loop looks for a new stored plan
ENV_USER, ENV_PASSWORD = "POWERSYNC_MQTT_USERNAME", "POWERSYNC_MQTT_PASSWORD"
ENV_TLS, ENV_CA = "POWERSYNC_MQTT_TLS", "POWERSYNC_MQTT_CA_FILE"


class BridgeError(RuntimeError):
    """The bridge cannot start (bad broker URL, unreachable or refusing broker); one line, never a secret."""


class CommandRefused(ValueError):
    """A command payload that is not acted on; the message is the reason published back to HA."""


@dataclass(frozen=True)
class BrokerConfig:
    """Where the broker is and how to log in. The password only ever comes from the environment."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> BrokerConfig:
        """``mqtt://[user@]HOST:PORT`` or ``mqtts://...`` (TLS); user, password and TLS from the environment."""
        env = os.environ if env is None else env
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise BridgeError(f"--broker must look like mqtt://[user@]HOST:PORT (or mqtts://), got {url!r}")
        if parts.password is not None:
            raise BridgeError(f"--broker must not carry a password; set {ENV_PASSWORD} instead")
        try:
            port = parts.port
        except ValueError:
            raise BridgeError(f"--broker has an invalid port: {parts.netloc.rpartition('@')[2]!r}") from None
        if not parts.hostname:
            raise BridgeError(f"--broker names no host: {url!r}")
        tls = parts.scheme == "mqtts" or env.get(ENV_TLS, "").strip().lower() in ("1", "true", "yes", "on")
        user = unquote(parts.username) if parts.username else (env.get(ENV_USER) or None)
        password = env.get(ENV_PASSWORD) or None
        if password and not user:
            raise BridgeError(f"{ENV_PASSWORD} is set but no user: give mqtt://USER@HOST:PORT or {ENV_USER}")
        return cls(parts.hostname, port or (8883 if tls else 1883), user, password, tls, env.get(ENV_CA) or None)

    def describe(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


@dataclass(frozen=True)
class _Route:
    site: SiteConfig
    entity: Discovery


class Bridge:
    """Every site as HA entities on one broker connection; ``serve`` runs until ``stop`` is set."""

    def __init__(self, sites: list[SiteConfig], ctx: ControlContext, broker: BrokerConfig,
                 prefix: str = DEFAULT_PREFIX, client_id: str | None = None) -> None:
        self.sites = sites
        self.ctx = ctx
        self.broker = broker
        self.prefix = prefix.rstrip("/")
        self.entities = {s.id: site_discovery(s, self.prefix) for s in sites}
        self.routes: dict[str, _Route] = {
            Topics(s.id).command(d.object_id): _Route(s, d) for s in sites for d in self.entities[s.id]
            if d.command is not None}
        self.settings: dict[str, dict[str, Any]] = {s.id: self._stored_settings(s.id) for s in sites}
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.published = 0  # messages handed to the client (all kinds), for the command's summary
        self._plans: dict[str, Any] = {}
        register(broker.password)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"powersync-{uuid.uuid4().hex[:8]}")
        self.client.will_set(BRIDGE_AVAILABILITY, OFFLINE, qos=QOS, retain=True)
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self.client.tls_set(ca_certs=broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _stored_settings(self, site_id: str) -> dict[str, Any]:
        """The bridge's own settings as last chosen in HA (defaults when none, or the history is unreadable)."""
        defaults = {FORCE_DURATION: DURATION.default}
        try:
            return load_settings(self.ctx.store, site_id, defaults,
                                 {FORCE_DURATION: lambda v: DURATION.parse(v, FORCE_DURATION)})
        except Exception as exc:  # the history file busy or missing: the defaults until the next start
            log.warning("home assistant: site %s: stored settings not readable: %s", site_id, excerpt(exc))
            return defaults

    # -- paho's network thread: only queue events --------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.events.put(("refused", str(reason)))
            return
        client.subscribe([(f"{self.prefix}/status", QOS)] + [(Topics(s.id).command_wildcard, QOS) for s in self.sites])
        self.events.put(("connected", None))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.events.put(("disconnected", str(reason)))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.events.put(("message", (msg.topic, bytes(msg.payload))))

    # -- connection ---------------------------------------------------------------------------------------
    def connect(self, timeout: float = 15.0) -> None:
        """Connect and wait for the broker's answer; :class:`BridgeError` with the reason if it says no."""
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=60)
        except (OSError, ssl.SSLError) as exc:
            raise BridgeError(f"cannot reach the MQTT broker {self.broker.describe()}: {excerpt(exc)}") from None
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, detail = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.client.loop_stop()
                raise BridgeError(f"no answer from the MQTT broker {self.broker.describe()} in {timeout:g} s") from None
            if kind == "connected":
                return
            if kind == "refused":
                self.client.loop_stop()
                raise BridgeError(f"the MQTT broker {self.broker.describe()} refused the connection: {detail}")

    def close(self, offline: bool = True, timeout: float = 10.0) -> None:
        """Disconnect; ``offline`` first marks the bridge offline (a clean stop does not fire the last will)."""
        if offline:
            self._wait([self._publish(BRIDGE_AVAILABILITY, OFFLINE)], timeout)
        self.client.disconnect()
        self.client.loop_stop()

    # -- publishing -----------------------------------------------------------------------------------------
    def _publish(self, topic: str, payload: Any, retain: bool = True) -> mqtt.MQTTMessageInfo:
        text = payload if isinstance(payload, str) else json.dumps(payload, default=str, separators=(",", ":"))
        self.published += 1
        return self.client.publish(topic, text, qos=QOS, retain=retain)

    @staticmethod
    def _wait(infos: list[mqtt.MQTTMessageInfo], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not all(i.is_published() for i in infos):
            raise BridgeError(f"the broker did not acknowledge {sum(not i.is_published() for i in infos)} "
                              f"of {len(infos)} messages in {timeout:g} s")

    def publish_site(self, site: SiteConfig, configs: bool = True) -> list[mqtt.MQTTMessageInfo]:
        """The site's discovery configs (optional), availability, state document and forecast lists."""
        t = Topics(site.id)
        infos = [self._publish(d.topic, d.payload) for d in self.entities[site.id]] if configs else []
        try:
            snap = snapshot(self.ctx, site, self.settings[site.id], self.entities[site.id])
        except Exception as exc:  # a site whose history cannot be read goes unavailable; the others carry on
            log.warning("home assistant: site %s: state not readable: %s", site.id, excerpt(exc))
            return [*infos, self._publish(t.availability, OFFLINE)]
        infos.append(self._publish(t.state, snap.state))
        infos += [self._publish(t.forecast(oid), body) for oid, body in snap.forecasts.items()]
        if configs:
            infos.append(self._publish(t.last_command, self._seed_last_command(snap.state)))
        infos.append(self._publish(t.availability, ONLINE))
        self._plans[site.id] = snap.state.get("plan_id")
        return infos

    def _seed_last_command(self, state: dict[str, Any]) -> dict[str, Any]:
        cmd, outcome = state.get("last_command"), state.get("last_outcome")
        return {"summary": f"{cmd}: {outcome}" if cmd else "None", "command": cmd, "outcome": outcome}

    def publish_all(self, configs: bool = True) -> list[mqtt.MQTTMessageInfo]:
        infos = [self._publish(BRIDGE_AVAILABILITY, ONLINE)]
        for site in self.sites:
            infos += self.publish_site(site, configs)
        return infos

    def once(self, timeout: float = 30.0) -> int:
        """Publish everything once and wait for the broker to acknowledge it; the number of messages."""
        infos = self.publish_all()
        self._wait(infos, timeout)
        return len(infos)

    # -- commands -------------------------------------------------------------------------------------------
    def handle_command(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        """Carry out (or refuse) one command message and publish its outcome; None for a topic not ours."""
        route = self.routes.get(topic)
        if route is None:
            site_id = topic.split("/")[1] if topic.count("/") >= 3 else None
            site = next((s for s in self.sites if s.id == site_id), None)
            if site is None:
                log.warning("home assistant: command on unknown topic %s ignored", excerpt(topic, 120))
                return None
            reply = self._reply(topic.rsplit("/", 1)[-1], None, payload, ok=False, outcome="refused",
                                reason=f"no such command entity {topic.rsplit('/', 1)[-1]!r}")
            self._publish(Topics(site.id).last_command, reply, retain=True)
            return reply
        site, entity = route.site, route.entity
        cmd = entity.command
        assert cmd is not None
        try:
            text = self._text(payload)
            if cmd.setting is not None:
                assert cmd.param is not None
                value = cmd.param.parse(text, entity.object_id, human=True)
                save_setting(self.ctx.store, site.id, cmd.setting, value, self.ctx.clock.wall())
                self.settings[site.id][cmd.setting] = value
                reply = self._reply(entity.object_id, None, payload, ok=True, outcome="ok", reason=None,
                                    value=value)
            else:
                assert cmd.service is not None
                result = run_service(cmd.service, site, self._params(site, cmd.service, cmd, text, entity), self.ctx,
                                     owner="manual", human=True)
                reply = self._reply(entity.object_id, cmd.service, payload, ok=bool(result.get("ok")),
                                    outcome=str(result.get("outcome") or ("ok" if result.get("ok") else "failed")),
                                    reason=result.get("error"), command_id=result.get("command_id"),
                                    decision=result.get("decision"), holder=result.get("holder"),
                                    held_until=result.get("held_until"))
        except (CommandRefused, ServiceInputError) as exc:
            reply = self._reply(entity.object_id, cmd.service, payload, ok=False, outcome="refused", reason=str(exc))
        except Exception as exc:  # a device or store failure: reported back, the bridge keeps serving
            log.warning("home assistant: site %s: %s failed: %s", site.id, entity.object_id, excerpt(exc))
            reply = self._reply(entity.object_id, cmd.service, payload, ok=False, outcome="error",
                                reason=excerpt(exc))
        log.info("home assistant: site %s: %s -> %s%s", site.id, entity.object_id, reply["outcome"],
                 f" ({reply['reason']})" if reply["reason"] else "")
        self._publish(Topics(site.id).last_command, reply)
        self.publish_site(site, configs=False)
        return reply

    @staticmethod
    def _text(payload: bytes) -> str:
        if len(payload) > MAX_PAYLOAD:
            raise CommandRefused(f"payload of {len(payload)} bytes is too long (at most {MAX_PAYLOAD})")
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CommandRefused("payload is not UTF-8 text") from None
        if not text:
            raise CommandRefused("payload is empty")
        return text

    def _params(self, site: SiteConfig, service: str, cmd: Any, text: str, entity: Discovery) -> dict[str, Any]:
        if cmd.kind == "button":
            if text != PRESS:
                raise CommandRefused(f"button {entity.object_id} takes the payload {PRESS!r}, got {text!r}")
            takes_duration = REGISTRY[service].param(DURATION.name) is DURATION
            return {DURATION.name: self.settings[site.id][FORCE_DURATION]} if takes_duration else {}
        params = {cmd.param.name: text}
        if cmd.kind == "text" and cmd.param.name == "departure":
            try:
                check_hhmm(text)
            except ValueError as exc:
                raise CommandRefused(f"{cmd.param.human}: {exc}") from None
        if service == EV_SET and cmd.param.name != "mode":  # a target or departure keeps the mode in force
            assert site.ev is not None
            params["mode"] = ev_settings(self.ctx.store, site.id, site.ev).mode
        return params

    def _reply(self, entity: str, service: str | None, payload: bytes, *, ok: bool, outcome: str,
               reason: str | None, **extra: Any) -> dict[str, Any]:
        return {"summary": f"{entity}: {outcome}"[:255], "entity": entity, "service": service, "owner": "manual",
                "ok": ok, "outcome": outcome, "reason": reason, "payload": payload[:80].decode("utf-8", "replace"),
                "at": self.ctx.clock.wall().isoformat(), **{k: v for k, v in extra.items() if v is not None}}

    # -- the serve loop -----------------------------------------------------------------------------------
    def _new_plans(self) -> list[SiteConfig]:
        """Sites whose latest stored plan differs from the one last published (a planning cycle ran)."""
        rows = self.ctx.store.query(
            "SELECT DISTINCT ON (site_id) site_id, plan_id FROM plans ORDER BY site_id, created_at DESC")
        latest = dict(zip(rows["site_id"], rows["plan_id"], strict=True))
        return [s for s in self.sites if latest.get(s.id) is not None and latest.get(s.id) != self._plans.get(s.id)]

    def dispatch(self, kind: str, detail: Any) -> None:
        """Act on one event from the network thread."""
        if kind == "connected":
            log.info("home assistant: connected to %s; publishing %d sites", self.broker.describe(), len(self.sites))
            self.publish_all()
        elif kind == "disconnected":
            log.warning("home assistant: disconnected from the broker (%s); reconnecting", detail)
        elif kind == "refused":
            log.warning("home assistant: the broker refused the connection: %s", detail)
        elif kind == "message":
            topic, payload = detail
            if topic == f"{self.prefix}/status":
                if payload.strip() == ONLINE.encode():
                    log.info("home assistant: HA came online; republishing")
                    self.publish_all()
            else:
                self.handle_command(topic, payload)

    def serve(self, stop: threading.Event, interval: float = 60.0) -> None:
        """Publish everything, then serve events, states every ``interval`` s and after every new plan."""
        self.publish_all()
        next_states = time.monotonic() + interval
        next_poll = time.monotonic() + PLAN_POLL_S
        while not stop.is_set():
            wait = max(0.0, min(next_states, next_poll) - time.monotonic())
            try:
                kind, detail = self.events.get(timeout=min(wait, 1.0))
                self.dispatch(kind, detail)
            except queue.Empty:
                pass
            now = time.monotonic()
            if now >= next_states:
                self.publish_all(configs=False)
                next_states = now + interval
            if now >= next_poll:
                next_poll = now + PLAN_POLL_S
                try:
                    for site in self._new_plans():
                        self.publish_site(site, configs=False)
                except Exception as exc:  # the history file busy or missing: try again at the next poll
                    log.warning("home assistant: cannot read plans: %s", excerpt(exc))
