"""The site switches as HA switches on a real broker: ``OFF`` on the Optimization switch goes through the
registry's ``set_optimization`` as owner ``manual``, the stored switch says off, its state is published, and the
next planning cycle plans without pushing to the battery; ``ON`` gives it back. A payload that is not on/off is
refused in words a person reads (no CLI flag) and nothing is stored."""

from __future__ import annotations

from powersync_pipelines.config import load_sites
from powersync_pipelines.control import switches
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.services import run_service
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from .serving import NOW, T, press


def test_optimization_switch_off_is_stored_published_and_the_next_cycle_yields_to_it(bridge, rec, sim,
                                                                                     sites_file):
    site = load_sites(sites_file).get("demo")
    store = HistoryStore(duckdb_path())
    assert rec.latest()[T.state].json()["optimization"] == "on"  # published before the bridge said online

    reply = press(rec, "optimization", "OFF")
    assert reply["ok"] is True and reply["service"] == "set_optimization" and reply["owner"] == "manual"
    assert switches.effective(store, site).optimization is False
    assert switches.effective(store, site).source["optimization"] == "service"
    rec.wait_for(T.state, lambda m: m.json()["optimization"] == "off")

    ems_before = sim.state["ems_mode"]
    cycle = run_service("sync_now", site, {"now": NOW}, ControlContext(store))
    assert cycle["ok"] and cycle["command"] == "optimization_off" and cycle["optimization"] is False
    assert sim.state["ems_mode"] == ems_before  # planned, but nothing pushed to the battery
    assert store.query("SELECT * FROM commands WHERE command LIKE 'apply:%'").empty

    reply = press(rec, "optimization", "ON")
    assert reply["ok"] is True and switches.effective(store, site).optimization is True
    rec.wait_for(T.state, lambda m: m.json()["optimization"] == "on")


def test_auto_tou_sync_switch_and_a_bad_payload(bridge, rec, sites_file):
    site = load_sites(sites_file).get("demo")
    store = HistoryStore(duckdb_path())
    reply = press(rec, "optimization", "maybe")
    assert reply["outcome"] == "refused" and reply["reason"] == "Optimization must be on or off, got 'maybe'"
    assert switches.stored(store, site.id) == {}

    assert press(rec, "auto_tou_sync", "OFF")["ok"] is True
    assert switches.effective(store, site).auto_tou_sync is False
    rec.wait_for(T.state, lambda m: m.json()["auto_tou_sync"] == "off" and m.json()["optimization"] == "on")
