"""The history store: an embedded DuckDB file, or PostgreSQL when one file is not enough.

DuckDB allows one writing *process*. Every write opens a short-lived connection under a file lock
(``<db>.lock``), so the Dagster runs, the CLI and the sensors queue politely instead of failing with
"Could not set lock on file"; a retried run re-upserts the same keys and neither loses nor duplicates rows.
On PostgreSQL (``POWERSYNC_DATABASE_URL=postgresql://...``, see ``backend.py``) the server serialises writers
itself, so there is no file lock; migrations take an advisory lock so that processes starting together apply
each one once.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from filelock import FileLock

from ..schemas import PRICE_COLUMNS
from .backend import (
    PG_COMPAT_SQL,
    PgConnection,
    PgTable,
    StorageError,
    history_location,
    is_postgres_url,
    redacted_url,
    to_pg_ddl,
)

# any fixed 64-bit key: the advisory lock that serialises migrations across processes on PostgreSQL
_MIGRATION_LOCK = 7_412_130_930


def stored_time(value: Any) -> pd.Timestamp | None:
    """A time read back from DuckDB as a UTC timestamp; None for NULL/NaT (naive values are stored as UTC)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _migrations() -> list[tuple[str, str]]:
    """All ``MIGRATIONS`` from ``storage/schema_*.py`` modules, core first, then by name."""
    found: list[tuple[str, str]] = []
    package_dir = str(Path(__file__).parent)
    for mod in sorted(pkgutil.iter_modules([package_dir]), key=lambda m: (m.name != "schema_core", m.name)):
        if mod.name.startswith("schema_"):
            found.extend(importlib.import_module(f"{__package__}.{mod.name}").MIGRATIONS)
    return found


