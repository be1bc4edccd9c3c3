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
    parser.add_argument("--registers", action="store_true",
                        help="also print the raw registers written to the battery and read back")


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
    from ..prices.replay import default_replay_now
    from ..sim.site_devices import simulated_devices
    from ..storage import history_location
    from .instance import PoolWaitGuard, prepared_instance

    site = sites.sites[0]
    fixed = args.now or (default_replay_now(site).isoformat() if site.provider.kind == "replay" else None)
    db = history_location()  # $POWERSYNC_DATABASE_URL (PostgreSQL), else the DuckDB file
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
                "history": HistoryStoreResource(path=db),
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
    _print_summary(sites.sites, db, args.hours, result, instance, args.registers)
    print(f"\nfinished in {time.perf_counter() - t0:.1f} s")
    return 0 if result.success and not _commands_failed(result) else 1


def _commands_failed(result) -> list[str]:
    """The failed ``commands_carried_out`` check as a line each: a failed battery command fails the demo (exit
    1), as it did when the step raised; the run itself goes on so the other sites' telemetry is stored."""
    from ..defs.planning.assets import COMMANDS_CHECK

    out = []
    for ev in result.get_asset_check_evaluations():
        if ev.check_name == COMMANDS_CHECK and not ev.passed:
            summary = ev.metadata.get("summary")
            out.append(f"{ev.asset_key.to_user_string()} check {ev.check_name}: "
                       f"{summary.value if summary is not None else 'failed'}")
    return list(dict.fromkeys(out))  # one line per distinct failure (a check per site partition repeats it)


ACTION_WORDS = {
    "CHARGE": "charge from the grid",
    "EXPORT": "discharge into the house and the grid",
    "SELF_CONSUMPTION": "run self-consumption (cover the house, store surplus solar)",
    "IDLE": "hold its charge",
}


def money(x: float, cur: str) -> str:
    """A cost in words: ``earns $1.70`` for a negative cost, ``costs $1.70`` for a positive one."""
    return f"earns {cur}{-x:.2f}" if x < 0 else f"costs {cur}{x:.2f}"


def _print_summary(sites, db, hours: float, result, instance, registers: bool = False) -> None:
    import json

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
        print(f"over the next 48 h the home {money(meta['cost'], cur)} with the battery and "
              f"{money(meta['baseline_cost'], cur)} without a battery: the battery is worth "
              f"{cur}{meta['baseline_cost'] - meta['cost']:.2f} ({cur}{meta['savings_24h']:.2f} in the next 24 h); "
              f"plain self-consumption {money(meta['self_consumption_cost'], cur)}")
        table = action_blocks(window, site.timezone, limit=40).rename(columns={
            "battery_kw": "battery kW (+charge)", "soc_end_pct": "SOC at end %",
            "import_price": f"import {cur}/kWh", "export_price": f"export {cur}/kWh"})
        print(f"\nnext {hours:g} hours ({site.timezone} time; battery kW is the block's mean, + = charging):")
        print(table.to_string(index=False))
        cmds = store.query(
            "SELECT issued_at, command, params, outcome, written, readback, error FROM commands WHERE site_id = ? "
            "ORDER BY issued_at DESC LIMIT 1", [site.id])
        print("\nwhat the battery was told:")
        for _, c in cmds.iterrows():
            try:
                params = json.loads(c["params"]) if isinstance(c["params"], str) else {}
            except ValueError:
                params = {}
            action = str(params.get("action") or c["command"].removeprefix("apply:"))
            kw = params.get("applied_kw", params.get("power_kw"))
            what = ACTION_WORDS.get(action, c["command"]) + (f" at {float(kw):.2f} kW" if kw is not None else "")
            verdict = "done, confirmed by reading it back" if c["outcome"] == "ok" else c["outcome"]
            print(f"  {what}: {verdict}" + (f" ({c['error']})" if c["error"] else ""))
            if kw is not None and action in ("CHARGE", "EXPORT"):
                print(f"    (the plan's current 5-minute slot asks for {float(kw):.2f} kW; the table above shows "
                      "each block's mean, which can be lower)")
            if registers:
                print(f"    registers written {c['written']}, read back {c['readback']}")
        tel = store.query("SELECT ts, soc, mode, battery_charge_kw, battery_discharge_kw FROM telemetry "
                          "WHERE site_id = ? ORDER BY ts DESC LIMIT 1", [site.id])
        if not tel.empty:
            t = tel.iloc[0]
            net = float(t["battery_charge_kw"] - t["battery_discharge_kw"])
            doing = "charging" if net > 0.005 else "discharging" if net < -0.005 else "idle"
            print(f"battery read back: SOC {t['soc'] * 100:.1f}%, mode {t['mode']}, {doing} {abs(net):.2f} kW")
    if not result.success:
        for ev in result.all_events:
            if ev.is_failure:
                print(f"\nFAILED step {ev.step_key}: {ev.event_specific_data.error.message.strip()}", file=sys.stderr)
    for line in _commands_failed(result):
        print(f"\nFAILED {line}", file=sys.stderr)
    if store.backend == "postgresql":
        print(f"\nPostgreSQL history: {store.describe()}")
    else:
        print(f"\nDuckDB history: {db}")
    print("  e.g. .venv/bin/powersync sql \"select plan_id, status, cost from plans\"")
    print(f"Dagster run {result.run_id} stored in DAGSTER_HOME={os.environ.get('DAGSTER_HOME')}")
    print("Open the UI: make ui   (then http://127.0.0.1:3000 for Dagster, http://127.0.0.1:3001 for the "
          "homeowner's page)")
