"""A backfill of `backtest_results` offers only months the shipped AEMO history has prices for."""

from __future__ import annotations

from powersync_pipelines.defs.backtest import backtest_months
from powersync_pipelines.paths import shared_real_data


def test_the_last_partition_is_the_last_month_with_price_files():
    real = shared_real_data()
    assert real is not None, "../shared/data/real is part of every checkout's environment"
    months = {f.name.split("_")[3] for f in (real / "aemo" / "price_and_demand").glob("*/PRICE_AND_DEMAND_*.csv")}
    keys = backtest_months.get_partition_keys()
    assert keys[0] == "2023-01-01"
    assert keys[-1].replace("-", "")[:6] == max(months)
    assert all(k.replace("-", "")[:6] in months for k in keys)
