"""The SQL a user runs against the backtest tables (shown in the README, exercised by the tests).

Written in the SQL DuckDB and PostgreSQL share, so ``powersync sql`` runs them on either history."""

README_QUERIES = {
    # What did each strategy save, month by month, and how much of the possible did the live planner get?
    "savings by month": """
        SELECT month, strategy, round(savings, 2) AS savings, round(savings_vs_self_consumption, 2) AS vs_self_consumption,
               round(capture_ratio, 3) AS capture_ratio
        FROM backtest_monthly
        WHERE site_id = 'demo' AND forecast_model = 'persistence' AND strategy <> 'none'
        ORDER BY month, strategy
    """,
    # Where did the money come from? (usually a handful of price spikes)
    "the 10 most valuable intervals": """
        SELECT interval_start, action, round(rrp) AS rrp_per_mwh, round(grid_export_kw, 2) AS export_kw,
               round(savings, 2) AS saved
        FROM backtest_intervals
        WHERE site_id = 'demo' AND forecast_model = 'persistence' AND strategy = 'lp'
        ORDER BY savings DESC
        LIMIT 10
    """,
    # How often did the plan buy grid energy that was worth less, after round-trip losses, than the best
    # use the battery made of energy that day (a forecast that promised a spread that never came)?
    "charging from the grid at a loss": """
        WITH day AS (
            SELECT site_id, forecast_model, local_date,
                   max(CASE WHEN action = 'EXPORT' THEN export_price ELSE import_price END)
                       FILTER (WHERE battery_discharge_kw > 0) AS best_discharge_value
            FROM backtest_intervals WHERE strategy = 'lp' GROUP BY site_id, forecast_model, local_date
        ), charges AS (
            SELECT count(*) AS grid_charge_intervals,
                   count(*) FILTER (WHERE i.import_price / (0.95 * 0.95) > coalesce(d.best_discharge_value, 0))
                       AS at_a_loss
            FROM backtest_intervals i JOIN day d USING (site_id, forecast_model, local_date)
            WHERE i.site_id = 'demo' AND i.forecast_model = 'persistence' AND i.strategy = 'lp'
              AND i.action = 'CHARGE'
        )
        SELECT grid_charge_intervals, at_a_loss,
               round(100.0 * at_a_loss / nullif(grid_charge_intervals, 0), 1) AS pct_at_a_loss
        FROM charges
    """,
}
