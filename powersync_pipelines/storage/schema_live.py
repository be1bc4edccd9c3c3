"""Live-operation tables: spike events, dispatch prices as first seen, automation firings, notifications.

``spike_events`` is the spike watch's durable state: the row of a site whose ``status`` is not ``ended`` is the
spike in progress, so a daemon restart (or a lost sensor cursor) resumes it instead of forgetting to restore or
firing twice. Every event keeps the three instants the latency target is about: the dispatch interval, when
the watch saw its price, and when the battery command was verified by read-back.
"""

MIGRATIONS = [
    (
        "live_0001_tables",
        """
        CREATE TABLE IF NOT EXISTS spike_events (
            event_id VARCHAR PRIMARY KEY,          -- <site>:<region>:<start interval UTC>
            site_id VARCHAR NOT NULL,
            region VARCHAR NOT NULL,
            battery_kind VARCHAR NOT NULL,
            threshold_per_mwh DOUBLE NOT NULL,
            hysteresis_per_mwh DOUBLE NOT NULL,
            status VARCHAR NOT NULL,               -- entering | active | deferred | restoring | ended
            response VARCHAR NOT NULL,             -- force_discharge | spike_tariff | deferred_to_manual
            start_interval TIMESTAMPTZ NOT NULL,   -- dispatch interval start (UTC) whose RRP crossed
            start_rrp DOUBLE NOT NULL,
            start_source VARCHAR,                  -- DISPATCHIS file name / replay
            seen_at TIMESTAMPTZ NOT NULL,          -- when the watch first saw that price
            command_sent_at TIMESTAMPTZ,
            verified_at TIMESTAMPTZ,               -- the start command verified on the battery
            command_outcome VARCHAR,               -- ok | refused | verify_failed | error
            command_error VARCHAR,
            command_attempts INTEGER NOT NULL DEFAULT 0,
            lease_until TIMESTAMPTZ,               -- the forced mode's expiry (re-armed while the spike lasts)
            peak_rrp DOUBLE NOT NULL,
            last_interval TIMESTAMPTZ,             -- last dispatch interval evaluated in this event
            end_interval TIMESTAMPTZ,
            end_rrp DOUBLE,
            end_seen_at TIMESTAMPTZ,
            restore_sent_at TIMESTAMPTZ,
            restore_verified_at TIMESTAMPTZ,
            restore_attempts INTEGER NOT NULL DEFAULT 0,
            last_error VARCHAR,
            notified VARCHAR NOT NULL DEFAULT '',  -- comma list of notification kinds already sent
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS dispatch_seen (
            region VARCHAR NOT NULL,
            interval_start TIMESTAMPTZ NOT NULL,
            rrp DOUBLE NOT NULL,
            source VARCHAR NOT NULL,               -- the DISPATCHIS file name, or replay
            seen_at TIMESTAMPTZ NOT NULL,          -- first time any watch saw this interval
            PRIMARY KEY (region, interval_start)
        );
        CREATE TABLE IF NOT EXISTS automation_state (
            site_id VARCHAR NOT NULL,
            rule_id VARCHAR NOT NULL,
            condition BOOLEAN NOT NULL,            -- the rule's combined trigger at its last evaluation
            last_fired_at TIMESTAMPTZ,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, rule_id)
        );
        CREATE TABLE IF NOT EXISTS automation_firings (
            firing_id VARCHAR PRIMARY KEY,         -- <site>:<rule>:<fired_at>
            site_id VARCHAR NOT NULL,
            rule_id VARCHAR NOT NULL,
            fired_at TIMESTAMPTZ NOT NULL,
            reason VARCHAR NOT NULL,               -- which triggers held, with the values seen
            actions JSON NOT NULL,
            status VARCHAR NOT NULL,               -- requested | ok | partial | failed | expired
            results JSON,
            run_id VARCHAR,
            lease_until TIMESTAMPTZ,               -- end of a forced mode it started
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS notifications (
            notification_id VARCHAR PRIMARY KEY,
            created_at TIMESTAMPTZ NOT NULL,
            site_id VARCHAR,
            event VARCHAR NOT NULL,                -- spike_start | spike_end | restore_failed | automation | ...
            channel VARCHAR NOT NULL,
            channel_kind VARCHAR NOT NULL,
            title VARCHAR NOT NULL,
            message VARCHAR NOT NULL,
            outcome VARCHAR NOT NULL,              -- sent | failed
            status_code INTEGER,
            error VARCHAR
        );
        """,
    ),
]
