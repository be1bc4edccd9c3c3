"""DuckDB history: one file, versioned migrations, idempotent upserts keyed by (site_id, interval_start).

API: ``HistoryStore(path)``; ``store.connect(read_only=False)`` (a short-lived connection, context manager);
``store.upsert(table, df, keys)`` (generic, used by every domain); typed helpers ``upsert_prices``,
``read_prices``, ``upsert_forecasts``, ``write_plan``, ``read_latest_plan``, ``record_command``,
``upsert_telemetry``, ``record_payload``. Domains add tables by adding a module ``schema_<domain>.py`` in this
package that defines ``MIGRATIONS = [("<domain>_0001_<what>", "SQL ...;"), ...]``; they are discovered and
applied once each, in name order, and recorded in ``schema_migrations``.
"""

from .db import HistoryStore, StorageError, stored_time

__all__ = ["HistoryStore", "StorageError", "stored_time"]
