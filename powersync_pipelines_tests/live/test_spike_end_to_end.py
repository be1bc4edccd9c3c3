"""End to end: a replayed AEMO feed on loopback, the Sungrow simulator, and the spike watch deciding.

``test_spike_end_to_end_under_the_daemon`` starts the real ``dagster-daemon`` against a temp DAGSTER_HOME (the
repo's dagster.yaml copied in), injects a $5000/MWh interval and checks the battery is forced to discharge within
the latency budget and restored after the spike (marked slow: the daemon needs ~15-30 s to come up on 2 cores).
``test_spike_end_to_end_in_process`` replays the same feed through the same sensor evaluated in-process, so the
chain feed -> NEMWEB parser -> decision -> Modbus -> DuckDB is covered by the default test run.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from powersync_pipelines.control import live_store
from powersync_pipelines.defs.live.sensors import aemo_spike_watch
from powersync_pipelines.defs.resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
)
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.prices import nemweb
from powersync_pipelines.sim.daemon import DaemonHarness
from powersync_pipelines.storage import HistoryStore

from .conftest import sungrow_site, write_sites

LATENCY_BUDGET_S = 15.0
# A replayed SA1 evening: ordinary prices, a $5000 interval, a shoulder inside the hysteresis band, then calm.
REPLAY = [96.4, 131.2, 5000.0, 2990.0, 310.5, 88.0]


def _discharging(sim) -> bool:
    return sim.state["ems_mode"] == SG.MODE_FORCED and sim.state["command"] == SG.CMD_DISCHARGE


def test_feed_is_nemweb_shaped(feed):
    pub = feed.publish({"SA1": 5000.0, "VIC1": -12.5})
    import httpx

    listing = httpx.get(f"{feed.base_url}/Reports/Current/DispatchIS_Reports/").text
    (listed,) = nemweb.parse_listing(listing, "dispatch")
    assert listed.name == pub.name and listed.href.startswith("/Reports/CURRENT/DispatchIS_Reports/")
    text = nemweb.unzip_report(httpx.get(f"{feed.base_url}{listed.href}").content, pub.name)
    assert text.startswith("C,NEMP.WORLD,DISPATCHIS,AEMO,PUBLIC,") and "\r\n" in text
    tables = nemweb.parse_cid(text, pub.name)  # checks the END OF REPORT line count
    assert len(tables["DISPATCH.PRICE"].columns) == 66
    sa = nemweb.dispatch_prices(tables, "SA1", pub.name)
    assert sa.index[-1] == pub.interval_start and sa["rrp"].iloc[-1] == 5000.0
    assert nemweb.dispatch_prices(tables, "VIC1", pub.name)["rrp"].iloc[-1] == -12.5


def test_dispatch_interval_id_follows_the_trading_day():
    from powersync_pipelines.sim.nemweb_feed import dispatch_interval_id

    assert dispatch_interval_id(pd.Timestamp("2025-12-27 00:05")) == "20251226241"  # the real sample
    assert dispatch_interval_id(pd.Timestamp("2025-12-27 04:05")) == "20251227001"
    assert dispatch_interval_id(pd.Timestamp("2025-12-27 04:00")) == "20251226288"


def test_spike_end_to_end_in_process(tmp_path, feed, sim):
    path = write_sites(tmp_path / "sites.yaml", [sungrow_site("sa-home", sim.port, feed.base_url)])
    store = HistoryStore(tmp_path / "live.duckdb")
    res = {"sites": SitesResource(path=str(path)), "history": HistoryStoreResource(path=str(store.path)),
           "fleet": BatteryFleetResource(), "clock": ClockResource()}
    states = []
    with dg.instance_for_test() as instance:
        cursor = None
        for rrp in REPLAY:
            feed.publish({"SA1": rrp})
            r = aemo_spike_watch(dg.build_sensor_context(instance=instance, resources=res, cursor=cursor))
            cursor = r.cursor
            states.append(_discharging(sim))
    assert states == [False, False, True, True, False, False]
    (row,) = live_store.spike_events(store, "sa-home").itertuples()
    assert row.status == "ended" and row.start_rrp == 5000.0 and row.end_rrp == 310.5
    assert row.start_interval == feed.files[2].interval_start  # the dispatch interval is the one published
    seen = store.query("SELECT count(*) AS n FROM dispatch_seen WHERE region = 'SA1'")["n"].iloc[0]
    assert seen == len(REPLAY)


@pytest.mark.slow
def test_spike_end_to_end_under_the_daemon(tmp_path, feed, sim):
    path = write_sites(tmp_path / "sites.yaml", [sungrow_site("sa-home", sim.port, feed.base_url)])
    db = tmp_path / "live.duckdb"
    store = HistoryStore(db)
    feed.publish({"SA1": REPLAY[0]})
    harness = DaemonHarness(tmp_path, path, db, env={"POWERSYNC_SPIKE_WATCH_INTERVAL_S": "1"})
    with harness:
        def ticking() -> bool:
            return bool(store.query("SELECT count(*) AS n FROM dispatch_seen")["n"].iloc[0])

        harness.wait_for(ticking, 120, "the first spike-watch tick", poll_s=0.5)
        pub = feed.publish({"SA1": 5000.0})
        harness.wait_for(lambda: _discharging(sim), 30, "forced discharge after the $5000 interval")

        def verified() -> bool:  # the registers flip before the sensor records the read-back in DuckDB
            ev = live_store.open_event(store, "sa-home")
            return ev is not None and ev.verified_at is not None

        harness.wait_for(verified, 10, "the verified command to be recorded", poll_s=0.2)
        ev = live_store.open_event(store, "sa-home")
        assert ev is not None and ev.start_interval == pub.interval_start and ev.start_rrp == 5000.0
        assert (ev.verified_at - ev.seen_at).total_seconds() <= LATENCY_BUDGET_S

        feed.publish({"SA1": 88.0})
        harness.wait_for(lambda: not _discharging(sim), 30, "restore after the spike")
        harness.wait_for(lambda: live_store.open_event(store, "sa-home") is None, 10, "the event to end")
    assert not harness.alive()
    row = live_store.spike_events(store, "sa-home").iloc[0]
    assert row["status"] == "ended" and row["restore_attempts"] == 1 and sim.state["ems_mode"] == SG.MODE_SELF
