"""The stage store (held connections, end-of-stage batches) leaves exactly the rows the per-site writes leave, on
the DuckDB file and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.storage import HistoryStore, StorageError
from powersync_pipelines.storage.backend import COPY_FROM_ROWS, copy_column
from powersync_pipelines.storage.batch import StageStore

ISSUED = pd.Timestamp("2024-02-12T20:00:00Z")
TABLES = {"forecasts": ["site_id", "kind", "interval_start"], "plans": ["plan_id"],
          "schedule": ["site_id", "plan_id", "interval_start"], "telemetry": ["site_id", "ts"]}


def _plan(seed: int, n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range(ISSUED, periods=n, freq="5min", tz="UTC")
    return pd.DataFrame({"action": rng.choice(["CHARGE", "EXPORT", "IDLE"], n), "grid_import_kw": rng.random(n),
                         "grid_export_kw": rng.random(n), "battery_charge_kw": rng.random(n),
                         "battery_discharge_kw": rng.random(n), "soc": rng.random(n),
                         "import_price": rng.random(n), "export_price": rng.random(n), "solar_kw": rng.random(n),
                         "load_kw": rng.random(n)}, index=idx)


def _writes(store: HistoryStore, writes: list[tuple[str, int]]) -> None:
    """A stage's writes: per (site, version) a load forecast, a plan with its intervals and a telemetry row;
    a site written twice (a retried site) must keep only its last version."""
    for site, version in writes:
        sid = f"s{site}"
        idx = pd.date_range(ISSUED, periods=12, freq="5min", tz="UTC")
        store.upsert_forecasts(sid, "load", pd.Series(np.full(12, version + 0.5), index=idx), f"m{version}", ISSUED)
        store.write_plan(sid, f"{sid}:slot", {"created_at": ISSUED, "plan_start": ISSUED, "status": "optimal", "solver": "highs",
                                              "cost": float(version), "soc_initial": 0.5}, _plan(version))
        store.upsert_telemetry(sid, ISSUED, {"soc": version / 10, "mode": "auto", "battery_charge_kw": 1.0})


@pytest.fixture(params=["duckdb", "postgresql"])
def place(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], object]:
    """Where a fresh history goes, called once per store wanted: a DuckDB file, or a fresh PostgreSQL database
    (cloned from the session cluster's migrated template; dropped after the test)."""
    if request.param == "duckdb":
        return lambda: tmp_path_factory.mktemp("batch") / "h.duckdb"
    cluster = request.getfixturevalue("pg_cluster")
    opened: list[AbstractContextManager[str]] = []

    def fresh() -> str:
        db = cluster.database()
        opened.append(db)
        return db.__enter__()

    request.addfinalizer(lambda: [db.__exit__(None, None, None) for db in opened])
    return fresh


def _rows(path: object) -> dict[str, pd.DataFrame]:
    store = HistoryStore(path)
    out = {}
    for table, keys in TABLES.items():
        df = store.query(f"SELECT * FROM {table} ORDER BY {', '.join(keys)}")
        out[table] = df.reset_index(drop=True)
    return out


def _same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        pd.testing.assert_frame_equal(a[table], b[table], check_dtype=False, obj=table)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 9)), min_size=1, max_size=12))
def test_a_batched_stage_leaves_the_per_site_rows(place: Callable[[], object], writes: list[tuple[str, int]]) -> None:
    per_site_at, stage_at = place(), place()
    _writes(HistoryStore(per_site_at), writes)
    stage = StageStore(stage_at, deferred=TABLES)
    with stage.held():
        _writes(stage, writes)
    per_site, batched = _rows(per_site_at), _rows(stage_at)
    _same(per_site, batched)
    assert len(batched["plans"]) == len({s for s, _ in writes})  # none lost, none doubled
    assert len(batched["schedule"]) == 12 * len({s for s, _ in writes})


def test_deferred_rows_are_written_once_when_the_stage_ends(place: Callable[[], object]) -> None:
    at = place()
    stage = StageStore(at, deferred=["forecasts"])
    idx = pd.date_range(ISSUED, periods=3, freq="5min", tz="UTC")
    with stage.held():
        stage.upsert_forecasts("a", "load", pd.Series([1.0, 2.0, 3.0], index=idx), "m", ISSUED)
        # not yet in the table: the stage writes it in one statement at its end
        assert stage.query("SELECT count(*) AS n FROM forecasts")["n"].iloc[0] == 0
        stage.upsert_telemetry("a", ISSUED, {"soc": 0.4})  # not deferred: readable at once
        assert stage.query("SELECT soc FROM telemetry")["soc"].iloc[0] == pytest.approx(0.4)
    assert HistoryStore(at).query("SELECT count(*) AS n FROM forecasts")["n"].iloc[0] == 3
    assert stage.batched_rows == 3


def test_one_bad_frame_loses_only_itself(place: Callable[[], object]) -> None:
    at = place()
    stage = StageStore(at, deferred=["telemetry"])
    with pytest.raises(StorageError, match="deferred writes failed"), stage.held():
        stage.upsert_telemetry("good", ISSUED, {"soc": 0.5})
        stage.upsert("telemetry", pd.DataFrame([{"site_id": "bad", "ts": "not a time", "soc": 0.1}]),
                      ["site_id", "ts"])
        stage.upsert_telemetry("also_good", ISSUED, {"soc": 0.6})
    left = HistoryStore(at).query("SELECT site_id FROM telemetry ORDER BY site_id")
    assert left["site_id"].tolist() == ["also_good", "good"]


