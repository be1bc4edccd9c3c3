"""``powersync demo``: the main job once, on the embedded demo site, with a simulated battery on loopback.

Starts the Sungrow SH simulator, materialises every planning asset in-process against ``$DAGSTER_HOME``
(so the run shows in the UI afterwards), and prints what a person wants to know.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HELP = "Run the main job once on the demo site and print a summary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sites", help="sites YAML (default $POWERSYNC_SITES or data/sites.yaml)")
    parser.add_argument("--now", help="planning instant (ISO UTC); default: each replay site's replay_start")
    parser.add_argument("--hours", type=float, default=6.0, help="hours of actions to print (default 6)")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    from ..config import SiteConfigError, load_sites

    try:
        sites = load_sites(args.sites)
    except SiteConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.sites:
        os.environ["POWERSYNC_SITES"] = str(sites.path)

    import dagster as dg

    from ..defs.dead_runs import process_tags
    from ..defs.planning.assets import PLANNING_ASSETS
    from ..defs.planning.partitions import all_sites_tags
    from ..defs.resources import BatteryFleetResource, ClockResource, HistoryStoreResource, SitesResource
    from ..paths import duckdb_path
    from ..prices.replay import default_replay_now
    from ..sim.site_devices import simulated_devices
    from .instance import PoolWaitGuard, prepared_instance

    site = sites.sites[0]
    fixed = args.now or (default_replay_now(site).isoformat() if site.provider.kind == "replay" else None)
    db = duckdb_path()
    instance, swept = prepared_instance()
    for run_id in swept:
        print(f"run {run_id} was left running by a process that died: marked failed, its pool slots freed")
    with simulated_devices(sites.sites) as endpoints, PoolWaitGuard(instance) as guard:
        for sid, ep in endpoints.items():
            print(f"simulated Sungrow SH for {sid!r} listening on {ep} (Modbus TCP)")
        result = dg.materialize(
            PLANNING_ASSETS,
            instance=instance,
            tags={**all_sites_tags(), **process_tags()},
            resources={
                "sites": SitesResource(path=str(sites.path)),
                "history": HistoryStoreResource(path=str(db)),
                "fleet": BatteryFleetResource(endpoints=endpoints),
                "clock": ClockResource(fixed_now=fixed),
            },
            raise_on_error=False,
            # the per-step DEBUG stream drowns the summary; warnings and errors still print, and the full
            # event log is in the run (DAGSTER_HOME) for the UI
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    if guard.blocked is not None:
        print(guard.message(), file=sys.stderr)
        return 130 if guard.blocked.reason == "signal" else 3
    _print_summary(sites.sites, db, args.hours, result, instance)
    print(f"\nfinished in {time.perf_counter() - t0:.1f} s")
    return 0 if result.success else 1


def _print_summary(sites, db, hours: float, result, instance) -> None:
    import pandas as pd

    from ..reporting import action_blocks
    from ..storage import HistoryStore

    store = HistoryStore(db)
    for site in sites:
        latest = store.read_latest_plan(site.id)
        print(f"\n=== site {site.id} ({site.timezone}) ===")
        if latest is None:
            print("  no plan was stored (see the run's errors below)")
            continue
        meta, intervals = latest
        start = intervals.index[0]
        window = intervals.loc[intervals.index < start + pd.Timedelta(hours=hours)]
        cur = "$" if site.currency == "AUD" else "£"
        print(f"plan {meta['plan_id']}: {meta['status']} via {meta['solver']} in {meta['solve_ms']:.0f} ms, "
              f"starting SOC {meta['soc_initial'] * 100:.0f}%")
        print(f"predicted cost over 48 h: {cur}{meta['cost']:.2f} vs {cur}{meta['baseline_cost']:.2f} without a "
              f"battery (saves {cur}{meta['baseline_cost'] - meta['cost']:.2f}); plain self-consumption "
              f"{cur}{meta['self_consumption_cost']:.2f}; next 24 h saves {cur}{meta['savings_24h']:.2f}")
        print(f"\nnext {hours:g} hours (local time):")
        print(action_blocks(window, site.timezone, limit=40).to_string(index=False))
        cmds = store.query(
            "SELECT issued_at, command, outcome, written, readback, error FROM commands WHERE site_id = ? "
            "ORDER BY issued_at DESC LIMIT 3", [site.id])
        print("\nwritten to the battery:")
        for _, c in cmds.iterrows():
            print(f"  {c['command']} -> {c['outcome']} written={c['written']} readback={c['readback']}"
                  + (f" error={c['error']}" if c["error"] else ""))
        tel = store.query("SELECT ts, soc, mode, battery_charge_kw, battery_discharge_kw FROM telemetry "
                          "WHERE site_id = ? ORDER BY ts DESC LIMIT 1", [site.id])
        if not tel.empty:
            t = tel.iloc[0]
            print(f"battery read back: SOC {t['soc'] * 100:.1f}%, mode {t['mode']}, "
                  f"charge {t['battery_charge_kw']:.2f} kW, discharge {t['battery_discharge_kw']:.2f} kW")
    if not result.success:
        for ev in result.all_events:
            if ev.is_failure:
                print(f"\nFAILED step {ev.step_key}: {ev.event_specific_data.error.message.strip()}", file=sys.stderr)
    print(f"\nDuckDB history: {db}")
    print("  e.g. .venv/bin/python -c \"import duckdb; print(duckdb.connect('" + str(db) +
          "', read_only=True).sql('select * from plans'))\"")
    print(f"Dagster run {result.run_id} stored in DAGSTER_HOME={os.environ.get('DAGSTER_HOME')}")
    print("Open the UI: make ui   (then http://127.0.0.1:3000)")
