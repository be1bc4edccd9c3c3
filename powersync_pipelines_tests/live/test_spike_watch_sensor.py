"""The spike watch sensor against real peers: a NEMWEB-shaped feed, Sungrow simulators over Modbus TCP, DuckDB.

Each ``tick`` is one sensor evaluation, built with ``build_sensor_context`` on a test instance, as the daemon
would run it. The assertions look at the simulator's registers (what the battery actually does) and at the
durable ``spike_events`` row.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from powersync_pipelines.control import live_store
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.services import run_service
from powersync_pipelines.defs.live.sensors import aemo_spike_watch
from powersync_pipelines.defs.resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
)
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.storage import HistoryStore

from .conftest import sungrow_site, write_sites

FORCED, DISCHARGE = SG.MODE_FORCED, SG.CMD_DISCHARGE


def resources(sites_path, db) -> dict:
    return {"sites": SitesResource(path=str(sites_path)), "history": HistoryStoreResource(path=str(db)),
            "fleet": BatteryFleetResource(), "clock": ClockResource()}


def tick(instance, res, cursor=None) -> dg.SensorResult:
    ctx = dg.build_sensor_context(instance=instance, resources=res, cursor=cursor)
    return aemo_spike_watch(ctx)


def discharging(sim) -> bool:
    st = sim.state
    return st["ems_mode"] == FORCED and st["command"] == DISCHARGE


@pytest.fixture
def one_site(tmp_path, feed, sim):
    path = write_sites(tmp_path / "sites.yaml", [sungrow_site("sa-home", sim.port, feed.base_url)])
    db = tmp_path / "live.duckdb"
    return resources(path, db), HistoryStore(db)


def test_enter_hold_and_exit_with_hysteresis(one_site, feed, sim):
    res, store = one_site
    with dg.instance_for_test() as instance:
        feed.publish({"SA1": 120.0})
        r = tick(instance, res)
        assert r.skip_reason is not None and "sa-home: none" in r.skip_reason.skip_message
        assert not discharging(sim)

        feed.publish({"SA1": 5000.0})
        r = tick(instance, res, r.cursor)
        assert discharging(sim)
        assert sim.state["forced_power_w"] == 5000  # rated power, never more
        assert [e.asset_key.to_user_string() for e in r.asset_events] == ["spike_events"]
        ev = live_store.open_event(store, "sa-home")
        assert ev.status == "active" and ev.verified_at is not None and ev.verified_at >= ev.seen_at
        assert json.loads(r.cursor)["open"] == {"sa-home": "active"}

        feed.publish({"SA1": 2985.0})  # below threshold, above threshold - hysteresis: the spike holds
        r = tick(instance, res, r.cursor)
        assert discharging(sim) and "hold" in r.skip_reason.skip_message

        feed.publish({"SA1": 2975.0})
        r = tick(instance, res, r.cursor)
        assert not discharging(sim) and sim.state["ems_mode"] == 0
    events = live_store.spike_events(store, "sa-home")
    assert len(events) == 1
    row = events.iloc[0]
    assert row["status"] == "ended" and row["peak_rrp"] == 5000.0 and row["end_rrp"] == 2975.0
    assert row["restore_verified_at"] >= row["end_seen_at"]
    sent = store.query("SELECT event, outcome FROM notifications ORDER BY created_at")
    assert sent["event"].tolist() == ["spike_start", "spike_end"] and set(sent["outcome"]) == {"sent"}


def test_restart_mid_spike_neither_forgets_nor_fires_twice(one_site, feed, sim):
    res, store = one_site
    with dg.instance_for_test() as first:
        feed.publish({"SA1": 6000.0})
        tick(first, res)
    assert discharging(sim)
    writes_before = len(sim.writes)

    # a new daemon: fresh instance, no cursor, same DuckDB file
    with dg.instance_for_test() as second:
        feed.publish({"SA1": 7000.0})
        r = tick(second, res)
        assert "hold" in r.skip_reason.skip_message
        assert len(sim.writes) == writes_before  # no second command
        feed.publish({"SA1": 40.0})
        tick(second, res)
    assert not discharging(sim)
    events = live_store.spike_events(store, "sa-home")
    assert len(events) == 1 and events.iloc[0]["status"] == "ended" and events.iloc[0]["peak_rrp"] == 7000.0
    starts = store.query("SELECT count(*) AS n FROM notifications WHERE event = 'spike_start'")["n"].iloc[0]
    assert starts == 1


def test_failed_restore_is_retried_every_tick_until_it_holds(one_site, feed, sim):
    res, store = one_site
    with dg.instance_for_test() as instance:
        feed.publish({"SA1": 9000.0})
        tick(instance, res)
        assert discharging(sim)

        sim.inject("exception", code=4, on="write", count=-1)  # the inverter rejects every write for a while
        feed.publish({"SA1": 55.0})
        tick(instance, res)
        ev = live_store.open_event(store, "sa-home")
        assert ev.status == "restoring" and ev.restore_attempts == 1 and "restore" in ev.last_error
        tick(instance, res)
        assert live_store.open_event(store, "sa-home").restore_attempts == 2
        assert discharging(sim)

        sim.clear_faults()
        tick(instance, res)
    assert not discharging(sim)
    row = live_store.spike_events(store, "sa-home").iloc[0]
    assert row["status"] == "ended" and row["restore_attempts"] == 3
    kinds = store.query("SELECT event FROM notifications ORDER BY created_at")["event"].tolist()
    assert kinds == ["spike_start", "restore_failed", "spike_end"]  # the failure is reported once


def test_thresholds_are_per_site(tmp_path, feed, sim_factory):
    low_sim, high_sim = sim_factory(), sim_factory()
    path = write_sites(tmp_path / "sites.yaml", [
        sungrow_site("low", low_sim.port, feed.base_url,
                     features={"spike_watch": {"threshold_per_mwh": 1000, "hysteresis_per_mwh": 100}}),
        sungrow_site("vpp", high_sim.port, feed.base_url),  # Sungrow default: 3000 $/MWh
    ])
    res = resources(path, tmp_path / "live.duckdb")
    with dg.instance_for_test() as instance:
        feed.publish({"SA1": 1500.0})
        tick(instance, res)
        assert discharging(low_sim) and not discharging(high_sim)
        feed.publish({"SA1": 950.0})  # inside the low site's 100 $/MWh hysteresis band
        tick(instance, res)
        assert discharging(low_sim)
        feed.publish({"SA1": 3100.0})
        tick(instance, res)
        assert discharging(low_sim) and discharging(high_sim)
        feed.publish({"SA1": 800.0})
        tick(instance, res)
    assert not discharging(low_sim) and not discharging(high_sim)


def test_manual_force_charge_outranks_the_spike_and_is_never_restored_over(one_site, feed, sim):
    res, store = one_site
    site = SitesResource(path=res["sites"].path).site("sa-home")
    # the owner asked for a charge (e.g. storm coming)
    assert run_service("force_charge", site, {"duration_minutes": 60}, ControlContext(store))["ok"]
    with dg.instance_for_test() as instance:
        feed.publish({"SA1": 8000.0})
        tick(instance, res)
        assert sim.state["command"] == SG.CMD_CHARGE
        assert live_store.open_event(store, "sa-home").status == "deferred"
        feed.publish({"SA1": 100.0})
        tick(instance, res)
    assert sim.state["command"] == SG.CMD_CHARGE  # the manual mode is still running
    assert live_store.spike_events(store).iloc[0]["status"] == "ended"
    assert "spike_deferred" in store.query("SELECT event FROM notifications")["event"].tolist()


def test_tesla_gets_a_spike_tariff_and_autonomous_mode_then_its_own_settings_back(tmp_path, feed, monkeypatch):
    from powersync_pipelines.sim.tesla import SITE_ID, TeslaSimulator

    monkeypatch.setenv("TESLA_TEST_TOKEN", "sim-token")
    tesla = TeslaSimulator(port=0, soc=0.8, timezone="Australia/Adelaide").start()
    try:
        site = sungrow_site("pw", 0, feed.base_url)
        site["battery"] = {"kind": "tesla", "base_url": tesla.base_url, "token_env": "TESLA_TEST_TOKEN",
                           "energy_site_id": SITE_ID, "capacity_kwh": 13.5, "max_charge_kw": 5.0,
                           "max_discharge_kw": 5.0}
        path = write_sites(tmp_path / "sites.yaml", [site])
        res = resources(path, tmp_path / "live.duckdb")
        store = HistoryStore(tmp_path / "live.duckdb")
        with dg.instance_for_test() as instance:
            feed.publish({"SA1": 450.0})  # Tesla default threshold: 300 $/MWh
            tick(instance, res)
            st = tesla.state
            assert st["tariff_code"] == "POWER_SYNC:AEMO_SPIKE" and st["default_real_mode"] == "autonomous"
            assert live_store.open_event(store, "pw").response == "spike_tariff"
            feed.publish({"SA1": 275.0})
            tick(instance, res)
        st = tesla.state
        assert st["tariff_code"] == "USER_TARIFF" and st["default_real_mode"] == "self_consumption"
        assert live_store.spike_events(store, "pw").iloc[0]["status"] == "ended"
    finally:
        tesla.stop()
