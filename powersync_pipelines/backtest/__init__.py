"""Backtesting: replay historical prices through the live planner and measure what it would have saved.

Entry points: :func:`backtest_site` (site + price files -> :class:`BacktestResult`), :func:`run_backtest`
(already aligned :class:`BacktestData`), :func:`write_outputs` (summary.json, intervals.parquet, PNG,
Markdown) and :func:`write_results` (DuckDB). Forecast models are pluggable (:mod:`.forecasts`).
"""

from .battery import BatterySpec, StepOutcome, apply_step
from .data import BacktestData
from .engine import STRATEGIES, BacktestConfig, BacktestResult, interval_costs, run_backtest
from .errors import BacktestInputError
from .forecasts import ForecastModel, ForecastOptions, available_forecasts, make_forecast, register_forecast
from .inputs import SiteSeriesSources, build_backtest_data, read_price_files
from .profile import map_profile, read_profile
from .report import write_outputs
from .runner import backtest_site, load_data
from .store import write_results

__all__ = [
    "STRATEGIES",
    "BacktestConfig",
    "BacktestData",
    "BacktestInputError",
    "BacktestResult",
    "BatterySpec",
    "ForecastModel",
    "ForecastOptions",
    "SiteSeriesSources",
    "StepOutcome",
    "apply_step",
    "available_forecasts",
    "backtest_site",
    "build_backtest_data",
    "interval_costs",
    "load_data",
    "make_forecast",
    "map_profile",
    "read_price_files",
    "read_profile",
    "register_forecast",
    "run_backtest",
    "write_outputs",
    "write_results",
]
