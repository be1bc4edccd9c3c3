"""Persistence for live operation (tables in ``storage/schema_live.py``).

Kept apart from the state machine so that ``live.spike`` stays pure and testable without a database.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from typing import Any

import pandas as pd

from ..storage import HistoryStore, stored_time, upsert_sql
from .spike import DispatchPrice, SpikeEvent

_TS_FIELDS = {"start_interval", "seen_at", "last_interval", "command_sent_at", "verified_at", "lease_until",
              "end_interval", "end_seen_at", "restore_sent_at", "restore_verified_at"}
_EVENT_COLUMNS = [f.name for f in fields(SpikeEvent)]



def _py(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return value


def _event_from_row(row: dict[str, Any]) -> SpikeEvent:
    kw = {k: row[k] for k in _EVENT_COLUMNS}
    for k in _TS_FIELDS:
        kw[k] = stored_time(kw[k])
    kw["notified"] = frozenset(x for x in (row["notified"] or "").split(",") if x)
    kw["command_attempts"] = int(kw["command_attempts"] or 0)
    kw["restore_attempts"] = int(kw["restore_attempts"] or 0)
    return SpikeEvent(**kw)


# -- spike events --------------------------------------------------------------------------------------
def open_event(store: HistoryStore, site_id: str) -> SpikeEvent | None:
    """The site's spike in progress (any status but ``ended``), newest first."""
    with store.connect() as con:
        cur = con.execute(
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM spike_events WHERE site_id = ? AND status <> 'ended' "
            "ORDER BY start_interval DESC LIMIT 1", [site_id])
        row = cur.fetchone()
        names = [d[0] for d in cur.description] if row is not None else []
    return _event_from_row(dict(zip(names, row, strict=True))) if row is not None else None


def get_event(store: HistoryStore, event_id: str) -> SpikeEvent | None:
    with store.connect() as con:
        cur = con.execute(f"SELECT {', '.join(_EVENT_COLUMNS)} FROM spike_events WHERE event_id = ?", [event_id])
        row = cur.fetchone()
        names = [d[0] for d in cur.description] if row is not None else []
    return _event_from_row(dict(zip(names, row, strict=True))) if row is not None else None


def write_event(store: HistoryStore, ev: SpikeEvent) -> SpikeEvent:
    cols = _EVENT_COLUMNS + ["updated_at"]
    values = [_py(getattr(ev, c)) for c in _EVENT_COLUMNS] + [pd.Timestamp.now(tz="UTC").to_pydatetime()]
    with store.connect() as con:
        con.execute(upsert_sql("spike_events", cols, ["event_id"]), values)
    return ev


def spike_events(store: HistoryStore, site_id: str | None = None) -> pd.DataFrame:
    """Every stored event (newest first) with its latency columns in seconds."""
    sql = ("SELECT *, extract(epoch FROM verified_at - seen_at) AS seen_to_verified_s, "
           "extract(epoch FROM restore_verified_at - end_seen_at) AS end_seen_to_restored_s "
           "FROM spike_events")
    params: list[Any] = []
    if site_id is not None:
        sql += " WHERE site_id = ?"
        params.append(site_id)
    return store.query(sql + " ORDER BY start_interval DESC", params)


def mark_notified(ev: SpikeEvent, kind: str) -> SpikeEvent:
    return replace(ev, notified=ev.notified | {kind})


# -- dispatch prices as seen ---------------------------------------------------------------------------
def record_dispatch_seen(store: HistoryStore, price: DispatchPrice) -> DispatchPrice:
    """Store the first sighting of (region, interval); returns the price with that first ``seen_at``."""
    with store.connect() as con:
        con.execute(
            "INSERT INTO dispatch_seen (region, interval_start, rrp, source, seen_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [price.region, price.interval_start.to_pydatetime(), price.rrp, price.source,
             price.seen_at.to_pydatetime()])
        row = con.execute("SELECT seen_at FROM dispatch_seen WHERE region = ? AND interval_start = ?",
                          [price.region, price.interval_start.to_pydatetime()]).fetchone()
    first = stored_time(row[0]) if row else None
    return replace(price, seen_at=first) if first is not None else price


def latest_dispatch_seen(store: HistoryStore, region: str) -> DispatchPrice | None:
    with store.connect() as con:
        row = con.execute("SELECT region, interval_start, rrp, source, seen_at FROM dispatch_seen WHERE region = ? "
                          "ORDER BY interval_start DESC LIMIT 1", [region]).fetchone()
    if row is None:
        return None
    return DispatchPrice(region=row[0], interval_start=stored_time(row[1]), rrp=float(row[2]), source=row[3],
                         seen_at=stored_time(row[4]))


# -- notifications and automations (small helpers used by several modules) -----------------------------
def record_notification(store: HistoryStore, row: dict[str, Any]) -> None:
    with store.connect() as con:
        cols = list(row)
        con.execute(upsert_sql("notifications", cols, ["notification_id"]), [_py(row[c]) for c in cols])


def to_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)
