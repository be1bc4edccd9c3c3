"""``powersync status [--sites F] [--site-id ID] [--format table|json]``: who holds each site's battery and what it does.

Per site: the holder (``optimizer``, ``spike``, ``automation``, ``manual``, ``curtailment``, ``ev``, ``safety`` or
``none``) and until when, the plan's current slot (action, kW, until), the SOC, the last command and its outcome,
how fresh the prices are and the site's switches; with an EV charger, who holds it, the car's session, mode and current limit. Read from the DuckDB history (the control ledger, plans, telemetry, commands).
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "Show who holds each site's battery, the current plan slot, SOC, the last command and price freshness"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sites", default=None, help="sites file (default: $POWERSYNC_SITES or the demo)")
    parser.add_argument("--site-id", default=None, help="only this site")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")


def _table(rows: list[dict]) -> str:
    def cell(v: object, nd: int = 2) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.{nd}f}"
        return str(v)

    lines = []
    for r in rows:
        until = f" until {r['held_until']}" if r["held_until"] else ""
        soc = f"{r['soc'] * 100:.1f} %" if r["soc"] is not None else "-"
        slot = (f"{r['action']} {cell(r['power_kw'])} kW until {r['slot_until']}"
                + ("" if r["plan_current"] else " (latest plan; not the current slot)")) if r["action"] else "no plan"
        prices = ("-" if r["price_age_minutes"] is None else
                  f"fetched {r['price_age_minutes']:.0f} min ago" + (" (STALE)" if r["prices_stale"] else ""))
        last = (f"{r['last_command']} -> {r['last_outcome']}" + (f" ({r['last_command_owner']})"
                if r["last_command_owner"] else "")) if r["last_command"] else "-"
        lines += [f"site {r['site_id']}",
                  f"  holder       {r['holder']}{until}" + (f"  [{r['held_by_command']}]" if r["held_by_command"] else ""),
                  f"  plan slot    {slot}",
                  f"  SOC          {soc}",
                  f"  last command {last}" + (f": {r['last_error']}" if r["last_error"] else ""),
                  f"  prices       {prices}"]
        if r.get("switches"):
            sw = r["switches"]
            lines.append(f"  switches     optimization {sw['optimization']}, auto_tou_sync {sw['auto_tou_sync']}, "
                         f"cost_function {sw['cost_function']}")
        if r.get("ev"):
            ev = r["ev"]
            ev_until = f" until {ev['held_until']}" if ev["held_until"] else ""
            limit = ev["current_limit"]
            session = (f"session {ev['session'].get('energy_kwh')} kWh delivered" if ev["session"] else "no session")
            lines.append(f"  ev charger   {ev['charger']} {ev['charger_status'] or '-'}, holder {ev['holder']}{ev_until}, "
                         f"mode {ev['mode']}, {session}"
                         + (f", limit {cell(limit.get('value'), 0)} {limit.get('unit')}" if limit else ""))
        for control, h in r["controls"].items():
            if control not in ("battery", "ev_charger"):
                lines.append(f"  {control:<12} held by {h['holder']} ({h['command']})"
                             + (f" until {h['held_until']}" if h["held_until"] else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..control.context import ControlContext
    from ..control.status import fleet_status
    from ..storage import HistoryStore

    try:
        sites = load_sites(args.sites)
        chosen = [sites.get(args.site_id)] if args.site_id else sites.sites
    except SiteConfigError as exc:
        print(f"powersync status: {str(exc).replace(chr(10), ' ')}", file=sys.stderr)
        return 2
    rows = fleet_status(ControlContext(HistoryStore()), chosen)
    print(json.dumps(rows, indent=2, default=str) if args.format == "json" else _table(rows))
    return 0
