"""Daily strategy selection (``backtest.selection``): per site and local day, the candidates' trailing realised
savings and the strategy the live blend plans with that day.

* ``strategy_selection``: one row per (site, local day). ``choice`` is what the live price blend follows from
  the day's local midnight on; ``previous`` the choice it replaced; ``savings`` the trailing savings ($) of
  every candidate as JSON (``{"learned": 4.2, ...}``); ``days_seen`` how many realised days they cover.
* ``strategy_shadow_days``: each candidate's replay of each realised local day (savings $, SOC at the day's
  end). A candidate's replays form one continuous simulation (each day starts from its previous day's SOC), so
  the daily selection replays only the days not yet replayed.
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
        CREATE TABLE IF NOT EXISTS strategy_shadow_days (
            site_id VARCHAR NOT NULL,
            day DATE NOT NULL,                  -- the site's local day replayed
            candidate VARCHAR NOT NULL,
            savings DOUBLE NOT NULL,            -- $ against no battery, realised prices
            soc_end DOUBLE NOT NULL,            -- the candidate's SOC at the day's end (next day's start)
            replayed_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (site_id, day, candidate)
        );
        """,
    ),
]
