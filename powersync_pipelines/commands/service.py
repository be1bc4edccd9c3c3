"""``powersync service NAME --site-id ID [...]``: run one service of the registry and print its JSON result.

The flags are generated from the services' typed parameters (``control.services``): each parameter name is
offered once, and the service named on the command line says which it takes. Exit codes: 0 done and verified
(or yielded to a higher owner by ``sync_now``), 1 the device refused, failed, or a higher owner holds it (reason
on stderr, battery left in a safe state), 2 invalid input (unknown site/service, a service the battery kind does
not have, a parameter it does not take or out of range).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..control.services import REGISTRY, all_params

HELP = "Run a battery/inverter service (force_charge, restore_normal, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    lines = []
    for s in REGISTRY.values():
        takes = " ".join(p.cli for p in s.params)
        lines.append(f"  {s.name:<28} {s.help}" + (f"\n  {'':<28} takes: {takes}" if takes else ""))
    parser.epilog = "services (acting as manual unless stated):\n" + "\n".join(lines)
    parser.add_argument("name", metavar="NAME", help="service name (listed below)")
    parser.add_argument("--site-id", required=True, help="site id in the sites file")
    parser.add_argument("--sites", default=None, help="sites file (default: $POWERSYNC_SITES or the demo)")
    for p in all_params().values():
        text = p.describe().replace("%", "%%")  # argparse formats help with %
        if p.flag:
            parser.add_argument(p.cli, action="store_true", default=None, help=text)
        else:
            parser.add_argument(p.cli, default=None, metavar=p.name.upper(), help=text)


def _fail(msg: str) -> int:
    print(f"powersync service: {msg}", file=sys.stderr)
    return 2


def params_from(args: argparse.Namespace) -> dict[str, object]:
    """The parameters given on the command line (absent flags are left out, so defaults apply)."""
    return {name: getattr(args, name) for name in all_params() if getattr(args, name, None) is not None}


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..control.context import ControlContext
    from ..control.services import ServiceInputError, run_service
    from ..storage import HistoryStore

    if args.name not in REGISTRY:
        return _fail(f"unknown service {args.name!r}; run 'powersync service --help' for the list")
    try:
        site = load_sites(args.sites).get(args.site_id)
    except SiteConfigError as exc:
        return _fail(str(exc).replace("\n", " "))
    try:
        result = run_service(args.name, site, params_from(args), ControlContext(HistoryStore()))
    except ServiceInputError as exc:
        return _fail(str(exc))
    print(json.dumps(result, indent=2, default=str))
    if not result.get("ok"):
        print(f"powersync service {args.name}: {result.get('outcome', 'failed')}: {result.get('error')}",
              file=sys.stderr)
        return 1
    return 0
