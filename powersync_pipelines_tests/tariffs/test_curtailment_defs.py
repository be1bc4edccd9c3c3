"""The Dagster side of curtailment: the sensor asks for a run only when a switch is due; the asset acts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from powersync_pipelines.config import load_sites
from powersync_pipelines.defs.curtailment import curtailment_sensor, solar_curtailment
from powersync_pipelines.defs.resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
)
from powersync_pipelines.schemas import finalize_price_frame
from powersync_pipelines.storage import HistoryStore

from ..inverters.brand_peers import GoodWePeer

NOW = pd.Timestamp("2024-10-20T01:05:00Z")


def _sites_file(tmp_path: Path, ac_port: int) -> Path:
    # the site partitions come from the shipped sites file, so the test site reuses the id "demo"
    doc = {"sites": [{"id": "demo", "timezone": "Australia/Adelaide",
                      "provider": {"kind": "amber", "site_id": "S", "token_env": "T"},
                      "battery": {"kind": "tesla", "token_env": "TESLA_TOKEN", "capacity_kwh": 13.5, "max_charge_kw": 5, "max_discharge_kw": 5},
                      "features": {"curtailment": {"dc": False}},
                      "ac_inverter": {"brand": "goodwe", "host": "127.0.0.1", "port": ac_port, "device_id": 247}}]}
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_sensor_requests_a_run_and_the_asset_curtails(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    with GoodWePeer(unit=247, enabled=0, watts=5000) as ac:
        sites_path = _sites_file(tmp_path, ac.port)
        site = load_sites(sites_path).get("demo")
        store = HistoryStore(db)
        idx = pd.date_range(NOW - pd.Timedelta(minutes=30), periods=24, freq="5min", tz="UTC")
        store.upsert_prices(site.id, finalize_price_frame(
            pd.DataFrame({"import_price": 0.04, "export_price": -0.03}, index=idx), "test"))
        resources = {"sites": SitesResource(path=str(sites_path)), "history": HistoryStoreResource(path=str(db)),
                     "clock": ClockResource(fixed_now=NOW.isoformat()), "fleet": BatteryFleetResource()}
        with dg.build_sensor_context(resources=resources) as ctx:
            result = curtailment_sensor(ctx)
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests
        assert request.partition_key == "demo" and request.run_key.endswith(":curtail")
        done = dg.materialize([solar_curtailment], partition_key="demo", resources=resources)
        assert done.success
        meta = done.asset_materializations_for_node("solar_curtailment")[0].metadata
        assert meta["demo/curtailed"].value is True and meta["demo/applied"].value is True
        assert ac.holding[247][47509] == 1 and ac.holding[247][47510] == 0
        with dg.build_sensor_context(resources=resources) as ctx:
            idle = curtailment_sensor(ctx)
        assert isinstance(idle, dg.SkipReason) and "staying curtailed" in idle.skip_message