class HistoryStore:
    """One DuckDB file or one PostgreSQL database; short transactions; versioned migrations applied on first use.

    ``location`` is a DuckDB file path or a ``postgresql://`` URL; None means ``$POWERSYNC_DATABASE_URL`` when
    set, else the default DuckDB file (``$POWERSYNC_DUCKDB`` or ``$POWERSYNC_HOME/powersync.duckdb``).
    """

    def __init__(self, location: str | Path | None = None, lock_timeout_s: float = 120.0) -> None:
        if location is None:
            location = history_location()
        self.url: str | None = str(location) if is_postgres_url(str(location)) else None
        self._migrated = False
        self._pg_tables: dict[str, PgTable] = {}
        if self.url is not None:
            self.path: Path | None = None
            self._lock: Any = nullcontext()
            return
        self.path = Path(location)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout_s)

    @property
    def location(self) -> str:
        """What to pass to ``HistoryStore(...)`` to open this same history in another process or thread."""
        return self.url or str(self.path)

    @property
    def backend(self) -> str:
        """``duckdb`` or ``postgresql``."""
        return "postgresql" if self.url else "duckdb"

    def describe(self) -> str:
        """Where the history is, for messages (a URL without its password)."""
        return redacted_url(self.url) if self.url else str(self.path)

    # -- connections -------------------------------------------------------------------------------
    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[Any]:
        """A short-lived connection. Writers hold the file lock for the connection's lifetime."""
        if not self._migrated:
            self.migrate()
        with self._lock:
            con = self._open()
            try:
                yield con
            finally:
                con.close()

    def _open(self) -> Any:
        if self.url is not None:
            return PgConnection(self.url)
        delay = 0.05
        for attempt in range(12):
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as exc:  # another process (e.g. a notebook) holds the file
                if attempt == 11:
                    raise StorageError(f"DuckDB file {self.path} is locked by another process: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied now."""
        applied_now: list[str] = []
        with self._lock:
            con = self._open()
            pg = self.url is not None
            try:
                if pg:  # one process migrates at a time; the others wait here and then find nothing to do
                    con.execute("SELECT pg_advisory_lock(?)", [_MIGRATION_LOCK])
                    con.execute(PG_COMPAT_SQL)
                con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)"
                )
                done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
                for name, sql in _migrations():
                    if name in done:
                        continue
                    con.execute("BEGIN")
                    con.execute(to_pg_ddl(sql) if pg else sql)
                    con.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
                    con.execute("COMMIT")
                    applied_now.append(name)
                if pg:
                    con.execute("SELECT pg_advisory_unlock(?)", [_MIGRATION_LOCK])
            finally:
                con.close()
        self._migrated = True
        self._pg_tables.clear()
        return applied_now

    # -- generic -----------------------------------------------------------------------------------
    def upsert(self, table: str, df: pd.DataFrame, keys: Sequence[str]) -> int:
        """Insert or replace rows of ``df`` (columns named as the table's) keyed by the table's primary key; of a key
        repeated in ``df`` the last row wins."""
        if df.empty:
            return 0
        frame = df.reset_index(drop=False) if df.index.name else df
        frame = frame.loc[:, ~frame.columns.duplicated()]
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise StorageError(f"upsert into {table}: key column(s) {missing} missing")
        if self.url is not None:
            return self._upsert_pg(table, frame)
        with self.connect() as con:
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            use = [c for c in frame.columns if c in cols]
            payload = frame[use].drop_duplicates(list(keys), keep="last")  # a repeated key: its last row wins
            con.register("_upsert_src", payload)
            collist = ", ".join(f'"{c}"' for c in use)
            con.execute("BEGIN")
            con.execute(f"INSERT OR REPLACE INTO {table} ({collist}) SELECT {collist} FROM _upsert_src")
            con.execute("COMMIT")
            con.unregister("_upsert_src")
        return len(payload)

    def _upsert_pg(self, table: str, frame: pd.DataFrame) -> int:
        """``INSERT ... ON CONFLICT (primary key) DO UPDATE`` in one transaction (``PgTable.upsert``); a table
        without a key appends."""
        with self.connect() as con:
            return self.pg_write(con, table, [frame])

    def pg_write(self, con: PgConnection, table: str, frames: Sequence[pd.DataFrame]) -> int:
        """Upsert the frames' rows into ``table`` in one transaction: one ``PgTable.upsert`` per set of columns
        (frames with the same columns go in together). Returns the rows written."""
        target = self.pg_table(con, table)
        by_columns: dict[tuple[str, ...], list[pd.DataFrame]] = {}
        for frame in frames:
            by_columns.setdefault(tuple(frame.columns), []).append(frame)
        rows = 0
        con.execute("BEGIN")
        try:
            for parts in by_columns.values():
                rows += target.upsert(con, pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return rows

    def pg_table(self, con: PgConnection, table: str) -> PgTable:
        """The table's columns and key, read once per store (the schema changes only by migrations)."""
        found = self._pg_tables.get(table)
        if found is None:
            found = con.table(table)
            if not found.types:
                raise StorageError(f"upsert into {table}: no such table in {self.describe()}")
            self._pg_tables[table] = found
        return found

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    # -- prices ------------------------------------------------------------------------------------
    def upsert_prices(self, site_id: str, frame: pd.DataFrame) -> int:
        df = frame.copy()
        df["site_id"] = site_id
        if "rrp" not in df:
            df["rrp"] = float("nan")
        return self.upsert("prices", df, ["site_id", "interval_start"])

    def read_prices(self, site_id: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Stored prices as a price frame (UTC index), ``start <= interval_start < end``."""
        sql = f"SELECT interval_start, {', '.join(PRICE_COLUMNS)}, rrp, filled, provenance FROM prices WHERE site_id = ?"
        params: list[Any] = [site_id]
        if start is not None:
            sql += " AND interval_start >= ?"
            params.append(pd.Timestamp(start).to_pydatetime())
        if end is not None:
            sql += " AND interval_start < ?"
            params.append(pd.Timestamp(end).to_pydatetime())
        df = self.query(sql + " ORDER BY interval_start", params)
        df["filled"] = df["filled"].astype("boolean").fillna(False).astype(bool)
        return _utc_index(df, "interval_start", ["fetched_at"])

    # -- forecasts ---------------------------------------------------------------------------------
    def upsert_forecasts(self, site_id: str, kind: str, series: pd.Series | pd.DataFrame, model: str,
                         issued_at: pd.Timestamp) -> int:
        df = series.to_frame("value") if isinstance(series, pd.Series) else series.copy()
        df["site_id"], df["kind"], df["model"], df["issued_at"] = site_id, kind, model, issued_at
        df.index.name = "interval_start"
        return self.upsert("forecasts", df, ["site_id", "kind", "interval_start"])

    # -- plans -------------------------------------------------------------------------------------
    def write_plan(self, site_id: str, plan_id: str, meta: dict[str, Any], intervals: pd.DataFrame) -> int:
        """Store a plan's summary and its intervals; re-writing the same plan_id replaces it."""
        row = pd.DataFrame([{**meta, "plan_id": plan_id, "site_id": site_id}])
        self.upsert("plans", row, ["plan_id"])
        df = intervals.copy()
        df["site_id"], df["plan_id"] = site_id, plan_id
        df.index.name = "interval_start"
        return self.upsert("schedule", df, ["site_id", "plan_id", "interval_start"])

    def read_latest_plan(self, site_id: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        meta = self.query(
            "SELECT * FROM plans WHERE site_id = ? ORDER BY created_at DESC, plan_start DESC LIMIT 1", [site_id]
        )
        return self._plan_rows(site_id, meta)

    def read_plan(self, site_id: str, plan_id: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """One stored plan (summary, intervals), or None: a run acts on the plan of its own slot, never an older one."""
        meta = self.query("SELECT * FROM plans WHERE site_id = ? AND plan_id = ?", [site_id, plan_id])
        return self._plan_rows(site_id, meta)

    def _plan_rows(self, site_id: str, meta: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame] | None:
        if meta.empty:
            return None
        m = meta.iloc[0].to_dict()
        rows = self.query(
            "SELECT * FROM schedule WHERE site_id = ? AND plan_id = ? ORDER BY interval_start",
            [site_id, m["plan_id"]],
        ).drop(columns=["site_id", "plan_id"])
        return m, _utc_index(rows, "interval_start")

    # -- commands, telemetry, payloads -------------------------------------------------------------
    def record_command(self, site_id: str, device_kind: str, command: str, outcome: str, *,
                       params: dict[str, Any] | None = None, written: Any = None, readback: Any = None,
                       error: str | None = None, interval_start: pd.Timestamp | None = None,
                       command_id: str | None = None, issued_at: pd.Timestamp | None = None,
                       owner: str | None = None) -> str:
        """Append one command record (its id is returned; passing the same id replaces the record). ``owner`` is
        whom the write was made for (the arbiter's grant; None for reads and unarbitrated drivers)."""
        cid = command_id or uuid.uuid4().hex
        row = {
            "command_id": cid, "site_id": site_id, "interval_start": interval_start,
            "issued_at": issued_at or pd.Timestamp.now(tz="UTC"), "device_kind": device_kind, "command": command,
            "params": json.dumps(params or {}, default=str), "written": json.dumps(written, default=str),
            "readback": json.dumps(readback, default=str), "outcome": outcome, "error": error, "owner": owner,
        }
        self.upsert("commands", pd.DataFrame([row]), ["command_id"])
        return cid

    def upsert_telemetry(self, site_id: str, ts: pd.Timestamp, values: dict[str, Any]) -> int:
        row = {**values, "site_id": site_id, "ts": ts}
        if "raw" in row and not isinstance(row["raw"], str):
            row["raw"] = json.dumps(row["raw"], default=str)
        return self.upsert("telemetry", pd.DataFrame([row]), ["site_id", "ts"])

    def record_payload(self, site_id: str, fmt: str, payload: dict[str, Any], payload_hash: str, sent: bool,
                       reply: Any = None, note: str | None = None, created_at: pd.Timestamp | None = None,
                       slot: pd.Timestamp | None = None) -> str:
        """Store one tariff decision. With ``slot`` (the planning slot it was made for) the row is keyed by
        (site, format, slot): a re-run of the same slot replaces its row instead of adding a copy."""
        pid = payload_slot_id(site_id, fmt, slot) if slot is not None else uuid.uuid4().hex
        row = {
            "payload_id": pid, "site_id": site_id, "created_at": created_at or pd.Timestamp.now(tz="UTC"),
            "format": fmt, "payload": json.dumps(payload), "payload_hash": payload_hash, "sent": sent,
            "reply": json.dumps(reply, default=str), "note": note,
        }
        self.upsert("tariff_payloads", pd.DataFrame([row]), ["payload_id"])
        return pid


def upsert_sql(table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...) ON CONFLICT (keys) DO UPDATE SET`` the other columns: one
    row's insert-or-replace in the dialect DuckDB and PostgreSQL share (DuckDB's ``INSERT OR REPLACE`` is not)."""
    cols = ", ".join(columns)
    sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in columns)}) ON CONFLICT ({', '.join(keys)}) "
    rest = [c for c in columns if c not in keys]
    return sql + ("DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest) if rest else "DO NOTHING")


def payload_slot_id(site_id: str, fmt: str, slot: pd.Timestamp) -> str:
    """The ``tariff_payloads`` key of a site's decision for one planning slot and format."""
    return f"{site_id}/{fmt}/{pd.Timestamp(slot).tz_convert('UTC').strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _utc_index(df: pd.DataFrame, col: str, other_ts: Sequence[str] = ()) -> pd.DataFrame:
    if df.empty:
        out = df.drop(columns=[col]) if col in df else df
        out.index = pd.DatetimeIndex([], tz="UTC", name=col)
        return out
    df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[ns, UTC]")
    for c in other_ts:
        if c in df:
            df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[ns, UTC]")
    return df.set_index(col)
