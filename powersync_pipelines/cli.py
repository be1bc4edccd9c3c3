"""The ``powersync`` command.

Each subcommand lives in ``powersync_pipelines/commands/<name>.py`` with ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Only the invoked command's module is imported, so ``powersync optimize`` does not
pay for importing Dagster. A command whose module is absent is simply not offered.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings

COMMANDS: dict[str, str] = {
    "demo": "Run the main job once on the demo site (simulated Sungrow SH on loopback) and print a summary",
    "ui": "Start the Dagster UI + daemon with the demo site, the simulator and the schedules running",
    "web": "Serve the homeowner's page (what each battery does now and next, why, and what it saved)",
    "sites": "Validate a sites file and list its sites",
    "simulate": "Run a battery simulator (Modbus/HTTP peer) in the foreground",
    "optimize": "Solve a battery schedule for a problem JSON",
    "prices": "Fetch and print a provider's normalised price frame",
    "backtest": "Replay historical prices through the planner and report savings",
    "service": "Run a battery/inverter service (force_charge, restore_normal, ...)",
    "status": "Show who holds each site's battery, the current plan slot, SOC, the last command and price freshness",
    "tariff": "Write the TOU tariff payload a site would get now",
    "forecast": "Show a site's solar forecast (Solcast or pvlib), where it came from and the Solcast call budget",
    "auth": "Show a site's cloud log-ins (Tesla, Sigenergy, Solcast) without their secrets; --refresh to renew",
    "ocpp": "Run the OCPP 1.6J central system for the sites' EV chargers",
    "ha": "Publish sites to Home Assistant over MQTT discovery and take HA's commands (ha serve)",
    "sql": "Run one SQL query on the history (DuckDB file, or PostgreSQL when POWERSYNC_DATABASE_URL is set)",
    "history": "History retention: `history compact` keeps old plans' schedule rows in effect and deletes the superseded",
    "bench": "Benchmarks of the live path: `bench fleet --sites N` plans N generated sites in one production cycle",
}


def _available() -> dict[str, str]:
    return {
        name: help_
        for name, help_ in COMMANDS.items()
        if importlib.util.find_spec(f"powersync_pipelines.commands.{name}") is not None
    }


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="powersync", description="PowerSync Pipelines: plan and drive home batteries.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in _available().items():
        p = sub.add_parser(name, help=help_, description=help_, conflict_handler="resolve")  # a command may own -h
        if only is None or name == only:
            importlib.import_module(f"powersync_pipelines.commands.{name}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Dagster marks some parameters we rely on (e.g. backfill_policy) as beta; users need not see that.
    warnings.filterwarnings("ignore", message=r".*is currently in beta.*")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only=chosen or "")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(f"powersync_pipelines.commands.{args.command}")
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
