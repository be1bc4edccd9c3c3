"""Price forecasting: the model registry and forecast provenance.

* ``price_models``: one row per fitted model (versioned: kind, code version, config hash, training window),
  with the training window and the fitted parameters as JSON so a model can be reloaded exactly. A daily refit
  stores ~0.6 MB of parameters; older than the retention (``price_registry.prune_model_params``) they are
  emptied (``params`` = ``{}``, ``params_pruned_at`` set) while the row, its config and training window stay.
* ``price_forecast_horizon``: the latest served forecast per (site, interval) with its provenance
  (provider / learned / filled), quantiles and the model that produced it.
* ``price_forecast_leads``: what was forecast for an interval 1 h, 6 h and 24 h before it (one row per
  lead), kept so drift (realised vs forecast) can be measured later in SQL.
"""

MIGRATIONS = [
    (
        "forecasting_0001_tables",
        """
        CREATE TABLE IF NOT EXISTS price_models (
            model_id VARCHAR PRIMARY KEY,       -- FittedPriceModel.version
            site_id VARCHAR NOT NULL,
            region VARCHAR,
            kind VARCHAR NOT NULL,
            series VARCHAR NOT NULL,            -- rrp | import_price
            as_of TIMESTAMPTZ NOT NULL,         -- fitted on history strictly before this instant
            train_start TIMESTAMPTZ NOT NULL,
            train_end TIMESTAMPTZ NOT NULL,
            n_train INTEGER NOT NULL,
            config JSON NOT NULL,
            params JSON NOT NULL,               -- FittedPriceModel.to_dict()
            created_at TIMESTAMPTZ NOT NULL,
            partition_key VARCHAR
        );
        CREATE TABLE IF NOT EXISTS price_forecast_horizon (
            site_id VARCHAR NOT NULL,
            interval_start TIMESTAMPTZ NOT NULL,
            issued_at TIMESTAMPTZ NOT NULL,
            import_price DOUBLE NOT NULL,
            export_price DOUBLE NOT NULL,
            p10 DOUBLE,
            p50 DOUBLE,
            p90 DOUBLE,
            provenance VARCHAR NOT NULL,        -- provider | learned | filled
            provider_weight DOUBLE,
            model_id VARCHAR,
            PRIMARY KEY (site_id, interval_start)
        );
        CREATE TABLE IF NOT EXISTS price_forecast_leads (
            site_id VARCHAR NOT NULL,
            interval_start TIMESTAMPTZ NOT NULL,
            lead_h INTEGER NOT NULL,            -- 1 | 6 | 24
            issued_at TIMESTAMPTZ NOT NULL,
            import_price DOUBLE NOT NULL,
            p10 DOUBLE,
            p90 DOUBLE,
            provenance VARCHAR NOT NULL,
            model_id VARCHAR,
            PRIMARY KEY (site_id, interval_start, lead_h)
        );
        CREATE OR REPLACE VIEW price_forecast_drift AS
        SELECT l.site_id, l.lead_h, l.interval_start, l.import_price AS forecast, p.import_price AS realised,
               p.import_price - l.import_price AS error,
               (p.import_price >= l.p10 AND p.import_price <= l.p90) AS inside_p10_p90,
               l.provenance, l.model_id
        FROM price_forecast_leads l
        JOIN prices p ON p.site_id = l.site_id AND p.interval_start = l.interval_start AND NOT p.is_forecast;
        """,
    ),
    (
        "forecasting_0002_model_params_retention",
        "ALTER TABLE price_models ADD COLUMN IF NOT EXISTS params_pruned_at TIMESTAMPTZ;",
    ),
]
