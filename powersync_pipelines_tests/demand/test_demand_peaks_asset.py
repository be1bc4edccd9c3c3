"""The ``demand_peaks`` asset stores each demand-tariff site's billing-month peak so far from its telemetry
(a real Dagster run on a real DuckDB file); sites without a tariff are left out."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.defs.demand import demand_peaks
from powersync_pipelines.defs.resources import ClockResource, HistoryStoreResource, SitesResource
from powersync_pipelines.storage import HistoryStore

from ..demo_peer import demo_site_on, write_sites


def test_the_asset_stores_the_month_peak_in_the_window_so_far(tmp_path, demo_site):
    tariff = demo_site_on(demo_site, 502)
    tariff["features"]["demand_charge"] = {"start": "15:00", "end": "21:00", "price_per_kw_month": 12.5}
    plain = {**demo_site_on(demo_site, 503), "id": "plain"}
    plain["features"].pop("demand_charge", None)
    path = write_sites(tmp_path, tariff, plain)
    store = HistoryStore(tmp_path / "d.duckdb")
    ts = pd.date_range("2024-02-12T04:00Z", "2024-02-13T10:55Z", freq="5min")  # Mon 15:00 .. Tue 21:55 local
    local = ts.tz_convert("Australia/Melbourne")
    imp = np.full(len(ts), 1.0)
    imp[(local.day == 12) & (local.hour == 18) & (local.minute < 30)] = 6.0  # Mon 18:00-18:30: the peak
    imp[(local.day == 13) & (local.hour == 12)] = 9.0  # Tue noon: outside the window, never billed
    imp[(local.day == 13) & (local.hour == 19)] = 8.0  # Tue 19:00: after `now`, not yet measured
    for site_id in ("demo", "plain"):
        store.upsert("telemetry", pd.DataFrame({"site_id": site_id, "ts": ts, "grid_import_kw": imp}), ["site_id", "ts"])

    res = dg.materialize([demand_peaks], instance=dg.DagsterInstance.ephemeral(),
                         run_config={"ops": {"demand_peaks": {"config": {"now": "2024-02-13T06:00:00Z"}}}},
                         resources={"sites": SitesResource(path=path), "history": HistoryStoreResource(path=str(store.path)),
                                    "clock": ClockResource()})
    assert res.success
    rows = store.query("SELECT * FROM demand_month_peaks")
    assert list(rows["site_id"]) == ["demo"]  # the site without a tariff is not tracked
    r = rows.iloc[0]
    assert (r["month"], r["peak_kw"], r["charge"]) == ("2024-02", pytest.approx(6.0), pytest.approx(75.0))
    assert pd.Timestamp(r["peak_at"]) == pd.Timestamp("2024-02-12T07:00Z")  # Mon 18:00 local
    meta = res.asset_materializations_for_node("demand_peaks")[0].metadata
    assert meta["demo/peak_kw"].value == pytest.approx(6.0) and meta["sites_tracked"].value == 1
