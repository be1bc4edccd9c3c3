"""One held DuckDB connection for a stage of work over many sites (the fleet planning cycle).

``HistoryStore`` opens a connection per call: right for a sensor or a CLI call, but a planning stage over
1,000 sites makes ~10 store calls per site, and each open/close of the file (catalog load, checkpoint on close)
costs tens of milliseconds. Inside ``held()`` every call of the store reuses one connection (a cursor per
call, so threads of the stage may use it at once) and writes go to DuckDB's write-ahead log, checkpointed once
when the stage ends. Each write stays its own short transaction: a site's failed statement never aborts the
other sites' rows, and a site reads back what it just wrote.

The file lock is held for the whole stage (DuckDB admits one writing process); it is released and taken again
every ``yield_every_s`` seconds between sites (:meth:`StageStore.breathe`) so that the sensors' short writes
(the spike watch) wait at most that long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .db import HistoryStore


class StageStore(HistoryStore):
    """A ``HistoryStore`` that, inside :meth:`held`, serves every call from one open connection."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0, yield_every_s: float = 5.0) -> None:
        super().__init__(path, lock_timeout_s)
        self.yield_every_s = yield_every_s
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_lock = threading.RLock()  # guards opening cursors and swapping the connection
        self._users = 0  # cursors open now (breathe waits for none)
        self._idle = threading.Condition(self._con_lock)
        self._held_since = 0.0
        self._owner: int | None = None  # the thread that took the file lock (only it may release it)

    @contextmanager
    def held(self) -> Iterator[StageStore]:
        """Hold the file lock and one connection until the block ends (nested use is a no-op)."""
        if self._con is not None:
            yield self
            return
        if not self._migrated:
            self.migrate()
        self._take()
        try:
            yield self
        finally:
            self._release()

    def _take(self) -> None:
        self._lock.acquire()
        try:
            self._con = self._open()
        except BaseException:
            self._lock.release()
            raise
        self._held_since = time.monotonic()
        self._owner = threading.get_ident()

    def _release(self) -> None:
        with self._con_lock:
            while self._users:
                self._idle.wait()
            con, self._con = self._con, None
        try:
            if con is not None:
                con.close()
        finally:
            self._lock.release()

    def breathe(self) -> None:
        """Let other processes write if the connection has been held ``yield_every_s``: close it (once no
        cursor is in use), release the lock, take both again. Only the thread that entered :meth:`held` breathes
        (the file lock belongs to it); from other threads this is a no-op."""
        if (self._con is None or self._owner != threading.get_ident()
                or time.monotonic() - self._held_since < self.yield_every_s):
            return
        with self._con_lock:
            if time.monotonic() - self._held_since < self.yield_every_s:
                return  # another thread just did it
            self._release()
            self._take()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is None:
            with super().connect(read_only) as con:
                yield con
            return
        with self._con_lock:
            cur = self._con.cursor()
            self._users += 1
        try:
            yield cur
        finally:
            cur.close()
            with self._con_lock:
                self._users -= 1
                if not self._users:
                    self._idle.notify_all()
