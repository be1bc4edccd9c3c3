"""Tariff-domain tables: the curtailment state machine per site and a log of its decisions.

``curtailment_state`` holds one row per site (what the rule decided last, since when, and whether the devices
were actually brought into that state), so the rule's hold time and hysteresis survive restarts and a failed
action is retried on the next evaluation. ``curtailment_events`` logs every evaluation that switched or retried.
"""

MIGRATIONS = [
    (
        "tariffs_0001_curtailment",
        """
        CREATE TABLE IF NOT EXISTS curtailment_state (
            site_id VARCHAR PRIMARY KEY,
            curtailed BOOLEAN NOT NULL,
            since TIMESTAMPTZ,
            applied BOOLEAN NOT NULL,          -- devices confirmed in the decided state
            export_price DOUBLE,               -- $/kWh at the last evaluation
            reason VARCHAR,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS curtailment_events (
            site_id VARCHAR NOT NULL,
            ts TIMESTAMPTZ NOT NULL,
            curtailed BOOLEAN NOT NULL,
            export_price DOUBLE,
            reason VARCHAR,
            dc_outcome VARCHAR,                -- ok | refused | error | skipped
            ac_outcome VARCHAR,
            detail JSON,
            PRIMARY KEY (site_id, ts)
        );
        """,
    ),
]
