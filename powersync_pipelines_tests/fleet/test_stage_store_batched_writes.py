"""The stage store (one held connection, end-of-stage batches) leaves exactly the rows the per-site writes leave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.storage import HistoryStore, StorageError
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


def _rows(path: Path) -> dict[str, pd.DataFrame]:
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
def test_a_batched_stage_leaves_the_per_site_rows(tmp_path_factory: pytest.TempPathFactory,
                                                  writes: list[tuple[str, int]]) -> None:
    d = tmp_path_factory.mktemp("batch")
    _writes(HistoryStore(d / "per_site.duckdb"), writes)
    stage = StageStore(d / "stage.duckdb", deferred=TABLES)
    with stage.held():
        _writes(stage, writes)
    per_site, batched = _rows(d / "per_site.duckdb"), _rows(d / "stage.duckdb")
    _same(per_site, batched)
    assert len(batched["plans"]) == len({s for s, _ in writes})  # none lost, none doubled
    assert len(batched["schedule"]) == 12 * len({s for s, _ in writes})


def test_deferred_rows_are_written_once_when_the_stage_ends(tmp_path: Path) -> None:
    stage = StageStore(tmp_path / "h.duckdb", deferred=["forecasts"])
    idx = pd.date_range(ISSUED, periods=3, freq="5min", tz="UTC")
    with stage.held():
        stage.upsert_forecasts("a", "load", pd.Series([1.0, 2.0, 3.0], index=idx), "m", ISSUED)
        # not yet in the table: the stage writes it in one statement at its end
        assert stage.query("SELECT count(*) AS n FROM forecasts")["n"].iloc[0] == 0
        stage.upsert_telemetry("a", ISSUED, {"soc": 0.4})  # not deferred: readable at once
        assert stage.query("SELECT soc FROM telemetry")["soc"].iloc[0] == pytest.approx(0.4)
    assert HistoryStore(tmp_path / "h.duckdb").query("SELECT count(*) AS n FROM forecasts")["n"].iloc[0] == 3
    assert stage.batched_rows == 3


def test_one_bad_frame_loses_only_itself(tmp_path: Path) -> None:
    stage = StageStore(tmp_path / "h.duckdb", deferred=["telemetry"])
    with pytest.raises(StorageError, match="deferred writes failed"), stage.held():
        stage.upsert_telemetry("good", ISSUED, {"soc": 0.5})
        stage.upsert("telemetry", pd.DataFrame([{"site_id": "bad", "ts": "not a time", "soc": 0.1}]),
                      ["site_id", "ts"])
        stage.upsert_telemetry("also_good", ISSUED, {"soc": 0.6})
    left = HistoryStore(tmp_path / "h.duckdb").query("SELECT site_id FROM telemetry ORDER BY site_id")
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
