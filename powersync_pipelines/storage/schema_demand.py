"""Demand-charge view: measured grid import averaged per UTC half-hour (the usual 30-min demand interval).

``demand_import_30min``: one row per (site, half-hour) with the mean of the telemetry samples in it
(``import_kw``) and how many there were (``samples``). The window (local times, weekdays), the billing month
and the price are the site's (``features.demand_charge``) and are applied by ``demand.peaks``, which also
aggregates other measurement intervals from the same telemetry.
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
]
