"""Write a backtest's intervals and summary into the DuckDB history (idempotent by key)."""

from __future__ import annotations

import json
import uuid

import pandas as pd

from ..storage import HistoryStore
from .engine import BacktestResult


def write_results(store: HistoryStore, site_id: str, result: BacktestResult, run_id: str | None = None) -> str:
    """Upsert every interval row and the run summary; returns the run id."""
    rid = run_id or uuid.uuid4().hex
    s = result.summary
    df = result.intervals.copy()
    tz = s.get("site_timezone", "UTC")
    df["site_id"], df["forecast_model"], df["run_id"] = site_id, s["forecast_model"], rid
    df["local_date"] = df["interval_start"].dt.tz_convert(tz).dt.date
    store.upsert("backtest_intervals", df, ["site_id", "forecast_model", "strategy", "interval_start"])
    row = {
        "run_id": rid, "site_id": site_id, "forecast_model": s["forecast_model"],
        "created_at": pd.Timestamp.now(tz="UTC"), "window_start": pd.Timestamp(s["start"]),
        "window_end": pd.Timestamp(s["end"]), "strategies": ",".join(s["strategies"]),
        "chosen_strategy": s["strategy"], "intervals": s["intervals"], "replans": s["replans"],
        "elapsed_s": s["elapsed_s"], "baseline_cost": s["baseline_cost"], "cost": s["cost"],
        "perfect_foresight_cost": s["perfect_foresight_cost"], "savings": s["savings"],
        "capture_ratio": s["capture_ratio"], "summary": json.dumps(s, default=str),
    }
    store.upsert("backtest_runs", pd.DataFrame([row]), ["run_id"])
    return rid
