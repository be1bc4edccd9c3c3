"""Demand-charge view: measured grid import averaged per UTC half-hour (the usual 30-min demand interval).

``demand_import_30min``: one row per (site, half-hour) with the mean of the telemetry samples in it
(``import_kw``) and how many there were (``samples``). The window (local times, weekdays), the billing month
and the price are the site's (``features.demand_charge``) and are applied by ``demand.peaks``, which also
aggregates other measurement intervals from the same telemetry.

``demand_month_peaks``: per site and local billing month, the peak interval average in the window so far, when
it was set and what it is billed (the ``demand_peaks`` asset keeps it current; the live plan starts from it).

``plans.demand_peak_kw`` / ``plans.demand_cost_avoided``: a plan's peak in the window and the demand charge it
avoids against the no-battery import (both NULL for a site without a demand charge).
"""

MIGRATIONS = [
    (
        "demand_0001_import_30min_view",
        """
        CREATE OR REPLACE VIEW demand_import_30min AS
            SELECT site_id,
                   to_timestamp(floor(extract(epoch FROM ts) / 1800) * 1800) AS interval_start,
                   avg(coalesce(grid_import_kw, 0.0)) AS import_kw,
                   count(*) AS samples
            FROM telemetry
            GROUP BY site_id, to_timestamp(floor(extract(epoch FROM ts) / 1800) * 1800);
        """,
    ),
    (
        "demand_0002_month_peaks",
        """
        CREATE TABLE IF NOT EXISTS demand_month_peaks (
            site_id VARCHAR NOT NULL,
            month VARCHAR NOT NULL,             -- local billing month YYYY-MM
            peak_kw DOUBLE NOT NULL,            -- highest interval average import in the window so far
            peak_at TIMESTAMPTZ,                -- the interval's start (UTC)
            charge DOUBLE NOT NULL,             -- peak_kw x price_per_kw_month
            price_per_kw_month DOUBLE NOT NULL,
            interval_minutes INTEGER NOT NULL,
            intervals INTEGER NOT NULL,         -- measured intervals in the window this month
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, month)
        );
        """,
    ),
    (
        "demand_0003_plan_demand_columns",
        """
        ALTER TABLE plans ADD COLUMN IF NOT EXISTS demand_peak_kw DOUBLE;
        ALTER TABLE plans ADD COLUMN IF NOT EXISTS demand_cost_avoided DOUBLE;
        """,
    ),
]
