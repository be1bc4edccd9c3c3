"""The planning strategy a site follows today (the daily ``strategy_selection``), as the live blend reads it.

The choice is made by ``backtest.selection`` (trailing realised savings of each candidate) and stored in DuckDB
``strategy_selection``; this module only records and reads it, so the live price stage needs nothing from the
backtest. A site without a stored choice plans with ``learned`` (the learned model and its spike-reserve rule).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

from ..storage import HistoryStore

STRATEGIES = ("learned", "learned_no_reserve", "persistence")
DEFAULT_STRATEGY = "learned"


def record_choice(store: HistoryStore, site_id: str, decided_at: pd.Timestamp, day: str, choice: str,
                  previous: str | None, savings: Mapping[str, float], days_seen: float, trailing_days: float,
                  margin: float, elapsed_s: float | None = None) -> None:
    """Upsert the choice for ``site_id``'s local ``day`` (YYYY-MM-DD), in force from ``decided_at``."""
    if choice not in STRATEGIES:
        raise ValueError(f"strategy {choice!r}: expected one of {STRATEGIES}")
    row = {"site_id": site_id, "day": pd.Timestamp(day).date(), "decided_at": pd.Timestamp(decided_at).tz_convert("UTC"),
           "choice": choice, "previous": previous,
           "savings": json.dumps({k: round(float(v), 4) for k, v in savings.items()}),
           "days_seen": float(days_seen), "trailing_days": float(trailing_days), "margin": float(margin),
           "elapsed_s": elapsed_s, "created_at": pd.Timestamp.now(tz="UTC")}
    store.upsert("strategy_selection", pd.DataFrame([row]), ["site_id", "day"])


def current_strategy(store: HistoryStore | None, site_id: str, now: pd.Timestamp) -> str:
    """The strategy in force at ``now``: the latest choice decided at or before it (default: ``learned``)."""
    if store is None:
        return DEFAULT_STRATEGY
    df = store.query("SELECT choice FROM strategy_selection WHERE site_id = ? AND decided_at <= ? "
                     "ORDER BY decided_at DESC LIMIT 1", [site_id, pd.Timestamp(now).to_pydatetime()])
    if df.empty or df["choice"].iloc[0] not in STRATEGIES:
        return DEFAULT_STRATEGY
    return str(df["choice"].iloc[0])


def choice_history(store: HistoryStore, site_id: str, days: int = 30) -> pd.DataFrame:
    """The last ``days`` stored choices of a site, newest first (for the UI and the asset metadata)."""
    return store.query("SELECT day, choice, previous, savings, days_seen, decided_at FROM strategy_selection "
                       "WHERE site_id = ? ORDER BY day DESC LIMIT ?", [site_id, int(days)])
