"""The history: one DuckDB file (default) or one PostgreSQL database (``POWERSYNC_DATABASE_URL``), versioned
migrations, idempotent upserts keyed by (site_id, interval_start).

API: ``HistoryStore(path_or_url=None)``; ``upsert_sql(table, columns, keys)`` (one row's insert-or-replace in the
SQL both engines accept); ``store.connect(read_only=False)`` (a short-lived connection, context manager);
``store.upsert(table, df, keys)`` (generic, used by every domain); typed helpers ``upsert_prices``,
``read_prices``, ``upsert_forecasts``, ``write_plan``, ``read_latest_plan``, ``record_command``,
``upsert_telemetry``, ``record_payload``. Domains add tables by adding a module ``schema_<domain>.py`` in this
package that defines ``MIGRATIONS = [("<domain>_0001_<what>", "SQL ...;"), ...]``; they are discovered and
applied once each, in name order, and recorded in ``schema_migrations``.
"""

from .backend import DATABASE_URL_ENV, database_url, history_location, is_postgres_url
from .db import HistoryStore, StorageError, stored_time, upsert_sql

__all__ = ["DATABASE_URL_ENV", "HistoryStore", "StorageError", "database_url", "history_location",
           "is_postgres_url", "stored_time", "upsert_sql"]
