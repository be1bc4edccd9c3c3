"""EV tables: what OCPP charge points said (boot, status, transactions, meter values) and the setpoint hand-off.

``ev_setpoints`` is the durable path between the planning cycle and the OCPP central system, two processes:
the planner inserts a row (``status = 'pending'``); the central system claims it (``sent``), sends it to the
charge point and writes the answer (``applied`` | ``accepted`` | ``rejected`` | ``failed`` | ``expired`` |
``superseded``) with ``outcome`` (one line) and the charge point's ``reply``. ``command`` is ``limit`` (a
``SetChargingProfile`` of ``limit_value`` in ``unit`` A per phase or W total), ``start``, ``stop`` or
``clear_profile``. ``limit_value`` is what was asked; ``sent_value`` what went out (clamped to the charger's max,
0 below its min). Charge point energy is stored in Wh, power in W, current in A, as OCPP reports them.

``ev_sharing_state`` is the power sharing's hysteresis per site and charger (what the planning cycle last told
the charger and how many cycles it has been paused), so a restarted planner does not flap the charger.
"""

MIGRATIONS = [
    (
        "ev_0001_ocpp_and_setpoints",
        """
        CREATE TABLE IF NOT EXISTS ocpp_charge_points (
            charge_point_id VARCHAR PRIMARY KEY,
            site_id VARCHAR,
            vendor VARCHAR,
            model VARCHAR,
            serial_number VARCHAR,
            firmware_version VARCHAR,
            boot_status VARCHAR,                -- Accepted | Rejected (what we answered)
            connected BOOLEAN NOT NULL,
            first_seen TIMESTAMPTZ NOT NULL,
            last_seen TIMESTAMPTZ NOT NULL,
            last_boot TIMESTAMPTZ,
            last_heartbeat TIMESTAMPTZ
        );
        CREATE TABLE IF NOT EXISTS ocpp_status (
            charge_point_id VARCHAR NOT NULL,
            connector_id INTEGER NOT NULL,      -- 0 = the whole charge point
            status VARCHAR NOT NULL,            -- Available | Preparing | Charging | SuspendedEVSE | SuspendedEV | ...
            error_code VARCHAR NOT NULL,
            info VARCHAR,
            ts TIMESTAMPTZ NOT NULL,            -- the charge point's timestamp (received_at when absent)
            received_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (charge_point_id, connector_id, received_at)
        );
        CREATE TABLE IF NOT EXISTS ocpp_transactions (
            transaction_id BIGINT PRIMARY KEY,  -- chosen by the central system
            charge_point_id VARCHAR NOT NULL,
            site_id VARCHAR,
            connector_id INTEGER NOT NULL,
            id_tag VARCHAR NOT NULL,
            meter_start_wh DOUBLE NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            meter_stop_wh DOUBLE,
            stopped_at TIMESTAMPTZ,
            stop_reason VARCHAR,
            status VARCHAR NOT NULL             -- active | stopped
        );
        CREATE TABLE IF NOT EXISTS ocpp_meter_values (
            charge_point_id VARCHAR NOT NULL,
            connector_id INTEGER NOT NULL,
            transaction_id BIGINT,
            ts TIMESTAMPTZ NOT NULL,
            measurand VARCHAR NOT NULL,         -- Energy.Active.Import.Register, Power.Active.Import, Current.Import, ...
            phase VARCHAR NOT NULL,             -- '' = total
            context VARCHAR,
            unit VARCHAR NOT NULL,              -- Wh | W | A | V | Percent (kWh and kW are scaled on arrival)
            value DOUBLE NOT NULL,
            PRIMARY KEY (charge_point_id, connector_id, ts, measurand, phase)
        );
        CREATE TABLE IF NOT EXISTS ev_setpoints (
            setpoint_id VARCHAR PRIMARY KEY,
            site_id VARCHAR NOT NULL,
            charge_point_id VARCHAR NOT NULL,
            connector_id INTEGER NOT NULL,
            command VARCHAR NOT NULL,           -- limit | start | stop | clear_profile
            limit_value DOUBLE,                 -- asked (limit only)
            unit VARCHAR,                       -- A (per phase) | W (total)
            sent_value DOUBLE,                  -- what went to the charge point
            requested_at TIMESTAMPTZ NOT NULL,
            requested_by VARCHAR NOT NULL,      -- ev | manual | safety ...
            expires_at TIMESTAMPTZ NOT NULL,    -- not sent after this instant
            status VARCHAR NOT NULL,            -- pending | sent | applied | accepted | rejected | failed | expired | superseded
            outcome VARCHAR,
            answered_at TIMESTAMPTZ,
            transaction_id BIGINT,
            profile JSON,
            reply JSON
        );
        CREATE TABLE IF NOT EXISTS ev_site_settings (
            site_id VARCHAR PRIMARY KEY,
            mode VARCHAR NOT NULL,              -- solar_only | solar_preferred | cost_optimized | time_critical
            departure VARCHAR,                  -- local HH:MM
            target_kwh DOUBLE,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE OR REPLACE VIEW ocpp_connector_status AS
            SELECT charge_point_id, connector_id, status, error_code, ts, received_at
            FROM (SELECT *, row_number() OVER (PARTITION BY charge_point_id, connector_id
                                               ORDER BY received_at DESC) AS _newest
                  FROM ocpp_status) latest
            WHERE _newest = 1;
        CREATE OR REPLACE VIEW ev_session_energy AS
            SELECT t.transaction_id, t.charge_point_id, t.site_id, t.connector_id, t.started_at, t.stopped_at, t.status,
                   (coalesce(t.meter_stop_wh, m.last_wh, t.meter_start_wh) - t.meter_start_wh) / 1000.0 AS energy_kwh
            FROM ocpp_transactions t
            LEFT JOIN (
                SELECT transaction_id, max(value) AS last_wh FROM ocpp_meter_values
                WHERE measurand = 'Energy.Active.Import.Register' AND phase = '' GROUP BY transaction_id
            ) m USING (transaction_id);
        """,
    ),
    (
        "ev_0002_sharing_state",
        """
        CREATE TABLE IF NOT EXISTS ev_sharing_state (
            site_id VARCHAR NOT NULL,
            charger VARCHAR NOT NULL,           -- kind:identity:connector (ev.state.charger_key)
            amps INTEGER NOT NULL,              -- last current sent by the planning cycle (0 = paused)
            paused_cycles INTEGER NOT NULL,
            reason VARCHAR,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, charger)
        );
        """,
    ),
]
