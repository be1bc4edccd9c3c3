"""The history store behaves the same on DuckDB and PostgreSQL: telemetry and tariff payloads round-trip,
writers running at once neither lose nor double rows, processes starting together migrate once, and a bad
location is one clear line."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from powersync_pipelines.storage import HistoryStore, StorageError


@pytest.fixture
def store(any_store):
    return any_store


def test_telemetry_round_trips_with_its_raw_json_and_a_retry_replaces_it(store):
    ts = pd.Timestamp("2024-02-12T20:05Z")
    store.upsert_telemetry("demo", ts, {"soc": 0.5, "mode": "self", "raw": {"13022": 500}})
    store.upsert_telemetry("demo", ts, {"soc": 0.51, "mode": "self", "raw": {"13022": 510}})
    rows = store.query("SELECT ts, soc, raw FROM telemetry WHERE site_id = ?", ["demo"])
    assert len(rows) == 1 and rows.soc[0] == pytest.approx(0.51)
    assert json.loads(rows.raw[0]) == {"13022": 510}
    assert pd.Timestamp(rows.ts[0]) == ts


def test_a_tariff_decision_per_slot_is_replaced_not_added(store):
    slot = pd.Timestamp("2024-02-12T20:00Z")
    for sent in (False, True):
        store.record_payload("demo", "tesla", {"tou": [1, 2]}, "h1", sent, reply={"ok": sent}, slot=slot)
    rows = store.query("SELECT payload, sent, reply FROM tariff_payloads")
    assert len(rows) == 1 and bool(rows.sent[0]) and json.loads(rows.payload[0]) == {"tou": [1, 2]}


def test_writers_at_once_neither_lose_nor_double_rows(store):
    """Four writers (as sharded runs would) write overlapping plans and distinct commands at the same time."""
    idx = pd.date_range("2024-02-12T20:00Z", periods=48, freq="5min", name="interval_start")
    rows = pd.DataFrame({"action": "IDLE", "battery_charge_kw": 0.0, "battery_discharge_kw": 0.0,
                         "grid_import_kw": 1.0, "grid_export_kw": 0.0, "soc": 0.5, "import_price": 0.1,
                         "export_price": 0.05}, index=idx)
    store.migrate()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(5):
                meta = {"created_at": idx[0], "plan_start": idx[0], "status": "optimal", "solver": "lp"}
                store.write_plan(f"s{i}", f"s{i}:plan", meta, rows.assign(soc=0.5 + k / 100))
                store.record_command(f"s{i}", "sungrow_sh", "apply:IDLE", "ok", command_id=f"w{k}-{i}")
        except BaseException as exc:  # surfaced below: a writer must not fail
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.query("SELECT count(*) AS n FROM plans").n[0] == 5
    assert store.query("SELECT count(*) AS n FROM schedule").n[0] == 5 * 48
    assert store.query("SELECT count(*) AS n FROM commands").n[0] == 4 * 5


def test_processes_starting_together_apply_each_migration_once(pg_cluster):
    pg_cluster.execute('CREATE DATABASE "fresh_start"')
    try:
        url = pg_cluster.url("fresh_start")
        applied: list[list[str]] = []
        threads = [threading.Thread(target=lambda: applied.append(HistoryStore(url).migrate())) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(applied) == 3
        names = [n for run in applied for n in run]
        assert len(names) == len(set(names)) and "core_0001_tables" in names
        recorded = HistoryStore(url).query("SELECT name FROM schema_migrations")["name"].tolist()
        assert sorted(recorded) == sorted(names)
    finally:
        pg_cluster.execute('DROP DATABASE IF EXISTS "fresh_start" WITH (FORCE)')


def test_a_postgres_location_is_described_without_its_password():
    pg = HistoryStore("postgresql://ps:s3cret@db.example:5432/powersync")
    assert pg.backend == "postgresql" and pg.path is None
    assert pg.describe() == "postgresql://ps:***@db.example:5432/powersync"


def test_a_database_url_that_is_not_postgresql_is_refused(monkeypatch):
    monkeypatch.setenv("POWERSYNC_DATABASE_URL", "mysql://u@h/db")
    with pytest.raises(StorageError, match=r"POWERSYNC_DATABASE_URL must be a postgresql://.*got scheme 'mysql'"):
        HistoryStore()


def test_without_the_variable_the_store_is_the_duckdb_file(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSYNC_DUCKDB", str(tmp_path / "x.duckdb"))
    store = HistoryStore()
    assert store.backend == "duckdb" and store.path == tmp_path / "x.duckdb"
