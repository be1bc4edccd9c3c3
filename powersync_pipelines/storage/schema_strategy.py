"""Daily strategy selection (``backtest.selection``): per site and local day, the candidates' trailing realised
savings and the strategy the live blend plans with that day.

* ``strategy_selection``: one row per (site, local day). ``choice`` is what the live price blend follows from
  the day's local midnight on; ``previous`` the choice it replaced; ``savings`` the trailing savings ($) of
  every candidate as JSON (``{"learned": 4.2, ...}``); ``days_seen`` how many realised days they cover.
"""

MIGRATIONS = [
    (
        "strategy_0001_selection",
        """
        CREATE TABLE IF NOT EXISTS strategy_selection (
            site_id VARCHAR NOT NULL,
            day DATE NOT NULL,                  -- the site's local day the choice applies to
            decided_at TIMESTAMPTZ NOT NULL,    -- the local midnight that starts the day (UTC)
            choice VARCHAR NOT NULL,            -- learned | learned_no_reserve | persistence
            previous VARCHAR,
            savings JSON NOT NULL,              -- {candidate: trailing realised savings $}
            days_seen DOUBLE NOT NULL,
            trailing_days DOUBLE NOT NULL,
            margin DOUBLE NOT NULL,
            elapsed_s DOUBLE,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, day)
        );
        """,
    ),
]
