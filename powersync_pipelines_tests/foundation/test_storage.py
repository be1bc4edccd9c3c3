"""The DuckDB store: migrations applied once, upserts that neither lose nor duplicate rows."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.prices.replay import default_replay_now, fetch_replay
from powersync_pipelines.storage import HistoryStore


def test_migrations_apply_once_and_are_recorded(tmp_path):
    path = tmp_path / "h.duckdb"
    first = HistoryStore(path).migrate()
    assert "core_0001_tables" in first
    assert HistoryStore(path).migrate() == []
    names = HistoryStore(path).query("SELECT name FROM schema_migrations")["name"].tolist()
    assert sorted(names) == sorted(first)


def test_price_upsert_is_idempotent_and_round_trips(store, demo_site):
    now = default_replay_now(demo_site)
    frame = fetch_replay(demo_site, now)
    assert store.upsert_prices("demo", frame) == len(frame)
    store.upsert_prices("demo", frame)  # a retried run
    assert store.query("SELECT count(*) AS n FROM prices")["n"].iloc[0] == len(frame)
    back = store.read_prices("demo")
    pd.testing.assert_frame_equal(back[frame.columns], frame, check_freq=False)


def test_a_later_fetch_updates_overlapping_rows_and_keeps_the_rest(store, demo_site):
    now = default_replay_now(demo_site)
    first = fetch_replay(demo_site, now)
    later = fetch_replay(demo_site, now + pd.Timedelta(hours=1))
    store.upsert_prices("demo", first)
    store.upsert_prices("demo", later)
    back = store.read_prices("demo")
    assert len(back) == len(first.index.union(later.index))
    # the hour that became the past is now an actual, not a forecast
    assert not back.loc[now + pd.Timedelta(minutes=30), "is_forecast"]


def test_plans_are_replaced_per_plan_id_not_duplicated(store):
    idx = pd.date_range("2024-02-12T20:00Z", periods=3, freq="5min", name="interval_start")
    rows = pd.DataFrame({"action": ["CHARGE", "IDLE", "EXPORT"], "battery_charge_kw": [5.0, 0, 0],
                         "battery_discharge_kw": [0, 0, 5.0], "grid_import_kw": [6.0, 1, 0],
                         "grid_export_kw": [0, 0, 4.0], "soc": [0.52, 0.52, 0.49],
                         "import_price": [0.1, 0.2, 3.0], "export_price": [0.0, 0.1, 2.7]}, index=idx)
    meta = {"created_at": pd.Timestamp("2024-02-12T20:00Z"), "plan_start": idx[0], "status": "optimal",
            "solver": "lp", "cost": 1.0}
    store.write_plan("demo", "demo:1", meta, rows)
    store.write_plan("demo", "demo:1", meta, rows.assign(action="IDLE"))
    m, back = store.read_latest_plan("demo")
    assert m["plan_id"] == "demo:1"
    assert list(back["action"]) == ["IDLE"] * 3
    assert store.query("SELECT count(*) AS n FROM schedule")["n"].iloc[0] == 3
    assert store.query("SELECT count(*) AS n FROM plans")["n"].iloc[0] == 1


def test_commands_keep_params_written_and_readback_as_json(store):
    cid = store.record_command("demo", "sungrow_sh", "apply:CHARGE", "ok", params={"power_kw": 5.0},
                               written={"13049": 2, "13050": 170}, readback={"13049": 2})
    row = store.query("SELECT * FROM commands WHERE command_id = ?", [cid]).iloc[0]
    assert row["outcome"] == "ok"
    assert '"13050": 170' in row["written"]


@pytest.fixture
def store(any_store):
    """Every test of this module runs on DuckDB and on PostgreSQL."""
    return any_store
