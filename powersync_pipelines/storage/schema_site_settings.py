"""Per-site switch values set by a service call (``set_optimization``, ``set_auto_tou_sync``,
``set_cost_function``). A row overrides the sites file's value for that site and setting until the next call;
every process (CLI, Dagster, Home Assistant) reads the same row."""

MIGRATIONS = [
    (
        "site_settings_0001_table",
        """
        CREATE TABLE IF NOT EXISTS site_settings (
            site_id VARCHAR NOT NULL,
            setting VARCHAR NOT NULL,            -- optimization | auto_tou_sync | cost_function
            value VARCHAR NOT NULL,              -- on | off, or cost | self_consumption
            set_at TIMESTAMPTZ NOT NULL,
            set_by VARCHAR NOT NULL,             -- the owner the service acted as (manual, automation, ...)
            PRIMARY KEY (site_id, setting)
        );
        """,
    ),
]
