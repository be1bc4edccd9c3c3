"""``powersync sites``: validate a sites file and list its sites (errors name site and field)."""

from __future__ import annotations

import argparse
import sys

HELP = "Validate a sites file and list its sites"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sites", help="sites YAML (default $POWERSYNC_SITES or data/sites.yaml)")


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites

    try:
        sites = load_sites(args.sites)
    except SiteConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{sites.path}: {len(sites.sites)} site(s) OK")
    for s in sites.sites:
        b = s.battery
        print(f"  {s.id:<16} {s.timezone:<22} provider={s.provider.kind:<10} battery={b.kind} "
              f"{b.capacity_kwh} kWh {b.max_charge_kw}/{b.max_discharge_kw} kW reserve {b.reserve_fraction:.0%}")
    return 0
