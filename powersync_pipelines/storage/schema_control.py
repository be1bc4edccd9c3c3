"""The control ledger: who holds each control of each site's devices, until when, and every request made.

``control_ledger`` has one row per hold. At most one row per (site, control) is ``held`` at a time; a hold ends
as ``released`` (its owner let go: restore_normal, the spike ended), ``lapsed`` (its lease ran out: the restore
watch put the device back), ``preempted`` (a higher owner took the control) or ``failed`` (its command did not
go through). ``control_requests`` records every request with the arbiter's decision (``granted``, ``yielded``
to a higher holder, ``refused`` by the driver's safety rules) and the command it led to. ``commands.owner`` says
on whose behalf each device write was made.
"""

MIGRATIONS = [
    (
        "control_0001_ledger",
        """
        CREATE TABLE IF NOT EXISTS control_ledger (
            hold_id VARCHAR PRIMARY KEY,
            site_id VARCHAR NOT NULL,
            control VARCHAR NOT NULL,              -- battery | battery_export | battery_settings | inverter | ev_charger
            owner VARCHAR NOT NULL,                -- safety | manual | spike | automation | curtailment | ev | optimizer
            command VARCHAR NOT NULL,              -- the command that took the control (force_charge, apply:CHARGE, ...)
            reason VARCHAR NOT NULL,
            acquired_at TIMESTAMPTZ NOT NULL,
            lease_until TIMESTAMPTZ,               -- NULL: until released
            status VARCHAR NOT NULL,               -- held | released | lapsed | preempted | failed
            ended_at TIMESTAMPTZ,
            end_reason VARCHAR,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX IF NOT EXISTS control_ledger_site ON control_ledger (site_id, control, status);
        CREATE TABLE IF NOT EXISTS control_requests (
            request_id VARCHAR PRIMARY KEY,
            site_id VARCHAR NOT NULL,
            control VARCHAR NOT NULL,
            owner VARCHAR NOT NULL,
            command VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            requested_at TIMESTAMPTZ NOT NULL,
            decision VARCHAR NOT NULL,             -- granted | yielded | refused
            holder VARCHAR,                        -- who held the control when the request arrived
            holder_command VARCHAR,
            holder_until TIMESTAMPTZ,
            hold_id VARCHAR,                       -- the hold this request created (granted)
            command_id VARCHAR,                    -- the device command it led to (commands.command_id)
            outcome VARCHAR,                       -- the command's outcome: ok | refused | verify_failed | error
            error VARCHAR
        );
        CREATE INDEX IF NOT EXISTS control_requests_site ON control_requests (site_id, requested_at);
        ALTER TABLE commands ADD COLUMN IF NOT EXISTS owner VARCHAR;
        """,
    ),
]
