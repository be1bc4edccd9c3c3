"""``powersync prices``: fetch (or read a saved payload) and print a provider's normalised price frame.

For owners and installers checking a setup: does the token work, is the region right, what does the next
day look like. CSV columns: interval_start (ISO 8601 UTC), import_price, export_price, spike_status,
is_forecast (+ rrp for AEMO-based providers).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import pandas as pd

HELP = "Fetch and print a provider's normalised price frame"
LIVE_KINDS = ("amber", "aemo", "flow_power", "globird", "octopus")
CSV_COLUMNS = ["interval_start", "import_price", "export_price", "spike_status", "is_forecast"]
REGION_TZ = {"NSW1": "Australia/Sydney", "QLD1": "Australia/Brisbane", "VIC1": "Australia/Melbourne",
             "SA1": "Australia/Adelaide", "TAS1": "Australia/Hobart"}


class InputError(ValueError):
    """Invalid command-line input (exit code 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", choices=[*LIVE_KINDS, "replay", "normalized"],
                        help="price provider (default: the site's, with --sites/--site-id)")
    parser.add_argument("--region", help="NEM region for AEMO-based providers (NSW1, QLD1, VIC1, SA1, TAS1)")
    parser.add_argument("--gsp", help="Octopus GSP region letter (A-P)")
    parser.add_argument("--product", help="Octopus import product code or family (AGILE-24-10-01, agile, go, flux, tracker)")
    parser.add_argument("--export-product", help="Octopus export product code or family (agile_outgoing, flux_export)")
    parser.add_argument("--from", dest="start", help="first interval to print (ISO 8601; naive = UTC)")
    parser.add_argument("--to", dest="end", help="print intervals before this instant (ISO 8601; naive = UTC)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--file", help="read a saved payload instead of the network (Amber JSON, NEMWEB CSV/zip, "
                        "AEMO price-and-demand CSV, Octopus JSON page or CSV, normalised CSV)")
    parser.add_argument("--export-file", help="Octopus only: saved export rates to pair with --file")
    parser.add_argument("--sites", help="sites file (default $POWERSYNC_SITES or the demo)")
    parser.add_argument("--site-id", help="take the provider settings from this site")
    parser.add_argument("--amber-site-id", help="Amber site id (default: discovered from /sites)")
    parser.add_argument("--token-env", default=None, help="env var holding the Amber token (default AMBER_API_TOKEN)")
    parser.add_argument("--resolution", type=int, choices=[5, 30], help="Amber resolution in minutes")
    parser.add_argument("--horizon", type=float, default=48.0, help="hours ahead to fetch (default 48)")
    parser.add_argument("--now", help="the clock (ISO 8601 UTC); default: the current time")


