"""Device tables: the state saved before a forced mode / curtailment / spike, so it survives a crash.

One row per (site, slot). ``status`` is ``active`` while a restore is pending (``restore_failed`` after a failed
attempt, retried later) and ``restored`` once the saved state was written back and read back. The full command
history lives in ``commands``; this table only answers "what must be put back, and when".
"""

MIGRATIONS = [
    (
        "devices_0001_saved_state",
        """
        CREATE TABLE IF NOT EXISTS device_saved_state (
            site_id VARCHAR NOT NULL,
            slot VARCHAR NOT NULL,              -- forced | curtail | spike
            device_kind VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,            -- the command that took control, e.g. force_charge, apply:CHARGE
            state JSON NOT NULL,                -- the device's settings before the first write
            saved_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ,             -- restore at/after this instant (NULL = only on request)
            status VARCHAR NOT NULL,            -- active | restore_failed | restored
            updated_at TIMESTAMPTZ NOT NULL,
            restored_at TIMESTAMPTZ,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error VARCHAR,
            PRIMARY KEY (site_id, slot)
        );
        """,
    ),
]
