"""Durable saved device state (table ``device_saved_state``).

Written *before* the first write of a forced mode, so a crash between the write and the restore still leaves
a record of what to put back. Without a store (tests, ad-hoc use) the state is kept in process memory.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from ..storage import HistoryStore, stored_time, upsert_sql

PENDING = ("active", "restore_failed")


@dataclass(frozen=True)
class SavedState:
    site_id: str
    slot: str
    device_kind: str
    reason: str
    state: dict[str, Any]
    saved_at: pd.Timestamp
    expires_at: pd.Timestamp | None
    status: str
    attempts: int = 0
    last_error: str | None = None

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    def expired(self, now: pd.Timestamp) -> bool:
        return self.pending and self.expires_at is not None and self.expires_at <= now


_memory: dict[tuple[str, str], SavedState] = {}
_memory_lock = threading.Lock()



def load(store: HistoryStore | None, site_id: str, slot: str) -> SavedState | None:
    """The latest saved state for (site, slot), pending or not."""
    if store is None:
        with _memory_lock:
            return _memory.get((site_id, slot))
    with store.connect() as con:
        row = con.execute(
            "SELECT site_id, slot, device_kind, reason, state, saved_at, expires_at, status, attempts, last_error "
            "FROM device_saved_state WHERE site_id = ? AND slot = ?",
            [site_id, slot],
        ).fetchone()
    if row is None:
        return None
    return SavedState(
        site_id=row[0], slot=row[1], device_kind=row[2], reason=row[3], state=json.loads(row[4]),
        saved_at=stored_time(row[5]), expires_at=stored_time(row[6]), status=row[7], attempts=int(row[8] or 0),
        last_error=row[9],
    )


def load_pending(store: HistoryStore | None, site_id: str, slot: str) -> SavedState | None:
    saved = load(store, site_id, slot)
    return saved if saved is not None and saved.pending else None


def write(store: HistoryStore | None, s: SavedState) -> None:
    """Insert or replace the (site, slot) row."""
    if store is None:
        with _memory_lock:
            _memory[(s.site_id, s.slot)] = s
        return
    now = pd.Timestamp.now(tz="UTC")
    with store.connect() as con:
        con.execute(
            upsert_sql("device_saved_state", ["site_id", "slot", "device_kind", "reason", "state", "saved_at",
                                              "expires_at", "status", "updated_at", "restored_at", "attempts",
                                              "last_error"], ["site_id", "slot"]),
            [
                s.site_id, s.slot, s.device_kind, s.reason, json.dumps(s.state, default=str),
                s.saved_at.to_pydatetime(), s.expires_at.to_pydatetime() if s.expires_at is not None else None,
                s.status, now.to_pydatetime(), now.to_pydatetime() if s.status == "restored" else None,
                s.attempts, s.last_error,
            ],
        )


def save_if_absent(store: HistoryStore | None, site_id: str, slot: str, device_kind: str, reason: str,
                   state: dict[str, Any], expires_at: pd.Timestamp | None) -> SavedState:
    """Save ``state`` unless a restore is already pending for this slot; then only the expiry/reason move.

    Why: a second force_charge while the first is active must not overwrite the *original* settings with the
    forced ones, or restore would put the battery back into forced mode.
    """
    current = load_pending(store, site_id, slot)
    if current is not None:
        # a new command takes control again: the lease is active (attempts and the last error stay for the record)
        updated = replace(current, reason=reason, expires_at=expires_at, status="active")
        write(store, updated)
        return updated
    saved = SavedState(site_id=site_id, slot=slot, device_kind=device_kind, reason=reason, state=state,
                       saved_at=pd.Timestamp.now(tz="UTC"), expires_at=expires_at, status="active")
    write(store, saved)
    return saved


def mark_restored(store: HistoryStore | None, saved: SavedState) -> None:
    write(store, replace(saved, status="restored", attempts=saved.attempts + 1, last_error=None))


def mark_restore_failed(store: HistoryStore | None, saved: SavedState, error: str) -> None:
    write(store, replace(saved, status="restore_failed", attempts=saved.attempts + 1, last_error=str(error)[:500]))
