"""One held DuckDB connection for a stage of work over many sites (the fleet planning cycle).

``HistoryStore`` opens a connection per call: right for a sensor or a CLI call, but a planning stage over
1,000 sites makes ~10 store calls per site, and each open/close of the file (catalog load, checkpoint on close)
costs tens of milliseconds. Inside ``held()`` every call of the store reuses one connection (a cursor per
call, so threads of the stage may use it at once) and writes go to DuckDB's write-ahead log, checkpointed once
when the stage ends. Each write stays its own short transaction: a site's failed statement never aborts the
other sites' rows, and a site reads back what it just wrote.

Tables named in ``deferred`` (those the stage writes and does not read back, e.g. ``forecasts``, ``schedule``)
are not written per site at all: their rows are collected and written when the stage ends, one
``INSERT OR REPLACE`` per table in one transaction (a key written twice keeps its last row, as the per-site
writes would). Should that batch fail, the rows are written one site's frame at a time so that one bad frame
loses only itself, and the error is raised after the rest are stored.

The file lock is held for the whole stage (DuckDB admits one writing process); it is released and taken again
every ``yield_every_s`` seconds between sites (:meth:`StageStore.breathe`) so that the sensors' short writes
(the spike watch) wait at most that long.

On PostgreSQL the server takes concurrent writers, so nothing is locked: inside ``held()`` each thread of the
stage keeps one connection for all its calls (instead of one connection per call), and the deferred tables are
written at the stage's end in one transaction, one ``COPY`` and ``INSERT ... ON CONFLICT`` per table (``PgTable.upsert``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import psycopg

from .backend import PgConnection
from .db import HistoryStore, StorageError

_BATCH_ERRORS = (duckdb.Error, psycopg.Error, StorageError, ValueError, TypeError)


class StageStore(HistoryStore):
    """A ``HistoryStore`` that, inside :meth:`held`, serves every call from one open connection."""

    def __init__(self, path: str | Path | None, lock_timeout_s: float = 120.0, yield_every_s: float = 10.0,
                 deferred: Iterable[str] = ()) -> None:
        super().__init__(path, lock_timeout_s)
        self.yield_every_s = yield_every_s
        self.deferred = frozenset(deferred)
        self._pending: dict[str, list[tuple[pd.DataFrame, tuple[str, ...]]]] = {}
        self._pending_lock = threading.Lock()
        self.batched_rows = 0  # rows written by the end-of-stage batch (for the stage's metadata)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_lock = threading.RLock()  # guards opening cursors and swapping the connection
        self._users = 0  # cursors open now (breathe waits for none)
        self._idle = threading.Condition(self._con_lock)
        self._held_since = 0.0
        self._owner: int | None = None  # the thread that took the file lock (only it may release it)
        self._draining = False  # breathe() is waiting for the open cursors to close
        self._depth = threading.local()  # cursors open on this thread (a nested call never waits on a drain)
        self._pg_held = False  # inside held() on PostgreSQL: a connection per thread, kept for the stage
        self._pg_local = threading.local()
        self._pg_open: list[PgConnection] = []

    @contextmanager
    def held(self) -> Iterator[StageStore]:
        """Hold the file lock and one connection until the block ends (nested use is a no-op). On PostgreSQL
        no lock: a connection per thread of the stage, kept until the block ends."""
        if self._con is not None or self._pg_held:
            yield self
            return
        if not self._migrated:
            self.migrate()
        self._take()
        try:
            yield self
        finally:
            try:
                self.flush()
            finally:
                self._release()

    # -- deferred writes ---------------------------------------------------------------------------
    def upsert(self, table: str, df: pd.DataFrame, keys: Sequence[str]) -> int:
        if (self._con is None and not self._pg_held) or table not in self.deferred or df.empty:
            return super().upsert(table, df, keys)
        frame = df.reset_index(drop=False) if df.index.name else df
        frame = frame.loc[:, ~frame.columns.duplicated()]
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise StorageError(f"upsert into {table}: key column(s) {missing} missing")
        with self._pending_lock:
            self._pending.setdefault(table, []).append((frame.copy(), tuple(keys)))
        return len(frame)

    def flush(self) -> int:
        """Write the deferred rows: per table, one statement in one transaction; returns the rows written."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        written = 0
        errors: list[str] = []
        write = self._write_batch_pg if self.url is not None else _write_batch
        with self.connect() as con:
            for table, frames in pending.items():
                try:
                    written += write(con, table, frames)
                except _BATCH_ERRORS as exc:  # one bad frame: store the others one by one, then report
                    errors.append(f"{table}: {exc}")
                    for frame, keys in frames:
                        try:
                            written += write(con, table, [(frame, keys)])
                        except _BATCH_ERRORS as one:
                            errors.append(f"{table}: {one}")
        self.batched_rows += written
        if errors:
            raise StorageError("deferred writes failed: " + "; ".join(errors[:5]))
        return written

    def _take(self) -> None:
        if self.url is not None:  # no lock on PostgreSQL: threads open their connections on first use
            self._pg_held = True
            return
        self._lock.acquire()
        try:
            self._con = self._open()
        except BaseException:
            self._lock.release()
            raise
        self._held_since = time.monotonic()
        self._owner = threading.get_ident()

    def _release(self) -> None:
        if self.url is not None:
            self._pg_held = False
            self._close_pg()
            return
        with self._con_lock:
            self._drain()
            con, self._con = self._con, None
        try:
            if con is not None:
                con.close()
        finally:
            self._lock.release()

    def _drain(self) -> None:
        """Wait (holding ``_con_lock``) until no cursor is open; new cursors wait meanwhile."""
        self._draining = True
        try:
            while self._users:
                self._idle.wait()
        finally:
            self._draining = False

    def breathe(self) -> None:
        """Let other processes write if the connection has been held ``yield_every_s``: close it (once no
        cursor is in use), release the file lock, take both again. Threads of the stage wait for the new
        connection meanwhile. Only the thread that entered :meth:`held` breathes (the file lock belongs to it);
        from other threads this is a no-op."""
        if (self._con is None or self._owner != threading.get_ident()
                or time.monotonic() - self._held_since < self.yield_every_s):
            return
        with self._con_lock:
            self._drain()
            assert self._con is not None
            self._con.close()
            self._lock.release()
            try:
                self._lock.acquire()
                self._con = self._open()
            finally:
                self._held_since = time.monotonic()
                self._idle.notify_all()

    def _write_batch_pg(self, con: PgConnection, table: str,
                        frames: list[tuple[pd.DataFrame, tuple[str, ...]]]) -> int:
        """The frames' rows in one transaction (``HistoryStore.pg_write``: the table's primary key decides)."""
        return self.pg_write(con, table, [frame for frame, _ in frames])

    def _pg_connection(self) -> PgConnection:
        """This thread's connection for the stage (opened on its first call)."""
        con = getattr(self._pg_local, "con", None)
        if con is None:
            con = self._pg_local.con = self._open()
            with self._pending_lock:
                self._pg_open.append(con)
        return con

    def _close_pg(self) -> None:
        with self._pending_lock:
            opened, self._pg_open = self._pg_open, []
        self._pg_local = threading.local()
        for con in opened:
            con.close()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._pg_held and not getattr(self._pg_local, "busy", False):
            con = self._pg_connection()
            self._pg_local.busy = True  # a nested call on this thread gets its own connection (own transaction)
            try:
                yield con
            finally:
                self._pg_local.busy = False
                try:
                    con.idle()
                except psycopg.Error:  # the connection broke: the thread's next call opens a new one
                    self._pg_local.con = None
            return
        if self._con is None:
            with super().connect(read_only) as con:
                yield con
            return
        nested = getattr(self._depth, "n", 0) > 0  # this thread already has a cursor: never wait on a drain
        with self._con_lock:
            while self._draining and not nested:
                self._idle.wait()
            if self._con is None:
                raise RuntimeError(f"the stage store of {self.path} was closed while in use")
            cur = self._con.cursor()
            self._users += 1
        self._depth.n = getattr(self._depth, "n", 0) + 1
        try:
            yield cur
        finally:
            self._depth.n -= 1
            cur.close()
            with self._con_lock:
                self._users -= 1
                self._idle.notify_all()


def _write_batch(con: duckdb.DuckDBPyConnection, table: str, frames: list[tuple[pd.DataFrame, tuple[str, ...]]]) -> int:
    """``INSERT OR REPLACE`` the frames' rows in one transaction; the last row of a repeated key wins."""
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    by_columns: dict[tuple[str, ...], list[pd.DataFrame]] = {}
    keys = frames[0][1]
    for frame, _ in frames:
        use = tuple(c for c in frame.columns if c in cols)
        by_columns.setdefault(use, []).append(frame[list(use)])
    rows = 0
    con.execute("BEGIN")
    try:
        for use, parts in by_columns.items():
            payload = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            payload = payload.drop_duplicates(list(keys), keep="last")
            con.register("_batch_src", payload)
            collist = ", ".join(f'"{c}"' for c in use)
            con.execute(f"INSERT OR REPLACE INTO {table} ({collist}) SELECT {collist} FROM _batch_src")
            con.unregister("_batch_src")
            rows += len(payload)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return rows
