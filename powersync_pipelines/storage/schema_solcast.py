"""Solcast tables: the forecast cache and the call ledger (``forecasts/solcast.py``).

* ``solcast_forecasts``: one row per (rooftop resource, 30-min period) as Solcast last sent it. A newer
  response replaces the periods it covers; past periods stay, so what Solcast predicted for an interval can
  later be compared with what was measured, and the nowcast can ask what it predicted for the last half hour.
* ``solcast_calls``: every call, counted *before* it is sent (status ``pending``) so that two processes can
  never both spend the last call of the day. ``account`` is a short SHA-256 fingerprint of the API key (the
  key itself is never stored): the quota belongs to the key, whichever site or sites file uses it.
  ``utc_day`` is the quota day (Solcast resets at 00:00 UTC).
"""

MIGRATIONS = [
    (
        "solcast_0001_cache_and_calls",
        """
        CREATE TABLE IF NOT EXISTS solcast_forecasts (
            resource_id VARCHAR NOT NULL,
            interval_start TIMESTAMPTZ NOT NULL,   -- period_end - period
            period_minutes INTEGER NOT NULL,
            pv_estimate DOUBLE NOT NULL,           -- P50, mean kW over the period
            pv_estimate10 DOUBLE,                  -- P10 (pessimistic)
            pv_estimate90 DOUBLE,                  -- P90 (optimistic)
            fetched_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (resource_id, interval_start)
        );
        CREATE TABLE IF NOT EXISTS solcast_calls (
            call_id VARCHAR PRIMARY KEY,
            account VARCHAR NOT NULL,              -- sha256(api key)[:12]
            resource_id VARCHAR NOT NULL,
            utc_day DATE NOT NULL,
            requested_at TIMESTAMPTZ NOT NULL,
            status VARCHAR NOT NULL,               -- pending | ok | quota_exhausted | rejected | failed
            reason VARCHAR,                        -- http_429, http_500, timeout, malformed, ...
            http_status INTEGER,
            periods INTEGER,
            error VARCHAR
        );
        """,
    ),
]
