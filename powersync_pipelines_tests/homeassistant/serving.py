"""The bridge serving the demo site in a thread (as ``powersync ha serve`` runs it) and a command sent as HA
sends it; shared by the Home Assistant tests on a real broker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from powersync_pipelines.config import load_sites
from powersync_pipelines.control.clock import Clock
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.homeassistant.bridge import Bridge, BrokerConfig
from powersync_pipelines.homeassistant.discovery import Topics
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from .broker import WAIT_S, BrokerProcess, Recorder

T = Topics("demo")
NOW = "2024-02-12T20:00:00Z"  # the demo's replay start: the plan wants to export now


@contextmanager
def serving(broker: BrokerProcess, sites_file: str, rec: Recorder) -> Iterator[Bridge]:
    """A bridge for the demo site, serving until the block ends (then stopped and marked offline)."""
    sites = load_sites(sites_file).sites
    ctx = ControlContext(HistoryStore(duckdb_path()), Clock(fixed=NOW))
    b = Bridge(sites, ctx, BrokerConfig.from_url(broker.url, env={}))
    b.connect()
    stop = threading.Event()
    thread = threading.Thread(target=b.serve, args=(stop,), kwargs={"interval": 3600}, daemon=True)
    thread.start()
    rec.wait_for(T.availability, lambda m: m.payload == b"online")
    try:
        yield b
    finally:
        stop.set()
        thread.join(WAIT_S)
        b.close()


def press(rec: Recorder, object_id: str, payload: str | bytes = "PRESS") -> dict:
    """Publish ``payload`` on the entity's command topic; the bridge's reply on ``last_command``."""
    rec.publish(T.command(object_id), payload)
    return rec.wait_for(T.last_command, lambda m: m.json().get("entity") == object_id).json()
