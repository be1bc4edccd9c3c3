"""``powersync tariff``: write the TOU payload a site would get now (nothing is uploaded)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "Write the TOU tariff payload a site would get now"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site-id", required=True, help="site id from the sites file")
    parser.add_argument("--sites", default=None, help="sites file (default: $POWERSYNC_SITES or the demo)")
    parser.add_argument("--format", choices=("tesla", "sigenergy"), default=None,
                        help="payload format (default: sigenergy for Sigenergy batteries, else tesla)")
    parser.add_argument("--out", required=True, help="where to write the JSON payload ('-' = stdout)")
    parser.add_argument("--now", default=None, help="ISO instant to build for (default: replay clock or now)")


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..control.clock import Clock
    from ..prices.registry import fetch_price_frame
    from ..tariffs.periods import TariffError
    from ..tariffs.sync import build_payload, default_format

    try:
        site = load_sites(args.sites).get(args.site_id)
        now = Clock(fixed=args.now).site_now(site)
        fmt = args.format or default_format(site)
        prices = fetch_price_frame(site, now)
        payload = build_payload(fmt, prices, site, now)
    except (SiteConfigError, TariffError, ValueError, FileNotFoundError) as exc:
        print(f"powersync tariff: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(payload, indent=2)
    if args.out == "-":
        print(text)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(f"{fmt} tariff for site {site.id} at {now.isoformat()} written to {out}", file=sys.stderr)
    return 0
