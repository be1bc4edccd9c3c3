"""The demo site's EV entities on a real broker: the EV mode select, target number and departure text reach the
registry's ``ev_set_mode`` as owner ``manual`` and show what is stored; a value the service does not take is
refused with a reason a person reads and nothing is stored. The start/stop buttons drive a simulated OCPP charge
point through the real central system, and the charger's holder and session are published."""

from __future__ import annotations

import pytest

from powersync_pipelines.config import load_sites
from powersync_pipelines.ev.ocpp_central import CentralSystem
from powersync_pipelines.ev.state import load_settings
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.sim.ocpp_cp import SimCar, SimulatedChargePoint
from powersync_pipelines.storage import HistoryStore

from ..ev.test_ocpp_central_system import wait_until
from .serving import T, press


def stored_mode(sites_file: str):
    site = load_sites(sites_file).get("demo")
    return load_settings(HistoryStore(duckdb_path()), site.id, site.ev)


def test_ev_mode_select_reaches_the_registry_and_a_bad_mode_is_refused(bridge, rec, sites_file):
    state = rec.latest()[T.state].json()
    assert state["ev_mode"] == "cost_optimized" and state["ev_departure"] == "07:30"  # the sites file's default
    assert state["ev_target_kwh"] == 20 and state["ev_holder"] == "none"

    reply = press(rec, "ev_mode", "solar_only")
    assert reply["ok"] is True and reply["service"] == "ev_set_mode" and reply["owner"] == "manual"
    assert stored_mode(sites_file).mode == "solar_only"
    rec.wait_for(T.state, lambda m: m.json()["ev_mode"] == "solar_only")

    reply = press(rec, "ev_mode", "turbo")
    assert reply["outcome"] == "refused"
    assert reply["reason"] == ("EV mode must be one of solar_only, solar_preferred, cost_optimized, time_critical, "
                               "got 'turbo'")
    assert stored_mode(sites_file).mode == "solar_only"


def test_ev_target_and_departure_keep_the_mode_in_force(bridge, rec, sites_file):
    assert press(rec, "ev_mode", "time_critical")["ok"] is True
    reply = press(rec, "ev_target_kwh", "32.5")
    assert reply["ok"] is True
    settings = stored_mode(sites_file)
    assert (settings.mode, settings.target_kwh) == ("time_critical", 32.5)
    rec.wait_for(T.state, lambda m: m.json()["ev_target_kwh"] == 32.5)

    reply = press(rec, "ev_departure", "25:00")
    assert reply["outcome"] == "refused" and reply["reason"].startswith("EV departure: expected a local time HH:MM")
    reply = press(rec, "ev_target_kwh", "0")
    assert reply["outcome"] == "refused" and reply["reason"] == "EV target energy must be > 0 kWh, got '0'"
    assert stored_mode(sites_file).departure == "07:30"

    assert press(rec, "ev_departure", "06:45")["ok"] is True
    settings = stored_mode(sites_file)
    assert (settings.mode, settings.departure, settings.target_kwh) == ("time_critical", "06:45", 32.5)
    rec.wait_for(T.state, lambda m: m.json()["ev_departure"] == "06:45")


@pytest.fixture
def charge_point(sites_file):
    """The OCPP central system on the bridge's history file and the demo's charge point with a car plugged in."""
    cs = CentralSystem(HistoryStore(duckdb_path()), load_sites(sites_file), port=0, poll_s=0.1,
                       meter_interval_s=30)
    port = cs.start_in_thread()
    cp = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", car=SimCar(60, 0.3, 32), time_scale=60, tick_s=0.05)
    cp.start_in_thread()
    wait_until(lambda: cp.state.transaction_id is not None, "the transaction")
    store = HistoryStore(duckdb_path())
    wait_until(lambda: not store.query("SELECT 1 FROM ocpp_meter_values WHERE measurand = 'Power.Active.Import'").empty,
               "the first meter values")
    yield cp
    cp.stop()
    cs.stop()


def test_stop_and_start_buttons_drive_the_charge_point_and_publish_its_holder(charge_point, bridge, rec):
    state = rec.latest()[T.state].json()
    assert state["ev_charger_status"] == "Charging" and state["ev_holder"] == "none"
    assert state["ev_power_kw"] > 0 and state["ev_session_energy_kwh"] >= 0  # the charge point's meter values
    reply = press(rec, "ev_stop_session")
    assert reply["ok"] is True and reply["service"] == "ev_stop_session"
    assert reply["decision"] == "granted"
    wait_until(lambda: charge_point.state.transaction_id is None, "the transaction to stop")
    state = rec.wait_for(T.state, lambda m: m.json()["ev_holder"] == "manual").json()
    assert state["ev_held_until"] is not None and state["holder"] != "manual"  # the charger, not the battery

    reply = press(rec, "ev_start_session")
    assert reply["ok"] is True and reply["service"] == "ev_start_session"
    wait_until(lambda: charge_point.state.transaction_id is not None, "a new transaction")
