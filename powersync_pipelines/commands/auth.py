"""``powersync auth --site-id ID [--refresh]``: the state of a site's cloud log-ins, never the tokens.

Tesla Fleet API (``battery.refresh_token_env``): where the rotated refresh token is kept, when the access
token expires, how many rotations; ``--refresh`` refreshes now (proves the chain works, rotates it).
Sigenergy cloud: whether tokens are kept and until when; ``--refresh`` logs in / refreshes now.
Solcast: today's calls against the daily limit. Exit 0 when every log-in checked is good, 1 when a refresh
was refused or failed (the reason on stderr), 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "Show a site's cloud log-ins (Tesla, Sigenergy, Solcast) without their secrets; --refresh to renew"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site-id", required=True, help="site id in the sites file")
    parser.add_argument("--sites", help="sites file (default $POWERSYNC_SITES or the demo)")
    parser.add_argument("--refresh", action="store_true", help="refresh (Tesla) / log in (Sigenergy) now")


def _iso(epoch: Any) -> str | None:
    import pandas as pd

    return pd.Timestamp(float(epoch), unit="s", tz="UTC").isoformat() if epoch else None


def tesla_status(site: Any, refresh: bool) -> dict[str, Any]:
    from ..devices.tesla import fleet_oauth

    o = fleet_oauth(site)
    try:
        if refresh:
            o.renew()
        st = o.status()
    finally:
        o.close()
    return {"login": "tesla_fleet_oauth", **st, "access_expires_at": _iso(st["access_expires_at"]),
            "refreshed_at": _iso(st["refreshed_at"]), "refreshed_now": refresh}


def sigenergy_status(site: Any, refresh: bool) -> dict[str, Any]:
    from ..devices.sigenergy_cloud import cloud_for_site

    c = cloud_for_site(site)
    try:
        if refresh:
            c.renew()
        stored = c.credentials.read()
    finally:
        c.close()
    return {"login": "sigenergy_cloud", "base_url": c.base_url, "credential_file": str(c.credentials.path),
            "device_id_sent": bool(site.battery.cloud_device_id), "stored": bool(stored.get("access_token")),
            "access_expires_at": _iso(stored.get("expires_at")), "refreshed_now": refresh}


def solcast_status(site: Any) -> dict[str, Any]:
    import pandas as pd

    from ..forecasts.solcast import account_of, api_key, read_ledger
    from ..storage import HistoryStore

    key = api_key(site)
    out: dict[str, Any] = {"login": "solcast", "resources": site.solar.solcast_resources,
                           "key_env": site.solar.solcast_token_env, "key_set": key is not None,
                           "daily_limit": site.solar.solcast_daily_limit}
    if key is not None:
        wall = pd.Timestamp.now(tz="UTC")
        led = read_ledger(HistoryStore(), account_of(key), site.solar.solcast_resources[0], wall)
        out.update(calls_today=led.used_today, quota_exhausted=led.quota_exhausted, rejected=led.rejected,
                   last_ok_at=led.last_ok_at.isoformat() if led.last_ok_at is not None else None,
                   last_failure=led.last_failure)
    return out


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..devices.base import DeviceError

    try:
        site = load_sites(args.sites).get(args.site_id)
    except SiteConfigError as exc:
        print(f"powersync auth: {exc}", file=sys.stderr)
        return 2
    b = site.battery
    logins: list[dict[str, Any]] = []
    failed: list[str] = []
    checks = []
    if b.kind == "tesla" and b.refresh_token_env:
        checks.append(("tesla", lambda: tesla_status(site, args.refresh)))
    if b.kind == "sigenergy" and b.cloud_username_env and b.cloud_password_env:
        checks.append(("sigenergy", lambda: sigenergy_status(site, args.refresh)))
    for name, check in checks:
        try:
            logins.append(check())
        except DeviceError as exc:
            failed.append(f"{name}: {exc}")
            logins.append({"login": name, "error": str(exc)})
    if site.solar is not None and site.solar.solcast_resources:
        logins.append(solcast_status(site))
    if not logins:
        print(f"powersync auth: site {site.id!r} has no cloud log-in to check (Tesla refresh_token_env, "
              "Sigenergy cloud_*_env, or Solcast)", file=sys.stderr)
        return 2
    print(json.dumps({"site_id": site.id, "logins": logins}, indent=2, default=str))
    for f in failed:
        print(f"powersync auth: {f}", file=sys.stderr)
    return 1 if failed else 0
