"""``powersync forecast solar --site-id ID``: the site's solar forecast as the planner would get it now.

For owners checking a Solcast setup: is the key read, which source served (Solcast or pvlib, and why), how
many of today's Solcast calls are spent, and what the next 48 h look like (P50 with P10/P90). It goes
through the same cache and call budget as the pipeline, so running it never spends a call the budget
does not allow. JSON: ``{"site_id", "now", "provenance": {...}, "energy_kwh_48h": {"p10", "p50", "p90"},
"peak_kw", "intervals": [{"interval_start", "solar_kw", "p10_kw", "p90_kw"}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import pandas as pd

HELP = "Show a site's solar forecast (Solcast or pvlib), where it came from and the Solcast call budget"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["solar"], help="which forecast")
    parser.add_argument("--site-id", required=True, help="site id in the sites file")
    parser.add_argument("--sites", help="sites file (default $POWERSYNC_SITES or the demo)")
    parser.add_argument("--now", help="planning instant (ISO 8601 UTC; default: the site's clock)")
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
    parser.add_argument("--store", action="store_true", help="also store it in DuckDB `forecasts` (as the asset does)")


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..control.clock import Clock
    from ..forecasts.solar import site_solar_forecast, store_solar_forecast
    from ..storage import HistoryStore
    from ..timegrid import STEPS_PER_HOUR, horizon_index

    try:
        site = load_sites(args.sites).get(args.site_id)
        now = Clock(fixed=args.now).site_now(site)
    except (SiteConfigError, ValueError) as exc:
        print(f"powersync forecast: {exc}", file=sys.stderr)
        return 2
    store = HistoryStore()
    fc = site_solar_forecast(site, horizon_index(now), store, now)
    if args.store:
        store_solar_forecast(store, site.id, fc, now)
    frame = pd.DataFrame({"solar_kw": fc.kw,
                          "p10_kw": fc.p10 if fc.p10 is not None else float("nan"),
                          "p90_kw": fc.p90 if fc.p90 is not None else float("nan")}, index=fc.kw.index)
    if args.format == "csv":
        out = frame.copy()
        out.index = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in out.index]
        sys.stdout.write(out.to_csv(index_label="interval_start", float_format="%.4f", lineterminator="\n"))
        return 0
    energy = {q: _num(frame[c].sum() / STEPS_PER_HOUR) if frame[c].notna().any() else None
              for q, c in (("p10", "p10_kw"), ("p50", "solar_kw"), ("p90", "p90_kw"))}
    prov = fc.provenance.as_dict()
    if args.format == "json":
        doc = {"site_id": site.id, "now": now.isoformat(), "provenance": prov, "energy_kwh_48h": energy,
               "peak_kw": _num(frame["solar_kw"].max()),
               "intervals": [{"interval_start": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "solar_kw": _num(r.solar_kw),
                              "p10_kw": _num(r.p10_kw), "p90_kw": _num(r.p90_kw)} for t, r in frame.iterrows()]}
        print(json.dumps(doc, indent=1))
        return 0
    print(f"site {site.id} at {now.isoformat()}: {prov['model']} (source {prov['source']})")
    if prov["reason"]:
        print(f"  Solcast not used: {prov['reason']}: {prov['detail']}")
    if prov["refresh_error"]:
        print(f"  Solcast refresh failed ({prov['refresh_error']}); serving the cache from {prov['fetched_at']}")
    if prov["daily_limit"]:
        print(f"  Solcast calls today (UTC): {prov['calls_today']} of {prov['daily_limit']}"
              f"{' (one made now)' if prov['call_made'] else ''}; data fetched {prov['fetched_at'] or '-'}")
    spread = f" (P10 {energy['p10']}, P90 {energy['p90']})" if energy["p10"] is not None else ""
    print(f"  next 48 h: {energy['p50']} kWh{spread}, peak {frame['solar_kw'].max():.2f} kW")
    hourly = frame.resample("1h").mean().iloc[:24]
    hourly.index = [t.strftime("%m-%d %H:%MZ") for t in hourly.index]
    print(hourly.to_string(float_format=lambda x: f"{x:.3f}", na_rep="-"))
    return 0
