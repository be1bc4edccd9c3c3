"""A real MQTT broker (amqtt) on a free loopback port in its own process, and a recording test client."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

WAIT_S = 30.0  # generous: the tests wait on events, never on a time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """amqtt on ``127.0.0.1:port`` in its own process; ``restart()`` kills it (every retained message is lost, as
    in a broker crash without persistence) and starts a new one on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "powersync_pipelines_tests.homeassistant.amqtt_broker",
                                      str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        ready: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: ready.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = ready.get(timeout=WAIT_S)
        except queue.Empty:
            line = ""
        if line.strip() != "ready":
            self.stop()
            raise AssertionError(f"the amqtt broker did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(WAIT_S)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Recorder:
    """A test client subscribed to ``topics``; every message lands in ``messages`` (and ``inbox`` to wait on)."""

    port: int
    topics: tuple[str, ...] = ("#",)
    messages: list[Seen] = field(default_factory=list)
    inbox: queue.Queue[Seen] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in self.topics])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT_S), "the test client could not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        seen = Seen(msg.topic, bytes(msg.payload), bool(msg.retain))
        self.messages.append(seen)
        self.inbox.put(seen)

    def wait_for(self, topic: str, predicate: Any = lambda m: True) -> Seen:
        """The next message on ``topic`` that satisfies ``predicate`` (AssertionError after WAIT_S)."""
        while True:
            try:
                seen = self.inbox.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"no message on {topic} within {WAIT_S:g} s") from None
            if seen.topic == topic and predicate(seen):
                return seen

    def wait_for_any(self) -> Seen:
        try:
            return self.inbox.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no message within {WAIT_S:g} s") from None

    def latest(self) -> dict[str, Seen]:
        out: dict[str, Seen] = {}
        for m in self.messages:
            out[m.topic] = m
        return out

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
