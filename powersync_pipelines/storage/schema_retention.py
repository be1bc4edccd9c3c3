"""History retention bookkeeping (``storage/retention.py``).

``history_retention``: per site, the instant before which every plan has been compacted (only its ``schedule``
rows still in effect are left), so the daily compaction looks only at plans created since its last run instead
of re-reading the whole history each day.
"""

MIGRATIONS = [
    (
        "retention_0001_watermark",
        """
        CREATE TABLE IF NOT EXISTS history_retention (
            site_id VARCHAR PRIMARY KEY,
            compacted_before TIMESTAMPTZ NOT NULL,  -- plans created before this instant hold only rows in effect
            keep_days DOUBLE NOT NULL,              -- the retention age of the run that set it
            updated_at TIMESTAMPTZ NOT NULL
        );
        """,
    ),
]
