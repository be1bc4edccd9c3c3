"""The force duration chosen in HA is the bridge's own setting, kept per site in the history file: a bridge
started again offers it (state and the buttons' lease) instead of falling back to the default 30 minutes."""

from __future__ import annotations

from powersync_pipelines.homeassistant.discovery import BRIDGE_AVAILABILITY
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from .serving import T, press, serving


def test_force_duration_survives_a_bridge_restart(broker, sites_file, rec, sim):
    with serving(broker, sites_file, rec):
        assert press(rec, "force_duration", "45")["ok"] is True
        rec.wait_for(T.state, lambda m: m.json()["force_duration"] == 45)
    rec.wait_for(BRIDGE_AVAILABILITY, lambda m: m.payload == b"offline")

    with serving(broker, sites_file, rec) as again:
        assert again.settings["demo"]["force_duration"] == 45
        assert rec.latest()[T.state].json()["force_duration"] == 45  # published on connect
        assert press(rec, "force_charge")["ok"] is True
    params = HistoryStore(duckdb_path()).query(
        "SELECT params FROM commands WHERE command = 'force_charge'")["params"].iloc[0]
    assert '"minutes": 45' in params or '"duration_minutes": 45' in params


def test_a_stored_duration_out_of_range_falls_back_to_the_default(broker, sites_file, rec):
    store = HistoryStore(duckdb_path())
    store.migrate()
    with store.connect() as con:  # a hand edit / another version's row
        con.execute("INSERT INTO ha_settings VALUES ('demo', 'force_duration', '99999', now())")
    with serving(broker, sites_file, rec) as b:
        assert b.settings["demo"]["force_duration"] == 30
