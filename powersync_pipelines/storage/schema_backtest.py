"""Backtest results: one row per (site, forecast model, strategy, interval), run summaries, and the views
users query (daily/monthly cost and savings per strategy, spike revenue, forecast error).

Keys make a re-run replace its own rows (a re-materialised month neither duplicates nor loses anything);
different forecast models live side by side so their savings can be compared in SQL.
"""

MIGRATIONS = [
    (
        "backtest_0001_tables",
        """
        CREATE TABLE IF NOT EXISTS backtest_runs (
            run_id VARCHAR PRIMARY KEY,
            site_id VARCHAR NOT NULL,
            forecast_model VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            window_start TIMESTAMPTZ NOT NULL,
            window_end TIMESTAMPTZ NOT NULL,
            strategies VARCHAR NOT NULL,        -- comma-separated
            chosen_strategy VARCHAR NOT NULL,
            intervals INTEGER NOT NULL,
            replans INTEGER NOT NULL,
            elapsed_s DOUBLE NOT NULL,
            baseline_cost DOUBLE NOT NULL,
            cost DOUBLE NOT NULL,
            perfect_foresight_cost DOUBLE NOT NULL,
            savings DOUBLE NOT NULL,
            capture_ratio DOUBLE,
            summary JSON NOT NULL
        );
        CREATE TABLE IF NOT EXISTS backtest_intervals (
            site_id VARCHAR NOT NULL,
            forecast_model VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL,          -- none | self_consumption | greedy | lp | perfect_foresight
            interval_start TIMESTAMPTZ NOT NULL,
            run_id VARCHAR NOT NULL,
            local_date DATE NOT NULL,           -- the site's local calendar day
            month VARCHAR NOT NULL,             -- the site's local month, 'YYYY-MM'
            action VARCHAR NOT NULL,            -- CHARGE | EXPORT | IDLE | SELF_CONSUMPTION | NONE
            import_price DOUBLE NOT NULL,       -- $/kWh realised
            export_price DOUBLE NOT NULL,
            rrp DOUBLE,                         -- $/MWh wholesale where known
            load_kw DOUBLE NOT NULL,
            solar_kw DOUBLE NOT NULL,
            battery_charge_kw DOUBLE NOT NULL,
            battery_discharge_kw DOUBLE NOT NULL,
            grid_import_kw DOUBLE NOT NULL,
            grid_export_kw DOUBLE NOT NULL,
            curtail_kw DOUBLE NOT NULL,
            soc DOUBLE NOT NULL,                -- fraction at interval end
            cost DOUBLE NOT NULL,               -- $ this interval (import paid - export earned)
            baseline_cost DOUBLE NOT NULL,      -- $ this interval without a battery
            savings DOUBLE NOT NULL,            -- baseline_cost - cost
            wear_cost DOUBLE NOT NULL,
            fc_import_1h DOUBLE,                -- import price the forecast gave this interval 1 h before
            fc_import_24h DOUBLE,               -- ... and 24 h before
            spike BOOLEAN NOT NULL,             -- RRP at or above the spike threshold
            PRIMARY KEY (site_id, forecast_model, strategy, interval_start)
        );
        """,
    ),
    (
        "backtest_0002_views",
        """
        CREATE OR REPLACE VIEW backtest_daily AS
        SELECT b.site_id, b.forecast_model, b.strategy, b.local_date,
               count(*) AS intervals,
               sum(b.cost) AS cost,
               sum(b.baseline_cost) AS baseline_cost,
               sum(b.savings) AS savings,
               sum(b.baseline_cost) - sum(b.cost) - (sum(s.baseline_cost) - sum(s.cost)) AS savings_vs_self_consumption,
               sum(b.grid_import_kw) / 12 AS import_kwh,
               sum(b.grid_export_kw) / 12 AS export_kwh,
               sum(b.battery_discharge_kw) / 12 AS discharge_kwh
        FROM backtest_intervals b
        LEFT JOIN backtest_intervals s
          ON s.site_id = b.site_id AND s.forecast_model = b.forecast_model
         AND s.strategy = 'self_consumption' AND s.interval_start = b.interval_start
        GROUP BY b.site_id, b.forecast_model, b.strategy, b.local_date;

        CREATE OR REPLACE VIEW backtest_monthly AS
        WITH m AS (
            SELECT site_id, forecast_model, strategy, month,
                   count(*) AS intervals, sum(cost) AS cost, sum(baseline_cost) AS baseline_cost,
                   sum(savings) AS savings, sum(wear_cost) AS wear_cost,
                   sum(battery_discharge_kw) / 12 AS discharge_kwh
            FROM backtest_intervals GROUP BY site_id, forecast_model, strategy, month
        )
        SELECT m.*,
               m.savings - sc.savings AS savings_vs_self_consumption,
               pf.savings AS perfect_foresight_savings,
               CASE WHEN pf.savings > 1e-9 THEN m.savings / pf.savings END AS capture_ratio
        FROM m
        LEFT JOIN m sc ON sc.site_id = m.site_id AND sc.forecast_model = m.forecast_model
                      AND sc.month = m.month AND sc.strategy = 'self_consumption'
        LEFT JOIN m pf ON pf.site_id = m.site_id AND pf.forecast_model = m.forecast_model
                      AND pf.month = m.month AND pf.strategy = 'perfect_foresight';

        CREATE OR REPLACE VIEW backtest_spike_revenue AS
        SELECT site_id, forecast_model, strategy, month,
               count(*) FILTER (WHERE spike) AS spike_intervals,
               sum(grid_export_kw) FILTER (WHERE spike) / 12 AS spike_export_kwh,
               coalesce(sum(grid_export_kw * export_price) FILTER (WHERE spike) / 12, 0) AS spike_export_revenue,
               coalesce(sum(savings) FILTER (WHERE spike), 0) AS spike_savings,
               sum(savings) AS total_savings
        FROM backtest_intervals
        GROUP BY site_id, forecast_model, strategy, month;

        CREATE OR REPLACE VIEW backtest_forecast_error AS
        SELECT site_id, forecast_model, month,
               count(fc_import_1h) AS n_1h,
               avg(abs(fc_import_1h - import_price)) AS mae_1h,
               avg(fc_import_1h - import_price) AS bias_1h,
               count(fc_import_24h) AS n_24h,
               avg(abs(fc_import_24h - import_price)) AS mae_24h,
               avg(fc_import_24h - import_price) AS bias_24h
        FROM backtest_intervals
        WHERE strategy = 'none'
        GROUP BY site_id, forecast_model, month;
        """,
    ),
]
