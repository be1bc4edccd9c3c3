"""``powersync backtest``: replay historical prices through the planner and report what it would have saved.

Writes ``OUT/summary.json``, ``OUT/intervals.parquet``, ``OUT/backtest.png`` and ``OUT/report.md``; with
``--db`` also upserts the results into the DuckDB history (``backtest_*`` tables and views).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Replay historical prices through the planner and report savings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..backtest.engine import STRATEGIES
    from ..backtest.inputs import PRICE_FORMATS

    parser.add_argument("--sites", help="sites YAML (default: $POWERSYNC_SITES or the shipped demo)")
    parser.add_argument("--site-id", required=True, help="which site of the sites file")
    parser.add_argument("--prices", action="append", required=True, metavar="FILE|GLOB|DIR",
                        help="price file(s); repeat, or give a glob or a folder (e.g. a year of AEMO months)")
    parser.add_argument("--price-format", choices=("auto", *PRICE_FORMATS), default="auto",
                        help="price file format (default: detected from the file)")
    parser.add_argument("--export-prices", action="append", default=[], metavar="FILE",
                        help="Octopus only: the export (Agile Outgoing) rates file")
    parser.add_argument("--load", help="load CSV (interval_start, load_kw); default: the site's load profile")
    parser.add_argument("--solar", help="solar CSV (interval_start, solar_kw); default: the site's profile")
    parser.add_argument("--solar-scale", type=float, default=1.0, help="multiply solar by this (default 1)")
    parser.add_argument("--start", help="window start, ISO 8601 with offset (default: first price)")
    parser.add_argument("--end", help="window end (exclusive), ISO 8601 with offset (default: last price)")
    parser.add_argument("--forecast", default="perfect",
                        help="forecast model: perfect, persistence, noisy, provider, or a plugged-in one")
    parser.add_argument("--noise", type=float, default=0.2, help="noisy forecast: relative error size (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="noisy forecast: random seed")
    parser.add_argument("--forecast-param", action="append", default=[], metavar="KEY=VALUE",
                        help="an option for a plugged-in forecast model (repeatable)")
    parser.add_argument("--greedy-every", type=int, default=6,
                        help="greedy replans every N 5-minute steps, executing its plan in between (default 6)")
    parser.add_argument("--strategies", default="lp,greedy,self_consumption",
                        help=f"comma-separated, from {', '.join(STRATEGIES)} (baseline and bound always run)")
    parser.add_argument("--horizon", choices=("tiered", "full"), default="tiered", help="live planner horizon grid")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument("--db", nargs="?", const="", default=None, metavar="DUCKDB",
                        help="also write results into DuckDB (no value: the default history file)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--demand-charge", action="store_true",
                        help="report the demand charge each strategy's imports are billed under the site's "
                             "features.demand_charge (the planners do not optimise the peak here)")


def run(args: argparse.Namespace) -> int:
    from ..backtest import BacktestConfig, BacktestInputError, ForecastOptions, SiteSeriesSources
    from ..backtest.report import write_outputs
    from ..backtest.runner import backtest_site
    from ..config import SiteConfigError, load_sites

    try:
        site = load_sites(args.sites).get(args.site_id)
        if args.demand_charge and site.features.demand_charge is None:
            raise SiteConfigError(f"--demand-charge: site {site.id!r} has no features.demand_charge")
        strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
        params = []
        for item in args.forecast_param:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise BacktestInputError(f"--forecast-param {item!r}: expected KEY=VALUE")
            params.append((key.strip(), value.strip()))
        config = BacktestConfig(
            strategies=strategies, forecast=args.forecast, horizon=args.horizon, workers=args.workers,
            forecast_options=ForecastOptions(noise=args.noise, seed=args.seed, params=tuple(params)),
            greedy_every=args.greedy_every,
            spike_threshold_per_mwh=site.provider.spike_threshold_per_mwh,
        )
        result = backtest_site(
            site, args.prices, config, price_format=args.price_format, start=args.start, end=args.end,
            sources=SiteSeriesSources(load_file=args.load, solar_file=args.solar, solar_scale=args.solar_scale),
            export_prices=args.export_prices,
        )
    except (BacktestInputError, SiteConfigError) as exc:
        print(f"powersync backtest: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.demand_charge:
        from ..demand import strategy_demand_report

        result.summary["demand_charge"] = strategy_demand_report(result.intervals, site.features.demand_charge,
                                                                 site.timezone)
    out = Path(args.out)
    paths = write_outputs(result, out, title=f"Backtest of site {site.id}")
    if args.db is not None:
        from ..backtest.store import write_results
        from ..storage import HistoryStore

        write_results(HistoryStore(args.db), site.id, result)
    s = result.summary
    cap = "n/a" if s["capture_ratio"] is None else f"{s['capture_ratio']:.3f}"
    print(f"{s['intervals']} intervals, {s['replans']} replans in {s['elapsed_s']:.1f} s "
          f"({s['replans_per_s'] or 0:.0f}/s): baseline ${s['baseline_cost']:.2f}, {s['strategy']} ${s['cost']:.2f}, "
          f"savings ${s['savings']:.2f}, perfect foresight ${s['perfect_foresight_cost']:.2f}, capture {cap} -> {paths['summary'].parent}")
    if "demand_charge" in s:
        dc = s["demand_charge"]["strategies"]
        print("demand charge: " + ", ".join(f"{k} ${v['demand_charge']:.2f}" for k, v in dc.items()))
    return 0
