"""``powersync service NAME --site-id ID [...]``: run one battery/inverter service and print its JSON result.

Exit codes: 0 done and verified, 1 the device refused or failed (reason on stderr, battery left in a safe
state), 2 invalid input (unknown site/service, a service the battery kind does not have, bad parameter).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..devices.services import SERVICES

HELP = "Run a battery/inverter service (force_charge, restore_normal, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "services:\n" + "\n".join(f"  {n:<28} {h}" for n, h in SERVICES.items())
    parser.add_argument("name", metavar="NAME", help="service name (listed below)")
    parser.add_argument("--site-id", required=True, help="site id in the sites file")
    parser.add_argument("--sites", default=None, help="sites file (default: $POWERSYNC_SITES or the demo)")
    parser.add_argument("--duration-minutes", type=int, default=None, help="forced-mode duration, 15-240 (default 30)")
    parser.add_argument("--percent", type=float, default=None, help="backup reserve percent")
    parser.add_argument("--kw", type=float, default=None, help="power in kW (force power, charge/discharge rate)")
    parser.add_argument("--watts", default=None, help="export limit in W, or 'none' for no limit")
    parser.add_argument("--mode", default=None, help="Tesla operation mode: self_consumption|autonomous|backup")
    parser.add_argument("--export", default=None, help="Tesla export rule: never|pv_only|battery_ok")
    parser.add_argument("--enabled", default=None, help="true|false (grid charging)")
    parser.add_argument("--period", default=None, help="get_calendar_history: day|week|month|year|lifetime")
    parser.add_argument("--now", default=None, help="sync_tou_schedule: planning instant (ISO)")
    parser.add_argument("--format", default=None, help="sync_tou_schedule: tariff format")
    parser.add_argument("--force", action="store_true", help="sync_tou_schedule: upload even if unchanged")
    parser.add_argument("--dry-run", action="store_true", help="sync_tou_schedule: build but do not upload")


def _fail(msg: str) -> int:
    print(f"powersync service: {msg}", file=sys.stderr)
    return 2


def params_from(args: argparse.Namespace) -> dict[str, object]:
    keys = ("duration_minutes", "percent", "kw", "watts", "mode", "export", "enabled", "period", "now", "format")
    out: dict[str, object] = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.force:
        out["force"] = True
    if args.dry_run:
        out["dry_run"] = True
    return out


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..devices.services import ServiceInputError, run_service
    from ..paths import duckdb_path
    from ..storage import HistoryStore

    if args.name not in SERVICES:
        return _fail(f"unknown service {args.name!r}; run 'powersync service --help' for the list")
    try:
        site = load_sites(args.sites).get(args.site_id)
    except SiteConfigError as exc:
        return _fail(str(exc).replace("\n", " "))
    try:
        result = run_service(args.name, site, params_from(args), HistoryStore(duckdb_path()))
    except (ServiceInputError, ValueError) as exc:
        return _fail(str(exc))
    print(json.dumps(result, indent=2, default=str))
    if not result.get("ok"):
        print(f"powersync service {args.name}: {result.get('outcome', 'failed')}: {result.get('error')}",
              file=sys.stderr)
        return 1
    return 0
