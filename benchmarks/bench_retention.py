"""History retention benchmark: one site, 7 days of 5-minute plans (2,016 plans x 576 intervals), compacted.

The history is written with the store's own ``write_plan`` (on the fleet stage's held connection, as the
planning cycle writes it), then compacted twice as the daily job would: with the default retention (2 days:
the last 576 plans stay whole) and then with ``keep_days = 0`` (every plan but the newest keeps only its
interval in effect). Measured per step: schedule rows before/after, the DuckDB file size and the bytes in use,
the compaction's seconds and its longest batch (how long a planning cycle could wait for the file), and the
size of a fresh copy of the compacted database (what the file would shrink to if copied).
Results: ``benchmarks/results/retention.json``. Run: ``nice -n 10 .venv/bin/python -m benchmarks.bench_retention``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from powersync_pipelines.storage import HistoryStore
from powersync_pipelines.storage.batch import StageStore
from powersync_pipelines.storage.retention import DEFAULT_KEEP_DAYS, compact_history

from .common import RESULTS_DIR, machine

DAYS = 7
HORIZON = 576
START = pd.Timestamp("2024-06-01T00:00:00Z")


def _plan(k: int, rng: np.random.Generator) -> tuple[pd.Timestamp, pd.DataFrame]:
    """A 48 h plan created at the k-th 5-minute slot, with the columns and value ranges the planner stores."""
    t = START + pd.Timedelta(minutes=5 * k)
    idx = pd.date_range(t, periods=HORIZON, freq="5min", name="interval_start")
    charge = np.clip(rng.normal(0, 2.5, HORIZON), 0, 5)
    discharge = np.clip(rng.normal(0, 2.5, HORIZON), 0, 5) * (charge == 0)
    load, solar = rng.uniform(0.3, 2.5, HORIZON), np.clip(rng.normal(1.0, 1.5, HORIZON), 0, 6)
    net = load - solar + charge - discharge
    return t, pd.DataFrame({
        "action": np.where(charge > 0, "CHARGE", np.where(discharge > 0, "EXPORT", "SELF_CONSUMPTION")),
        "battery_charge_kw": charge, "battery_discharge_kw": discharge, "grid_import_kw": np.clip(net, 0, None),
        "grid_export_kw": np.clip(-net, 0, None), "curtail_kw": 0.0, "soc": rng.uniform(0.2, 1.0, HORIZON),
        "import_price": rng.uniform(0.05, 0.6, HORIZON), "export_price": rng.uniform(-0.05, 0.3, HORIZON),
        "solar_kw": solar, "load_kw": load}, index=idx)


def _build(path: Path) -> float:
    """Write DAYS of 5-minute plans with ``write_plan``; seconds taken."""
    rng = np.random.default_rng(30)
    store = StageStore(path)
    t0 = time.perf_counter()
    for day in range(DAYS):
        with store.held():
            for k in range(day * 288, (day + 1) * 288):
                created, rows = _plan(k, rng)
                store.write_plan("home", f"home:{k}", {"created_at": created, "plan_start": created,
                                                       "status": "optimal", "solver": "lp", "cost": 1.0}, rows)
    return time.perf_counter() - t0


def _copy_size(path: Path) -> int:
    """Bytes of a fresh copy of the database (the file size a compacted history needs)."""
    target = path.with_name("copy.duckdb")
    con = duckdb.connect(str(path))
    try:
        con.execute(f"ATTACH '{target}' AS fresh")
        con.execute(f"COPY FROM DATABASE {con.execute('SELECT current_database()').fetchone()[0]} TO fresh")
        con.execute("DETACH fresh")
    finally:
        con.close()
    size = target.stat().st_size
    target.unlink()
    return size


def _step(report) -> dict:
    s = report.table("schedule")
    return {"keep_days": report.keep_days, "schedule_before": s.before, "schedule_deleted": s.deleted,
            "schedule_after": s.after, "file_bytes_before": report.size_before_bytes,
            "file_bytes_after": report.size_after_bytes, "used_bytes_before": report.used_before_bytes,
            "used_bytes_after": report.used_after_bytes, "seconds": report.seconds, "batches": report.batches,
            "longest_batch_s": report.longest_batch_s}


def main() -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "history.duckdb"
        build_s = _build(path)
        store = HistoryStore(path)
        steps = [_step(compact_history(store, DEFAULT_KEEP_DAYS)), _step(compact_history(store, 0.0))]
        copy_bytes = _copy_size(path)
    out = {"machine": machine(), "site_days": DAYS, "plans": DAYS * 288, "intervals_per_plan": HORIZON,
           "build_s": round(build_s, 1), "steps": steps, "fresh_copy_bytes_after": copy_bytes}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "retention.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
