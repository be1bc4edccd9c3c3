"""``powersync service NAME --site-id ID [...]``: run one service of the registry and print its JSON result.

The flags are generated from the services' typed parameters (``control.services``): each parameter name is
offered once, and the service named on the command line says which it takes. A flag several services share
with different meanings lists each service's wording; ``powersync service NAME --help`` shows only NAME's
parameters, in its own words. Exit codes: 0 done and verified
(or yielded to a higher owner by ``sync_now``), 1 the device refused, failed, or a higher owner holds it (reason
on stderr, battery left in a safe state), 2 invalid input (unknown site/service, a service the battery kind does
not have, a parameter it does not take or out of range).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..control.services import REGISTRY, SERVICES, Param, Service, all_params

HELP = "Run a battery/inverter service (force_charge, restore_normal, ...)"


def _help_text(p: Param) -> str:
    return p.describe().replace("%", "%%")  # argparse formats help with %


def shared_help(name: str) -> str:
    """One flag's help for the shared parser: the wording, or each service's where they differ."""
    by_text: dict[str, list[str]] = {}
    for s in SERVICES:
        p = s.param(name)
        if p is not None:
            by_text.setdefault(_help_text(p), []).append(s.name)
    if len(by_text) == 1:
        return next(iter(by_text))
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in by_text.items())


def _add_param(parser: argparse.ArgumentParser, p: Param, text: str) -> None:
    if p.flag:
        parser.add_argument(p.cli, action="store_true", default=None, help=text)
    else:
        parser.add_argument(p.cli, default=None, metavar=p.name.upper(), help=text)


def service_parser(prog: str, service: Service) -> argparse.ArgumentParser:
    """The help of one service: its description, who it acts as, and only its parameters in its own words."""
    acts = f"acts as {service.owner}" if service.owner else "reads only"
    kinds = f"; batteries: {service.kinds_label or ', '.join(service.battery_kinds)}" if service.battery_kinds else ""
    parser = argparse.ArgumentParser(prog=f"{prog} {service.name}", description=f"{service.help} ({acts}{kinds})",
                                     add_help=False)
    parser.add_argument("--site-id", required=True, help="site id in the sites file")
    parser.add_argument("--sites", default=None, help="sites file (default: $POWERSYNC_SITES or the demo)")
    for p in service.params:
        _add_param(parser, p, _help_text(p) + (" (required)" if p.required else ""))
    return parser


class _ServiceHelp(argparse.Action):
    """``-h``/``--help``: the named service's own help when a known NAME precedes it, else the full list."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: object) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS,
                         help="show this help (after NAME: that service's own parameters) and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        service = REGISTRY.get(getattr(namespace, "name", None) or "")
        if service is None:
            parser.print_help()
        else:
            service_parser(parser.prog, service).print_help()
        parser.exit()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("-h", "--help", action=_ServiceHelp)
    lines = []
    for s in REGISTRY.values():
        takes = " ".join(p.cli for p in s.params)
        lines.append(f"  {s.name:<28} {s.help}" + (f"\n  {'':<28} takes: {takes}" if takes else ""))
    parser.epilog = "services (acting as manual unless stated):\n" + "\n".join(lines)
    parser.add_argument("name", metavar="NAME", help="service name (listed below; NAME --help for its parameters)")
    parser.add_argument("--site-id", required=True, help="site id in the sites file")
    parser.add_argument("--sites", default=None, help="sites file (default: $POWERSYNC_SITES or the demo)")
    for p in all_params().values():
        _add_param(parser, p, shared_help(p.name))


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
