"""``powersync web [--sites F] [--port N]``: the homeowner's page alone (``powersync ui`` starts it next to
Dagster). Reads the history store read-only; prints its URL."""

from __future__ import annotations

import argparse
import sys

HELP = "Serve the homeowner's page (what each battery does now and next, why, and what it saved)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sites", help="sites YAML (default $POWERSYNC_SITES or data/sites.yaml)")
    parser.add_argument("--port", type=int, default=3001, help="port (default 3001)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dagster-url", help="the Dagster UI's URL, for links to the runs behind the page")
    parser.add_argument("--now", help="planning instant (ISO UTC) the page shows; default the sites' clock "
                        "($POWERSYNC_FIXED_NOW or the live/replay clock)")


def run(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from ..config import SiteConfigError, load_sites
    from ..control.clock import Clock
    from ..paths import duckdb_path
    from ..webui.app import create_app

    try:
        sites = load_sites(args.sites)
        clock = Clock(fixed=args.now or os.environ.get("POWERSYNC_FIXED_NOW"))
        app = create_app(sites, duckdb_path(), args.dagster_url, clock)
    except (SiteConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Homeowner page on http://{args.host}:{args.port}/ (history {duckdb_path()}, read-only)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
