"""Core tables: prices, forecasts, plans and their intervals, commands, telemetry, tariff payloads."""

MIGRATIONS = [
    (
        "core_0001_tables",
        """
        CREATE TABLE IF NOT EXISTS prices (
            site_id VARCHAR NOT NULL,
            interval_start TIMESTAMPTZ NOT NULL,
            import_price DOUBLE NOT NULL,
            export_price DOUBLE NOT NULL,
            spike_status VARCHAR NOT NULL,
            is_forecast BOOLEAN NOT NULL,
            price_low DOUBLE,
            price_high DOUBLE,
            source VARCHAR NOT NULL,
            fetched_at TIMESTAMPTZ NOT NULL,
            rrp DOUBLE,
            PRIMARY KEY (site_id, interval_start)
        );
        CREATE TABLE IF NOT EXISTS forecasts (
            site_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,              -- solar | load | price
            interval_start TIMESTAMPTZ NOT NULL,
            value DOUBLE NOT NULL,              -- kW (solar, load) or $/kWh (price)
            p10 DOUBLE,
            p90 DOUBLE,
            model VARCHAR NOT NULL,
            issued_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, kind, interval_start)
        );
        CREATE TABLE IF NOT EXISTS plans (
            plan_id VARCHAR PRIMARY KEY,
            site_id VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            plan_start TIMESTAMPTZ NOT NULL,
            status VARCHAR NOT NULL,
            solver VARCHAR NOT NULL,
            fallback_reason VARCHAR,
            objective DOUBLE,
            cost DOUBLE,
            baseline_cost DOUBLE,
            self_consumption_cost DOUBLE,
            savings_24h DOUBLE,
            savings_horizon DOUBLE,
            solve_ms DOUBLE,
            soc_initial DOUBLE
        );
        CREATE TABLE IF NOT EXISTS schedule (
            site_id VARCHAR NOT NULL,
            plan_id VARCHAR NOT NULL,
            interval_start TIMESTAMPTZ NOT NULL,
            action VARCHAR NOT NULL,
            battery_charge_kw DOUBLE NOT NULL,
            battery_discharge_kw DOUBLE NOT NULL,
            grid_import_kw DOUBLE NOT NULL,
            grid_export_kw DOUBLE NOT NULL,
            curtail_kw DOUBLE,
            soc DOUBLE NOT NULL,
            import_price DOUBLE NOT NULL,
            export_price DOUBLE NOT NULL,
            solar_kw DOUBLE,
            load_kw DOUBLE,
            PRIMARY KEY (site_id, plan_id, interval_start)
        );
        CREATE TABLE IF NOT EXISTS commands (
            command_id VARCHAR PRIMARY KEY,
            site_id VARCHAR NOT NULL,
            interval_start TIMESTAMPTZ,         -- the plan slot the command serves (NULL for manual services)
            issued_at TIMESTAMPTZ NOT NULL,
            device_kind VARCHAR NOT NULL,
            command VARCHAR NOT NULL,           -- e.g. apply:CHARGE, force_discharge, set_backup_reserve
            params JSON,
            written JSON,                       -- registers / requests actually sent
            readback JSON,
            outcome VARCHAR NOT NULL,           -- ok | verify_failed | error | refused
            error VARCHAR
        );
        CREATE TABLE IF NOT EXISTS telemetry (
            site_id VARCHAR NOT NULL,
            ts TIMESTAMPTZ NOT NULL,
            soc DOUBLE,
            soh DOUBLE,
            battery_charge_kw DOUBLE,
            battery_discharge_kw DOUBLE,
            grid_import_kw DOUBLE,
            grid_export_kw DOUBLE,
            load_kw DOUBLE,
            solar_kw DOUBLE,
            mode VARCHAR,
            raw JSON,
            PRIMARY KEY (site_id, ts)
        );
        CREATE TABLE IF NOT EXISTS tariff_payloads (
            payload_id VARCHAR PRIMARY KEY,
            site_id VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            format VARCHAR NOT NULL,            -- tesla | sigenergy
            payload JSON NOT NULL,
            payload_hash VARCHAR NOT NULL,
            sent BOOLEAN NOT NULL,
            reply JSON,
            note VARCHAR
        );
        """,
    ),
]
