"""What the Home Assistant bridge keeps between its runs, per site.

``ha_settings``: values set through HA that belong to the bridge, not to a service (the force buttons' duration),
so a restarted bridge offers what the person last chose. ``ha_counters``: the highest value published for each
``total_increasing`` energy counter, so a restart or a corrected telemetry row never shows HA a smaller reading
(HA would take it for a meter reset and count the whole total again).
"""

MIGRATIONS = [
    (
        "homeassistant_0001_settings_and_counters",
        """
        CREATE TABLE IF NOT EXISTS ha_settings (
            site_id VARCHAR NOT NULL,
            setting VARCHAR NOT NULL,            -- force_duration
            value VARCHAR NOT NULL,              -- JSON of the parsed value
            set_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, setting)
        );
        CREATE TABLE IF NOT EXISTS ha_counters (
            site_id VARCHAR NOT NULL,
            counter VARCHAR NOT NULL,            -- energy_grid_import, ... (the entity's object id)
            value DOUBLE NOT NULL,               -- kWh, the highest published
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, counter)
        );
        """,
    ),
]
