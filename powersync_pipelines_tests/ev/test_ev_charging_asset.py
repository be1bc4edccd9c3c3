"""The ``ev_charging`` asset in a real Dagster planning run: after the battery's slot is pushed, the demo car's
current goes through the arbiter as ``ev`` over a real OCPP websocket to the simulated charge point."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from powersync_pipelines.config import load_sites
from powersync_pipelines.control import ledger
from powersync_pipelines.defs.planning.assets import PLANNING_ASSETS
from powersync_pipelines.defs.planning.partitions import all_sites_tags
from powersync_pipelines.defs.resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
)
from powersync_pipelines.ev.ocpp_central import CentralSystem
from powersync_pipelines.ev.state import save_settings
from powersync_pipelines.sim.ocpp_cp import SimCar, SimulatedChargePoint
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator
from powersync_pipelines.storage import HistoryStore

from .test_ocpp_central_system import wait_until

NOW = "2024-02-12T20:00:00+00:00"


def test_the_planning_run_sends_the_car_its_current_as_ev(tmp_path):
    battery = SungrowSimulator(port=0, capacity_kwh=13.5, soc=0.5, max_charge_kw=5.0, max_discharge_kw=5.0)
    battery.start()
    path = tmp_path / "h.duckdb"
    store = HistoryStore(path)
    cs = CentralSystem(store, load_sites(), port=0, poll_s=0.1, meter_interval_s=30)
    port = cs.start_in_thread()
    cp = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", car=SimCar(60, 0.3, 32), time_scale=60, tick_s=0.05)
    cp.start_in_thread()
    try:
        wait_until(lambda: cp.state.transaction_id is not None, "the transaction")
        save_settings(store, "demo", "time_critical", target_kwh=30)
        result = dg.materialize(PLANNING_ASSETS, instance=dg.DagsterInstance.ephemeral(), tags=all_sites_tags(),
                                resources={"sites": SitesResource(), "history": HistoryStoreResource(path=str(path)),
                                           "fleet": BatteryFleetResource(endpoints={"demo": f"127.0.0.1:{battery.port}"}),
                                           "clock": ClockResource(fixed_now=NOW)})
        assert result.success
        meta = next(m for m in result.get_asset_materialization_events()
                    if m.asset_key == dg.AssetKey("ev_charging")).materialization.metadata
        assert meta["demo/ev"].value.startswith("32 A: ok"), meta["demo/ev"].value
        wait_until(lambda: cp.state.drawn_a == 32, "32 A drawn")
        assert ledger.holder(store, "demo", "ev_charger", pd.Timestamp.now(tz="UTC")).owner == "ev"
    finally:
        cp.stop()
        cs.stop()
        battery.stop()
