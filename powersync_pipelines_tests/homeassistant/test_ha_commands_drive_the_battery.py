"""Home Assistant's buttons and numbers, published by a test client on a real broker, go through the service
registry as owner ``manual`` to the simulated Sungrow SH; the outcome comes back on ``last_command``. A
malformed or out-of-range command is refused with a reason and nothing is written. HA's birth message and a
broker restart bring everything back."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.config import load_sites
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.homeassistant.discovery import BRIDGE_AVAILABILITY, site_discovery
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from .broker import Recorder
from .serving import NOW, T, press


def commands() -> pd.DataFrame:
    return HistoryStore(duckdb_path()).query("SELECT command, outcome, owner FROM commands WHERE site_id = 'demo'")


def test_force_charge_button_moves_the_simulated_battery_and_reports_back(bridge, rec, sim):
    assert sim.state["ems_mode"] == 0
    reply = press(rec, "force_charge")
    assert reply["ok"] is True and reply["outcome"] == "ok" and reply["owner"] == "manual"
    assert reply["service"] == "force_charge" and reply["command_id"]
    assert sim.state["ems_mode"] == SG.MODE_FORCED and sim.state["command"] == SG.CMD_CHARGE
    row = commands().query("command == 'force_charge'").iloc[0]
    assert (row["outcome"], row["owner"]) == ("ok", "manual")
    state = rec.wait_for(T.state, lambda m: m.json()["holder"] == "manual").json()
    assert state["held_by_command"] == "force_charge" and state["last_command"] == "force_charge"

    reply = press(rec, "restore_normal")
    assert reply["ok"] is True and sim.state["ems_mode"] == 0


def test_force_duration_number_sets_the_buttons_lease(bridge, rec, sim):
    reply = press(rec, "force_duration", "45")
    assert reply["ok"] is True and reply["value"] == 45
    rec.wait_for(T.state, lambda m: m.json()["force_duration"] == 45)
    reply = press(rec, "force_discharge")
    assert reply["ok"] is True and sim.state["command"] == SG.CMD_DISCHARGE
    params = HistoryStore(duckdb_path()).query(
        "SELECT params FROM commands WHERE command = 'force_discharge'")["params"].iloc[0]
    assert '"minutes": 45' in params or '"duration_minutes": 45' in params


def test_backup_reserve_number_writes_the_register_and_shows_the_value(bridge, rec, sim):
    reply = press(rec, "backup_reserve", "35")
    assert reply["ok"] is True and sim.state["reserve_pct"] == 35
    rec.wait_for(T.state, lambda m: m.json()["backup_reserve"] == 35)


def test_export_limit_number_writes_the_limit(bridge, rec, sim):
    reply = press(rec, "export_limit", "2500")
    assert reply["ok"] is True and reply["service"] == "sungrow_set_export_limit"
    rec.wait_for(T.state, lambda m: m.json()["export_limit"] == 2500)


@pytest.mark.parametrize("object_id, payload, reason", [
    ("force_charge", "PUSH", "takes the payload 'PRESS'"),
    ("backup_reserve", "150", "Backup reserve must be <= 100 %, got '150'"),
    ("backup_reserve", "-1", "must be >= 0 %"),
    ("backup_reserve", "banana", "must be a number"),
    ("backup_reserve", "nan", "must be a finite number"),
    ("force_duration", "2", "Force duration must be >= "),
    ("force_duration", "12.5", "whole number"),
    ("backup_reserve", b"\xff\xfe", "not UTF-8"),
    ("backup_reserve", "9" * 200, "too long"),
    ("backup_reserve", "", "empty"),
    ("export_limit", "-5", "must be >= 0 W"),
    ("set_everything", "1", "no such command entity"),
])
def test_malformed_command_is_refused_with_a_reason_and_writes_nothing(bridge, rec, sim, object_id, payload, reason):
    before = dict(sim.state)
    reply = press(rec, object_id, payload)
    assert reply["ok"] is False and reply["outcome"] == "refused" and reason in reply["reason"]
    assert "--" not in reply["reason"] and "service" not in reply["reason"]  # HA shows no CLI flags
    assert commands().empty
    assert sim.state["ems_mode"] == before["ems_mode"] and sim.state["reserve_pct"] == before["reserve_pct"]
    assert bridge.settings["demo"]["force_duration"] == 30


def test_ha_birth_message_republishes_every_config(bridge, rec, sites_file):
    configs = {d.topic for d in site_discovery(load_sites(sites_file).get("demo"))}
    rec.publish("homeassistant/status", "online")
    seen: set[str] = set()
    while not configs <= seen:
        seen.add(rec.wait_for_any().topic)


def test_broker_restart_republishes_everything(bridge, broker, sites_file):
    configs = {d.topic for d in site_discovery(load_sites(sites_file).get("demo"))}
    broker.restart()  # a broker without persistence: every retained config is gone
    after = Recorder(broker.port)
    try:
        seen: set[str] = set()
        want = configs | {T.state, T.availability, BRIDGE_AVAILABILITY}
        while not want <= seen:
            seen.add(after.wait_for_any().topic)
    finally:
        after.close()


def test_a_new_plan_is_published_without_waiting_for_the_interval(bridge, rec, sites_file):
    from powersync_pipelines.control.services import run_service

    site = load_sites(sites_file).get("demo")
    out = run_service("sync_now", site, {"now": NOW}, ControlContext(HistoryStore(duckdb_path())))
    assert out["ok"]
    state = rec.wait_for(T.state, lambda m: m.json()["plan_id"] is not None).json()
    assert state["plan_id"] == "demo:20240212T2000Z" and state["action"] == "EXPORT"
    points = rec.wait_for(T.forecast("forecast_load")).json()["forecast"]
    assert len(points) == 576
