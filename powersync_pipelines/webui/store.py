"""A history store the page can only read: every connection is DuckDB ``read_only`` and short.

The pipeline is the file's single writer. DuckDB lets one process open a file for writing; the page opens it
read-only for the length of one query, under the same file lock the writers take, so a writer waits at most one
query (milliseconds) and never finds the file held by the page. No migration is ever run from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ..storage import HistoryStore, StorageError


class ReadOnlyHistory(HistoryStore):
    """``HistoryStore`` whose reads use read-only connections; any write fails inside DuckDB."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0) -> None:
        if not Path(path).exists():
            raise StorageError(f"no history yet at {path}: run `powersync demo` or start the pipeline first")
        super().__init__(path, lock_timeout_s)
        self._migrated = True  # the writer migrates; a reader never changes the schema

    @contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            con = duckdb.connect(str(self.path), read_only=True)
            try:
                yield con
            finally:
                con.close()

    def migrate(self) -> list[str]:
        return []