def _instant(text: str | None, what: str) -> pd.Timestamp | None:
    if not text:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise InputError(f"{what}: not an ISO 8601 time: {text!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def build_site(args: argparse.Namespace) -> Any:
    """The site whose provider section the command uses: from the sites file, overridden by the flags."""
    from pydantic import ValidationError

    from ..config import SiteConfig, SiteConfigError, load_sites

    overrides: dict[str, Any] = {}
    for flag, field in (("region", "region"), ("gsp", "gsp"), ("product", "product"),
                        ("export_product", "export_product"), ("amber_site_id", "site_id"),
                        ("token_env", "token_env"), ("resolution", "resolution")):
        value = getattr(args, flag)
        if value is not None:
            overrides[field] = value.upper() if field in ("region", "gsp") else value
    if args.site_id or args.sites:
        sites = load_sites(args.sites)
        base = sites.get(args.site_id) if args.site_id else sites.sites[0]
        raw = base.model_dump()
        prov = dict(raw["provider"])
        if args.provider and args.provider != prov["kind"]:
            prov = {"kind": args.provider, "retail": prov["retail"]}
        prov.update(overrides)
        if args.file:
            prov.pop("file", None)
        raw["provider"] = prov
        try:
            return SiteConfig.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise SiteConfigError(f"site {base.id!r}: {where}: {err['msg'].removeprefix('Value error, ')}") from None
    if not args.provider:
        raise InputError("give --provider (or --sites/--site-id)")
    kind = args.provider
    prov = {"kind": kind, **overrides}
    if kind == "amber":
        prov.setdefault("token_env", "AMBER_API_TOKEN")
    if kind in ("aemo", "flow_power", "globird") and "region" not in prov:
        if args.file:
            prov["region"] = "VIC1"  # placeholder for validation; single-region files carry their own
        else:
            raise InputError(f"--provider {kind} needs --region (NSW1, QLD1, VIC1, SA1, TAS1)")
    if kind == "octopus" and "gsp" not in prov:
        raise InputError("--provider octopus needs --gsp (a GSP region letter A-P)")
    if kind == "globird":
        raise InputError("globird prices are a static TOU tariff: give --sites/--site-id with provider.tou")
    if kind in ("replay", "normalized") and not args.file:
        raise InputError(f"--provider {kind} needs --file")
    if kind in ("replay", "normalized"):
        prov["file"] = args.file
    tz = "Europe/London" if kind == "octopus" else REGION_TZ.get(prov.get("region", ""), "Australia/Sydney")
    raw_site = {
        "id": "cli", "timezone": tz, "country": "UK" if kind == "octopus" else "AU", "provider": prov,
        "battery": {"kind": "simulated", "capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5},
    }
    try:
        return SiteConfig.model_validate(raw_site)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or "provider"
        raise InputError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None


def load_frame(args: argparse.Namespace, site: Any, now: pd.Timestamp, end: pd.Timestamp | None) -> pd.DataFrame:
    from ..prices.registry import fetch_price_frame
    from ..prices.saved import read_provider_file

    kind = site.provider.kind
    if args.file:
        if kind in ("replay", "normalized"):
            from ..prices.history import read_normalized_csv

            return read_normalized_csv(args.file, source=kind)
        region = args.region.upper() if args.region else None
        prov = site.provider if region or kind not in ("aemo", "flow_power", "globird") else \
            site.provider.model_copy(update={"region": None})
        return read_provider_file(kind, args.file, prov, site.timezone, export_path=args.export_file)
    horizon = args.horizon if end is None else max((end - now).total_seconds() / 3600.0, 0.5)
    return fetch_price_frame(site, now, horizon_hours=horizon)


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _columns(frame: pd.DataFrame) -> list[str]:
    return CSV_COLUMNS + (["rrp"] if "rrp" in frame else [])


def render(frame: pd.DataFrame, fmt: str) -> str:
    out = frame.copy()
    out.insert(0, "interval_start", [_iso(t) for t in out.index])
    if fmt == "csv":
        cols = _columns(frame)
        body = out[cols].copy()
        body["is_forecast"] = body["is_forecast"].map({True: "true", False: "false"})
        return body.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    if fmt == "json":
        records = []
        for rec in out.reset_index(drop=True).to_dict(orient="records"):
            clean = {}
            for k, v in rec.items():
                if isinstance(v, pd.Timestamp):
                    v = _iso(v)
                elif isinstance(v, float) and math.isnan(v):
                    v = None
                elif hasattr(v, "item"):
                    v = v.item()
                elif v is pd.NA:
                    v = None
                clean[k] = v
            records.append(clean)
        return json.dumps(records, indent=1) + "\n"
    cols = _columns(frame) + [c for c in ("price_low", "price_high", "provenance") if c in frame]
    table = out[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}")
    src = frame["source"].iloc[0] if len(frame) else "-"
    summary = (f"\n{len(frame)} intervals from {src}; import {frame['import_price'].min():.4f}..{frame['import_price'].max():.4f}, "
               f"export {frame['export_price'].min():.4f}..{frame['export_price'].max():.4f} per kWh; "
               f"{int(frame['is_forecast'].sum())} forecast, {int((frame['spike_status'] != 'none').sum())} spike-flagged")
    return table + summary + "\n"


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError
    from ..prices.errors import PriceDataError
    from ..prices.history import PriceFileError
    from ..prices.quality import apply_gap_policy
    from ..schemas import FrameSchemaError

    try:
        start = _instant(args.start, "--from")
        end = _instant(args.end, "--to")
        now = _instant(args.now, "--now") or pd.Timestamp.now(tz="UTC")
        if args.export_file and not args.file:
            raise InputError("--export-file needs --file")
        site = build_site(args)
        frame = apply_gap_policy(load_frame(args, site, now, end), site.provider.kind)
    except (InputError, SiteConfigError) as exc:
        print(f"powersync prices: {exc}", file=sys.stderr)
        return 2
    except (PriceDataError, PriceFileError, FrameSchemaError) as exc:
        print(f"powersync prices: {exc}", file=sys.stderr)
        return 2 if args.file else 1
    for warning in frame.attrs.get("warnings", []):
        print(f"powersync prices: warning: {warning}", file=sys.stderr)
    if start is not None:
        frame = frame[frame.index >= start]
    if end is not None:
        frame = frame[frame.index < end]
    if frame.empty:
        print("powersync prices: no intervals in the requested window", file=sys.stderr)
        return 1
    sys.stdout.write(render(frame, args.format))
    return 0
