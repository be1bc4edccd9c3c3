"""The durable setpoint hand-off between the planning cycle and the OCPP central system (``ev_setpoints``).

They are two processes: the planner cannot hold the charge point's websocket. So the planner writes what it
wants (``request_setpoint`` / ``request_command``) and reads the answer later (``setpoint_outcome`` or
``wait_for_outcome``); the central system claims pending rows (``claim_pending``), sends them and writes the
answer (``answer``). A newer request for the same charge point supersedes an older one still pending, and a
request not sent by its ``expires_at`` is answered ``expired``: a stale limit is never applied late.

Statuses: ``pending`` -> ``sent`` -> ``applied`` (accepted and read back) | ``accepted`` (accepted, read-back
not supported by the charge point) | ``rejected`` | ``failed``; or ``expired`` / ``superseded`` unsent.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..storage import HistoryStore

COMMANDS = ("limit", "start", "stop", "clear_profile")
UNITS = ("A", "W")
FINAL = ("applied", "accepted", "rejected", "failed", "expired", "superseded")
DEFAULT_TTL = pd.Timedelta(minutes=10)


class SetpointError(ValueError):
    """A setpoint request that cannot be stored as given (one line)."""


@dataclass(frozen=True)
class Setpoint:
    setpoint_id: str
    site_id: str
    charge_point_id: str
    connector_id: int
    command: str
    limit_value: float | None
    unit: str | None
    requested_at: pd.Timestamp
    expires_at: pd.Timestamp
    status: str
    outcome: str | None = None
    sent_value: float | None = None
    answered_at: pd.Timestamp | None = None
    reply: Any = None
    requested_by: str = "ev"

    @property
    def done(self) -> bool:
        return self.status in FINAL


def _now(now: pd.Timestamp | None) -> pd.Timestamp:
    return (now if now is not None else pd.Timestamp.now(tz="UTC")).tz_convert("UTC")


def _insert(store: HistoryStore, row: dict[str, Any]) -> str:
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute(
            "UPDATE ev_setpoints SET status = 'superseded', outcome = 'a newer request replaced it', answered_at = ? "
            "WHERE charge_point_id = ? AND connector_id = ? AND status = 'pending'",
            [row["requested_at"], row["charge_point_id"], row["connector_id"]],
        )
        cols = list(row)
        con.execute(f"INSERT INTO ev_setpoints ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [row[c] for c in cols])
        con.execute("COMMIT")
    return row["setpoint_id"]


def request_setpoint(store: HistoryStore, site_id: str, charge_point_id: str, limit: float, unit: str = "A", *,
                     connector_id: int = 1, requested_by: str = "ev", ttl: pd.Timedelta = DEFAULT_TTL,
                     now: pd.Timestamp | None = None) -> str:
    """Ask the central system to limit ``charge_point_id`` to ``limit`` (A per phase, or W total); returns the id.

    0 pauses charging. The central system clamps to the charger's max and sends 0 below its min.
    """
    if unit not in UNITS:
        raise SetpointError(f"setpoint unit must be A or W, got {unit!r}")
    if not isinstance(limit, int | float) or isinstance(limit, bool) or not math.isfinite(limit) or limit < 0:
        raise SetpointError(f"setpoint limit must be a finite number >= 0, got {limit!r}")
    return _request(store, site_id, charge_point_id, "limit", float(limit), unit, connector_id, requested_by, ttl, now)


def request_command(store: HistoryStore, site_id: str, charge_point_id: str, command: str, *, connector_id: int = 1,
                    requested_by: str = "ev", ttl: pd.Timedelta = DEFAULT_TTL, now: pd.Timestamp | None = None) -> str:
    """``start`` (RemoteStartTransaction), ``stop`` (RemoteStopTransaction) or ``clear_profile``."""
    if command not in COMMANDS or command == "limit":
        raise SetpointError(f"command must be one of start, stop, clear_profile, got {command!r}")
    return _request(store, site_id, charge_point_id, command, None, None, connector_id, requested_by, ttl, now)


def _request(store: HistoryStore, site_id: str, cp: str, command: str, limit: float | None, unit: str | None,
             connector_id: int, requested_by: str, ttl: pd.Timedelta, now: pd.Timestamp | None) -> str:
    if not cp:
        raise SetpointError("charge_point_id is empty")
    if not isinstance(connector_id, int) or connector_id < 1:
        raise SetpointError(f"connector_id must be an integer >= 1, got {connector_id!r}")
    t = _now(now)
    return _insert(store, {
        "setpoint_id": uuid.uuid4().hex, "site_id": site_id, "charge_point_id": cp, "connector_id": connector_id,
        "command": command, "limit_value": limit, "unit": unit, "requested_at": t, "requested_by": requested_by,
        "expires_at": t + ttl, "status": "pending",
    })


def _row(r: dict[str, Any]) -> Setpoint:
    def ts(v: Any) -> pd.Timestamp | None:
        return None if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)) else pd.Timestamp(v).tz_convert("UTC")

    def num(v: Any) -> float | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    reply = r.get("reply")
    return Setpoint(r["setpoint_id"], r["site_id"], r["charge_point_id"], int(r["connector_id"]), r["command"],
                    num(r.get("limit_value")), r.get("unit"), ts(r["requested_at"]), ts(r["expires_at"]), r["status"],
                    r.get("outcome"), num(r.get("sent_value")), ts(r.get("answered_at")),
                    json.loads(reply) if isinstance(reply, str) else reply, str(r.get("requested_by") or "ev"))


def _select(store: HistoryStore, where: str, params: list[Any]) -> list[Setpoint]:
    with store.connect() as con:
        cur = con.execute(f"SELECT * FROM ev_setpoints WHERE {where} ORDER BY requested_at", params)
        names = [d[0] for d in cur.description]
        return [_row(dict(zip(names, rec, strict=True))) for rec in cur.fetchall()]


def setpoint_outcome(store: HistoryStore, setpoint_id: str) -> Setpoint:
    """The request as it stands now (``status``, ``outcome``, ``sent_value``, ``reply``)."""
    rows = _select(store, "setpoint_id = ?", [setpoint_id])
    if not rows:
        raise SetpointError(f"no setpoint {setpoint_id!r}")
    return rows[0]


def wait_for_outcome(store: HistoryStore, setpoint_id: str, timeout_s: float = 60.0, poll_s: float = 0.5) -> Setpoint:
    """Poll until the central system answered (or ``timeout_s``); returns the last state either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        sp = setpoint_outcome(store, setpoint_id)
        if sp.done or time.monotonic() >= deadline:
            return sp
        time.sleep(poll_s)