def test_other_writers_get_the_file_between_sites(tmp_path: Path) -> None:
    """``breathe`` closes the held connection and releases the file lock, so another process's writer (here a
    second store object, which takes the same lock) gets in between two sites of a long stage."""
    stage = StageStore(tmp_path / "h.duckdb", yield_every_s=0.0)
    other = HistoryStore(tmp_path / "h.duckdb", lock_timeout_s=0.5)
    with stage.held():
        stage.upsert_telemetry("a", ISSUED, {"soc": 0.1})
        stage.breathe()
        stage.upsert_telemetry("b", ISSUED, {"soc": 0.2})
    other.upsert_telemetry("c", ISSUED, {"soc": 0.3})
    assert other.query("SELECT count(*) AS n FROM telemetry")["n"].iloc[0] == 3


def test_on_postgresql_a_stage_keeps_one_connection_per_thread(pg_url: str) -> None:
    """Inside ``held()`` every call of a thread reuses that thread's connection (a connection per call costs a
    server process each); a statement that failed mid-transaction leaves the connection clean for the next."""
    stage = StageStore(pg_url, deferred=["forecasts"])
    with stage.held():
        for i in range(20):
            stage.upsert_telemetry(f"s{i}", ISSUED, {"soc": 0.5})
        assert len(stage._pg_open) == 1

        def work(n: int) -> None:
            for i in range(5):
                stage.upsert_telemetry(f"t{n}-{i}", ISSUED, {"soc": 0.1})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(stage._pg_open) == 4
        with pytest.raises(Exception, match="no_such_table"), stage.connect() as con:
            con.execute("BEGIN")
            con.execute("SELECT * FROM no_such_table")
        stage.upsert_telemetry("after", ISSUED, {"soc": 0.9})  # the aborted transaction was rolled back
    assert stage._pg_open == []
    n = HistoryStore(pg_url).query("SELECT count(*) AS n FROM telemetry")["n"].iloc[0]
    assert n == 20 + 15 + 1


def test_bulk_upserts_keep_the_last_row_of_a_key_and_nulls(any_store: HistoryStore) -> None:
    """A frame repeating a key keeps its last row (as row-by-row upserts would), NaN is stored as NULL, and
    whole floats reach integer columns."""
    frame = pd.DataFrame([
        {"site_id": "a", "ts": ISSUED, "soc": 0.1, "mode": "auto"},
        {"site_id": "a", "ts": ISSUED, "soc": float("nan"), "mode": "backup"},
        {"site_id": "b", "ts": ISSUED, "soc": 0.3, "mode": None},
    ])
    assert any_store.upsert("telemetry", frame, ["site_id", "ts"]) == 2
    got = any_store.query("SELECT site_id, soc, mode FROM telemetry ORDER BY site_id")
    assert got["site_id"].tolist() == ["a", "b"]
    assert pd.isna(got["soc"].iloc[0]) and got["mode"].iloc[0] == "backup"
    assert got["soc"].iloc[1] == pytest.approx(0.3) and got["mode"].iloc[1] is None


def test_a_fraction_for_a_whole_number_column_is_refused_with_its_name() -> None:
    assert copy_column(pd.Series([1.0, None, 3], name="n"), "integer").tolist() == ["1", "\\N", "3"]
    with pytest.raises(StorageError, match="column n: 1.5 is not a whole number"):
        copy_column(pd.Series([1.0, 1.5], name="n"), "integer")


@pytest.mark.parametrize("rows", [3, COPY_FROM_ROWS + 7])
def test_text_times_and_nulls_round_trip_through_both_bulk_paths(pg_url: str, rows: int) -> None:
    """Both PostgreSQL paths (a parameterised INSERT for a few rows, COPY for many) store text with tabs,
    newlines, backslashes and quotes, empty strings, NULLs, JSON and times exactly as given."""
    store = HistoryStore(pg_url)
    texts = ["plain", "tab\there", "line\nbreak", "back\\slash \\N", 'quote " and \'', "", None, "ünïcødé ⚡"]
    ts = pd.date_range(ISSUED, periods=rows, freq="5min", tz="UTC")
    frame = pd.DataFrame({"site_id": [f"s{i}" for i in range(rows)], "ts": ts,
                          "soc": [None if i % 4 == 0 else i / 10 for i in range(rows)],
                          "mode": [texts[i % len(texts)] for i in range(rows)]})
    store.upsert("telemetry", frame, ["site_id", "ts"])
    got = store.query("SELECT site_id, ts, soc, mode FROM telemetry ORDER BY ts")
    assert got["mode"].tolist() == frame["mode"].tolist()
    assert got["ts"].tolist() == ts.tolist()
    assert got["soc"].isna().tolist() == frame["soc"].isna().tolist()
    assert got["soc"].dropna().tolist() == pytest.approx(frame["soc"].dropna().tolist())
