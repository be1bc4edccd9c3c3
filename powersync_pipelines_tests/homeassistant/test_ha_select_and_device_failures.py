"""A Tesla site's operation-mode select, published over a real broker, reaches the simulated Powerwall's
settings API as owner ``manual``; an option outside the registry's choices is refused. A battery that cannot be
reached is refused by its driver (no fresh telemetry) with the reason published, and the bridge keeps serving."""

from __future__ import annotations

import threading

import pytest

from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.homeassistant.bridge import Bridge, BrokerConfig
from powersync_pipelines.homeassistant.discovery import Topics
from powersync_pipelines.storage import HistoryStore

from ..devices.conftest import sungrow_sim, sungrow_site, tesla_sim, tesla_site  # noqa: F401 (fixtures)
from .broker import WAIT_S, Recorder

T = Topics("t1")


@pytest.fixture
def serving(broker, store: HistoryStore):
    """``serve(site)`` runs a bridge for one site in a thread; a recorder is subscribed before it starts."""
    rec = Recorder(broker.port)
    running: list[tuple[Bridge, threading.Event, threading.Thread]] = []

    def serve(site):
        b = Bridge([site], ControlContext(store), BrokerConfig.from_url(broker.url, env={}))
        b.connect()
        stop = threading.Event()
        thread = threading.Thread(target=b.serve, args=(stop,), kwargs={"interval": 3600}, daemon=True)
        thread.start()
        running.append((b, stop, thread))
        rec.wait_for(T.availability, lambda m: m.payload == b"online")
        return rec

    yield serve
    for b, stop, thread in running:
        stop.set()
        thread.join(WAIT_S)
        b.close()
    rec.close()


def send(rec: Recorder, object_id: str, payload: str) -> dict:
    rec.publish(T.command(object_id), payload)
    return rec.wait_for(T.last_command, lambda m: m.json().get("entity") == object_id).json()


def test_operation_mode_select_reaches_the_powerwall(serving, tesla_site, tesla_sim, store):  # noqa: F811
    rec = serving(tesla_site)
    reply = send(rec, "operation_mode", "backup")
    assert reply["ok"] is True and reply["service"] == "set_operation_mode" and reply["owner"] == "manual"
    assert tesla_sim.state["default_real_mode"] == "backup"
    rec.wait_for(T.state, lambda m: m.json()["operation_mode"] == "backup")
    row = store.query("SELECT command, outcome, owner FROM commands WHERE site_id = 't1'").iloc[0]
    assert tuple(row) == ("set_operation_mode", "ok", "manual")

    reply = send(rec, "operation_mode", "turbo")
    assert reply["outcome"] == "refused" and "must be one of self_consumption, autonomous, backup" in reply["reason"]
    assert tesla_sim.state["default_real_mode"] == "backup"
    assert len(store.query("SELECT * FROM commands WHERE site_id = 't1'")) == 1


def test_unreachable_battery_is_reported_and_the_bridge_keeps_serving(serving, sungrow_site, sungrow_sim):  # noqa: F811
    rec = serving(sungrow_site)
    sungrow_sim.stop()
    reply = send(rec, "force_charge", "PRESS")
    assert reply["ok"] is False and "cannot connect" in reply["reason"]
    assert reply["command_id"]  # the driver's own refusal (no fresh telemetry) is recorded, unlike bad input
    reply = send(rec, "force_duration", "60")  # still serving
    assert reply["ok"] is True and reply["value"] == 60
