"""A sites file with only the required fields (no ``load:``, ``solar:``, ``limits:``, ``features:``) plans end to
end: the default load profile the docs promise is shipped and found, and a full cycle stores a plan."""

from __future__ import annotations

import pandas as pd

from powersync_pipelines.config import LoadConfig, load_sites
from powersync_pipelines.control import cycle
from powersync_pipelines.control.clock import Clock
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.paths import DATA_DIR, resolve_data_path
from powersync_pipelines.storage import HistoryStore

MINIMAL = """\
sites:
  - id: bare
    timezone: Australia/Melbourne
    provider:
      kind: replay
      file: {prices}
    battery:
      kind: simulated
      capacity_kwh: 10
      max_charge_kw: 5
      max_discharge_kw: 5
"""
NOW = pd.Timestamp("2024-02-12T20:00:00Z")


def test_default_load_profile_is_shipped():
    assert resolve_data_path(LoadConfig().profile).is_file()


def test_minimal_site_runs_a_full_planning_cycle(tmp_path):
    f = tmp_path / "sites.yaml"
    f.write_text(MINIMAL.format(prices=DATA_DIR / "prices" / "PRICE_AND_DEMAND_202402_VIC1_excerpt.csv"))
    site = load_sites(f).get("bare")
    store = HistoryStore(tmp_path / "history.duckdb")
    solar, load, model = cycle.forecasts(site, NOW, store)
    assert model == "standard_profile" and len(load) == 576 and load.gt(0).all() and solar.eq(0).all()
    out = cycle.run_cycle(ControlContext(store, Clock(NOW)), site)
    assert out["ok"] and out["status"] == "optimal", out
    meta, intervals = store.read_latest_plan("bare")
    assert meta["plan_id"] == out["plan_id"] and len(intervals) == 576
