"""``powersync ui`` starts the Home Assistant bridge as one more child when ``POWERSYNC_MQTT_BROKER`` names a
broker: the child publishes the demo site on a real broker and, stopped the way the UI stops its children,
marks itself offline. Without the variable there is no bridge; a bad URL is one line and no bridge."""

from __future__ import annotations

import os

from powersync_pipelines.commands.ha import bridge_process
from powersync_pipelines.commands.ui import _stop_all
from powersync_pipelines.homeassistant.discovery import BRIDGE_AVAILABILITY

from .serving import T


def test_the_ui_child_bridge_publishes_and_goes_offline_when_stopped(broker, rec, sites_file, sim, capsys):
    env = dict(os.environ, POWERSYNC_MQTT_BROKER=broker.url, POWERSYNC_FIXED_NOW="2024-02-12T20:00:00Z")
    proc = bridge_process(sites_file, env)
    assert proc is not None
    try:
        assert f"Home Assistant bridge to {broker.url}" in capsys.readouterr().out
        assert rec.wait_for(T.state).json()["site_id"] == "demo"
        rec.wait_for(T.availability, lambda m: m.payload == b"online")
    finally:
        _stop_all([proc])
    assert proc.returncode == 0
    rec.wait_for(BRIDGE_AVAILABILITY, lambda m: m.payload == b"offline")


def test_no_broker_no_bridge_and_a_bad_url_is_one_line(sites_file, capsys):
    assert bridge_process(sites_file, {}) is None
    assert bridge_process(sites_file, {"POWERSYNC_MQTT_BROKER": "http://h:1"}) is None
    err = capsys.readouterr().err.strip()
    assert err.startswith("Home Assistant bridge not started: POWERSYNC_MQTT_BROKER: ") and "\n" not in err
