"""What `battery_schedule` shows in the Dagster UI: the next actions as a table value with a schema whose
columns name their units, money rounded with the currency in the key, and the plan plot as an image."""

from __future__ import annotations

import base64

import dagster as dg
import pandas as pd

from powersync_pipelines.defs.planning.metadata import schedule_metadata
from powersync_pipelines.optimizer.solve import solve
from powersync_pipelines_tests.optimizer.problems import realistic_problem


def test_schedule_metadata_is_a_table_with_units_and_rounded_money(demo_site):
    r = solve(realistic_problem(seed=3, n=288))
    now = pd.Timestamp("2024-10-11T14:00:00Z")
    meta = schedule_metadata("demo", demo_site, now, "demo:x", r, 0.5, "telemetry")

    table = meta["demo/next_actions"]
    assert isinstance(table, dg.TableMetadataValue)
    cols = {c.name: c for c in table.schema.columns}
    assert "kW" in cols["battery_kw"].description and "+ charging" in cols["battery_kw"].description
    assert "/kWh" in cols["import_per_kwh"].description and "%" in cols["soc_end_pct"].description
    assert table.records and set(table.records[0].data) == set(cols)
    first = table.records[0].data
    net = r.intervals["battery_charge_kw"] - r.intervals["battery_discharge_kw"]
    assert first["when"].startswith("Sat 01:00-")  # 14:00 UTC is 01:00 in Melbourne (AEDT): local, not UTC
    first_block = (r.intervals["action"] != r.intervals["action"].iloc[0]).cumsum() == 0
    assert first["battery_kw"] == round(float(net[first_block].mean()), 2)  # + = charging, as everywhere

    money = {k: v for k, v in meta.items() if k.endswith("_AUD")}
    assert set(money) == {f"demo/{m}_AUD" for m in ("predicted_cost_48h", "no_battery_cost_48h",
                                                     "self_consumption_cost_48h", "savings_48h", "savings_24h")}
    assert all(v == round(v, 2) for v in money.values())
    assert money["demo/savings_48h_AUD"] == round(r.baseline_cost - r.cost, 2)
    assert meta["demo/plan_start_local"].value == "2024-10-12 01:00 Australia/Melbourne"

    plot = meta["demo/plot"].value
    assert plot.startswith("![plan](data:image/png;base64,")
    assert base64.b64decode(plot.split(",", 1)[1].rstrip(")"))[:8] == b"\x89PNG\r\n\x1a\n"
