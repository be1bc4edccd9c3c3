"""The durable control ledger (DuckDB ``control_ledger`` / ``control_requests``, ``storage/schema_control.py``).

Who holds a control is read from here and nowhere else: an explicit ``owner`` column, a lease, and the command
and reason that took it. Decisions are taken inside one store transaction (the store's writer lock), so two
processes asking for the same control at once get one answer each, in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from ..owners import outranks
from ..storage import HistoryStore, stored_time

HOLD_COLUMNS = ("hold_id", "site_id", "control", "owner", "command", "reason", "acquired_at", "lease_until",
                "status", "ended_at", "end_reason")



def _py(ts: pd.Timestamp | None) -> Any:
    return ts.to_pydatetime() if ts is not None else None


@dataclass(frozen=True)
class Hold:
    """One owner's hold of one control."""

    hold_id: str
    site_id: str
    control: str
    owner: str
    command: str
    reason: str
    acquired_at: pd.Timestamp
    lease_until: pd.Timestamp | None
    status: str
    ended_at: pd.Timestamp | None = None
    end_reason: str | None = None

    def active(self, now: pd.Timestamp) -> bool:
        return self.status == "held" and (self.lease_until is None or self.lease_until > now)

    def describe(self) -> str:
        until = f" until {self.lease_until:%Y-%m-%d %H:%M:%S}Z" if self.lease_until is not None else " until released"
        return f"{self.owner} ({self.command}){until}"

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Hold:
        d = dict(zip(HOLD_COLUMNS, row, strict=True))
        for k in ("acquired_at", "lease_until", "ended_at"):
            d[k] = stored_time(d[k])
        return cls(**d)


@dataclass(frozen=True)
class Decision:
    """The arbiter's answer to one request."""

    request_id: str
    decision: str  # granted | yielded
    holder: Hold | None  # who held the control when the request arrived (None: nobody)
    hold: Hold | None  # the hold created for a granted request


def _held(con: duckdb.DuckDBPyConnection, site_id: str, control: str) -> Hold | None:
    row = con.execute(
        f"SELECT {', '.join(HOLD_COLUMNS)} FROM control_ledger WHERE site_id = ? AND control = ? AND status = 'held' "
        "ORDER BY acquired_at DESC LIMIT 1", [site_id, control]).fetchone()
    return Hold.from_row(row) if row is not None else None


def _end(con: duckdb.DuckDBPyConnection, hold_id: str, status: str, reason: str, now: pd.Timestamp) -> None:
    con.execute("UPDATE control_ledger SET status = ?, ended_at = ?, end_reason = ?, updated_at = ? "
                "WHERE hold_id = ? AND status = 'held'", [status, _py(now), reason[:500], _py(now), hold_id])


def request(store: HistoryStore, *, site_id: str, control: str, owner: str, command: str, reason: str,
            lease_until: pd.Timestamp | None, now: pd.Timestamp, preempt: bool = True) -> Decision:
    """Decide one request and record it: granted (a new ``held`` row; the previous holder ``preempted``, or its
    own earlier hold ``released`` when the same owner renews) or yielded (a higher owner holds it, or anyone
    holds it and ``preempt`` is False)."""
    rid = uuid.uuid4().hex
    with store.connect() as con:
        con.execute("BEGIN")
        holder = _held(con, site_id, control)
        if holder is not None and not holder.active(now):
            _end(con, holder.hold_id, "lapsed", "lease ended", now)
            holder = None
        blocked = holder is not None and (outranks(holder.owner, owner) or (not preempt and holder.owner != owner))
        hold = None
        if not blocked:
            if holder is not None:
                _end(con, holder.hold_id, "released" if holder.owner == owner else "preempted",
                     f"renewed by {command}" if holder.owner == owner else f"taken by {owner} ({command})", now)
            hold = Hold(hold_id=uuid.uuid4().hex, site_id=site_id, control=control, owner=owner, command=command,
                        reason=reason[:500], acquired_at=now, lease_until=lease_until, status="held")
            con.execute(
                f"INSERT INTO control_ledger ({', '.join(HOLD_COLUMNS)}, updated_at) VALUES "
                f"({', '.join('?' * (len(HOLD_COLUMNS) + 1))})",
                [hold.hold_id, site_id, control, owner, command, hold.reason, _py(now), _py(lease_until), "held",
                 None, None, _py(now)])
        con.execute(
            "INSERT INTO control_requests (request_id, site_id, control, owner, command, reason, requested_at, "
            "decision, holder, holder_command, holder_until, hold_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [rid, site_id, control, owner, command, reason[:500], _py(now), "yielded" if blocked else "granted",
             holder.owner if holder else None, holder.command if holder else None,
             _py(holder.lease_until) if holder else None, hold.hold_id if hold else None])
        con.execute("COMMIT")
    return Decision(rid, "yielded" if blocked else "granted", holder, hold)


def finish(store: HistoryStore, decision: Decision, *, outcome: str | None, command_id: str | None,
           error: str | None, end_status: str | None, now: pd.Timestamp, refused: bool = False) -> None:
    """Record what a granted request's command did, and end its hold when asked (``released`` / ``failed``)."""
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute("UPDATE control_requests SET outcome = ?, command_id = ?, error = ?, decision = ? "
                    "WHERE request_id = ?",
                    [outcome, command_id, (error or "")[:1000] or None, "refused" if refused else decision.decision,
                     decision.request_id])
        if end_status is not None and decision.hold is not None:
            _end(con, decision.hold.hold_id, end_status, error or outcome or end_status, now)
        con.execute("COMMIT")


def holder(store: HistoryStore, site_id: str, control: str, now: pd.Timestamp) -> Hold | None:
    """The active hold of (site, control), or None. Read-only: a lapsed hold is reported as nobody."""
    with store.connect() as con:
        h = _held(con, site_id, control)
    return h if h is not None and h.active(now) else None


def lapsed(store: HistoryStore, now: pd.Timestamp, site_id: str | None = None) -> list[Hold]:
    """Holds whose lease has run out but that nobody has settled yet (the restore watch's work list)."""
    sql = (f"SELECT {', '.join(HOLD_COLUMNS)} FROM control_ledger WHERE status = 'held' AND lease_until IS NOT NULL "
           "AND lease_until <= ?")
    params: list[Any] = [_py(now)]
    if site_id is not None:
        sql += " AND site_id = ?"
        params.append(site_id)
    with store.connect() as con:
        rows = con.execute(sql + " ORDER BY lease_until", params).fetchall()
    return [Hold.from_row(r) for r in rows]


def end(store: HistoryStore, hold: Hold, status: str, reason: str, now: pd.Timestamp) -> None:
    with store.connect() as con:
        _end(con, hold.hold_id, status, reason, now)


def holds(store: HistoryStore, site_id: str) -> pd.DataFrame:
    """Every hold of a site, newest first (for the UI and status)."""
    return store.query(f"SELECT {', '.join(HOLD_COLUMNS)} FROM control_ledger WHERE site_id = ? "
                       "ORDER BY acquired_at DESC", [site_id])


def requests(store: HistoryStore, site_id: str, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Every request of a site (newest first), with the decision and the holder it yielded to."""
    sql, params = "SELECT * FROM control_requests WHERE site_id = ?", [site_id]
    if since is not None:
        sql += " AND requested_at >= ?"
        params.append(_py(since))
    return store.query(sql + " ORDER BY requested_at DESC", params)
