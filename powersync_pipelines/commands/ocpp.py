"""``powersync ocpp serve [--sites F] [--host H] --port N``: the OCPP 1.6J central system in the foreground.

Charge points declared in the sites file (``ev: {charger: ocpp, charge_point_id: ...}``) connect to
``ws://HOST:PORT/<charge_point_id>``; what they report goes to the DuckDB history, and setpoints requested by
the planning cycle (``ev_setpoints``) are sent to them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

HELP = "Run the OCPP 1.6J central system for the sites' EV chargers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ocpp_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser("serve", help="serve charge points on ws://HOST:PORT/<charge_point_id>")
    s.add_argument("--sites", help="sites YAML (default $POWERSYNC_SITES or data/sites.yaml)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, required=True, help="TCP port (0 = any free port)")
    s.add_argument("--db", help="DuckDB file (default $POWERSYNC_DUCKDB or $POWERSYNC_HOME/powersync.duckdb)")
    s.add_argument("--heartbeat-s", type=int, default=300, help="heartbeat interval told to charge points")
    s.add_argument("--meter-interval-s", type=int, default=60, help="MeterValueSampleInterval set after boot")
    s.add_argument("--poll-s", type=float, default=1.0, help="how often pending setpoints are picked up")


def _fail(msg: str) -> int:
    print(f"powersync ocpp: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..control.ev import arbitrated_resend
    from ..ev.ocpp_central import CentralSystem
    from ..storage import HistoryStore

    if not 0 <= args.port <= 65535:
        return _fail(f"--port {args.port} is not a TCP port")
    if args.heartbeat_s <= 0 or args.meter_interval_s < 0 or args.poll_s <= 0:
        return _fail("--heartbeat-s and --poll-s must be positive, --meter-interval-s non-negative")
    try:
        sites = load_sites(args.sites)
    except SiteConfigError as exc:
        return _fail(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ocpp").setLevel(logging.WARNING)  # one line per frame otherwise
    store = HistoryStore(args.db)
    cs = CentralSystem(store, sites, host=args.host, port=args.port, heartbeat_s=args.heartbeat_s,
                       meter_interval_s=args.meter_interval_s, poll_s=args.poll_s,
                       resend=arbitrated_resend(store, sites))
    if not cs.chargers:
        print("powersync ocpp: no site declares an ocpp charger; serving anyway (every identity gets 404)",
              file=sys.stderr)
    ids = ", ".join(f"{cp} ({spec.site_id})" for cp, spec in cs.chargers.items()) or "none"
    print(f"OCPP 1.6J central system on ws://{args.host}:{args.port}/<charge_point_id>; charge points: {ids}",
          flush=True)
    try:
        asyncio.run(cs.run())
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc}")
    except KeyboardInterrupt:
        pass
    return 0