def latest_applied(store: HistoryStore, charge_point_id: str, connector_id: int = 1) -> Setpoint | None:
    """The last limit the charge point accepted (re-sent after it reboots)."""
    rows = _select(store, "charge_point_id = ? AND connector_id = ? AND command = 'limit' AND status IN ('applied', 'accepted')",
                   [charge_point_id, connector_id])
    return rows[-1] if rows else None


# -- the central system's side -------------------------------------------------------------------------------
def claim_pending(store: HistoryStore, charge_point_id: str, now: pd.Timestamp | None = None) -> list[Setpoint]:
    """Mark this charge point's pending requests ``sent`` and return them; expired ones are answered as such."""
    t = _now(now)
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute("UPDATE ev_setpoints SET status = 'expired', outcome = 'not sent before it expired', answered_at = ? "
                    "WHERE charge_point_id = ? AND status = 'pending' AND expires_at < ?", [t, charge_point_id, t])
        cur = con.execute("UPDATE ev_setpoints SET status = 'sent' WHERE charge_point_id = ? AND status = 'pending' "
                          "RETURNING *", [charge_point_id])
        names = [d[0] for d in cur.description]
        rows = [_row(dict(zip(names, rec, strict=True))) for rec in cur.fetchall()]
        con.execute("COMMIT")
    return sorted(rows, key=lambda s: s.requested_at)


def answer(store: HistoryStore, setpoint_id: str, status: str, outcome: str, *, sent_value: float | None = None,
           transaction_id: int | None = None, profile: Any = None, reply: Any = None,
           now: pd.Timestamp | None = None) -> None:
    if status not in FINAL:
        raise SetpointError(f"answer status must be one of {', '.join(FINAL)}, got {status!r}")
    with store.connect() as con:
        con.execute(
            "UPDATE ev_setpoints SET status = ?, outcome = ?, sent_value = ?, transaction_id = ?, profile = ?, reply = ?, "
            "answered_at = ? WHERE setpoint_id = ?",
            [status, outcome, sent_value, transaction_id, json.dumps(profile, default=str), json.dumps(reply, default=str),
             _now(now), setpoint_id],
        )
