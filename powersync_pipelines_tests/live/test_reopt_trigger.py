"""The early re-optimisation trigger: which price changes are material, and the one all-sites run it requests."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from powersync_pipelines.control import live_store
from powersync_pipelines.control.reopt_trigger import dispatch_snapshot, material_change, snapshot
from powersync_pipelines.control.spike import DispatchPrice
from powersync_pipelines.defs.live.sensors import reoptimize_on_price_change
from powersync_pipelines.defs.resources import HistoryStoreResource, SitesResource
from powersync_pipelines.storage import HistoryStore

from .conftest import sungrow_site, write_sites

NOW = pd.Timestamp("2026-01-15T03:12:00Z")


def amber_like(now: pd.Timestamp, imp: float = 0.25, hours: float = 24, spike: str = "none") -> pd.DataFrame:
    idx = pd.date_range(now.floor("5min") - pd.Timedelta(minutes=30), now.floor("5min") + pd.Timedelta(hours=hours),
                        freq="5min", tz="UTC", inclusive="left")
    df = pd.DataFrame({"import_price": np.full(len(idx), imp), "export_price": np.full(len(idx), 0.05),
                       "spike_status": "none"}, index=idx)
    df.loc[df.index == now.floor("5min"), "spike_status"] = spike
    return df


def test_a_new_dispatch_interval_with_a_large_move_is_material():
    a = dispatch_snapshot(NOW.floor("5min"), 90.0)
    assert material_change(None, a) is None  # the first look is a baseline
    b = dispatch_snapshot(NOW.floor("5min") + pd.Timedelta(minutes=5), 150.0)
    assert material_change(a, b) is None  # a 60 $/MWh move is noise
    c = dispatch_snapshot(NOW.floor("5min") + pd.Timedelta(minutes=5), 420.0)
    assert "RRP 90.00 -> 420.00" in material_change(a, c)
    d = dispatch_snapshot(NOW.floor("5min") + pd.Timedelta(minutes=5), 310.0)
    e = dispatch_snapshot(NOW.floor("5min") + pd.Timedelta(minutes=10), 290.0)
    assert "crossed the spike threshold 300" in material_change(d, e, spike_threshold=300.0)


def test_amber_updates_count_when_the_current_price_or_near_forecast_moves():
    base = snapshot(amber_like(NOW), NOW)
    assert material_change(base, snapshot(amber_like(NOW, imp=0.26), NOW)) is None
    assert "import price 0.2500 -> 0.3200" in material_change(base, snapshot(amber_like(NOW, imp=0.32), NOW))
    assert "spike flag changed none -> potential" in material_change(
        base, snapshot(amber_like(NOW, spike="potential"), NOW))
    later = amber_like(NOW)
    later.loc[later.index > NOW + pd.Timedelta(minutes=40), "export_price"] = 0.40
    assert "forecast for the next 2 h moved" in material_change(base, snapshot(later, NOW))


def test_a_new_octopus_day_is_material():
    before = snapshot(amber_like(NOW, hours=8), NOW)
    after = snapshot(amber_like(NOW, hours=32), NOW)
    assert "a new day" in material_change(before, after)


def test_sensor_requests_one_run_for_all_sites_on_a_material_dispatch_move(tmp_path):
    path = write_sites(tmp_path / "sites.yaml", [sungrow_site("sa-home", 1502, "http://127.0.0.1:9")])
    store = HistoryStore(tmp_path / "live.duckdb")
    res = {"sites": SitesResource(path=str(path)), "history": HistoryStoreResource(path=str(store.path))}
    now = pd.Timestamp.now(tz="UTC").floor("5min")
    live_store.record_dispatch_seen(store, DispatchPrice("SA1", now - pd.Timedelta(minutes=5), 80.0, "f1", now))
    with dg.instance_for_test() as instance:
        r1 = reoptimize_on_price_change(dg.build_sensor_context(instance=instance, resources=res))
        assert not r1.run_requests and "baseline recorded" in r1.skip_reason.skip_message
        live_store.record_dispatch_seen(store, DispatchPrice("SA1", now, 950.0, "f2", now))
        r2 = reoptimize_on_price_change(dg.build_sensor_context(instance=instance, resources=res, cursor=r1.cursor))
        (req,) = r2.run_requests
        assert req.run_key.startswith("early:")
        assert "dagster/asset_partition_range_start" in req.tags and "RRP 80.00 -> 950.00" in req.tags[
            "powersync/trigger"]
        r3 = reoptimize_on_price_change(dg.build_sensor_context(instance=instance, resources=res, cursor=r2.cursor))
        assert not r3.run_requests  # the same interval again is not a change
