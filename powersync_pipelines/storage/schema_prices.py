"""Price provenance: which intervals were filled (not provider data) and where each price came from.

* ``price_forecast_archive``: every provider forecast as published (``prices.archive``): issue time, target
  interval, the prices, the source and the stage (p5min / predispatch / ...); the ``prices`` table keeps only
  the latest value per interval.
"""

MIGRATIONS = [
    (
        "prices_0001_filled_provenance",
        """
        ALTER TABLE prices ADD COLUMN IF NOT EXISTS filled BOOLEAN;
        ALTER TABLE prices ADD COLUMN IF NOT EXISTS provenance VARCHAR;
        """,
    ),
    (
        "prices_0002_forecast_archive",
        """
        CREATE TABLE IF NOT EXISTS price_forecast_archive (
            site_id VARCHAR NOT NULL,
            source VARCHAR NOT NULL,            -- the frame's source (amber, aemo, octopus, nemweb, ...)
            issued_at TIMESTAMPTZ NOT NULL,     -- when the site fetched the publication
            interval_start TIMESTAMPTZ NOT NULL,
            lead_minutes INTEGER NOT NULL,
            import_price DOUBLE NOT NULL,       -- $/kWh
            export_price DOUBLE NOT NULL,
            rrp DOUBLE,                         -- $/MWh where the provider gave it
            price_low DOUBLE,
            price_high DOUBLE,
            stage VARCHAR,                      -- p5min | predispatch | dispatch | ... where known
            PRIMARY KEY (site_id, source, issued_at, interval_start)
        );
        """,
    ),
]
