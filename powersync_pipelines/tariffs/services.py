"""Services this domain owns: ``curtail_inverter``, ``restore_inverter``, ``sync_tou_schedule``.

``powersync service NAME --site-id ID`` (the devices CLI) and the Dagster jobs call ``run_service``; the reply is
a JSON-able dict with ``ok`` and the details (command ids, outcome, payload hash, ...).
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..storage import HistoryStore
from .sync import FORMATS, default_format, sync_tariff

SIGENERGY_SAVE = "/device/stationelecsetprice/save"
SERVICES = {
    "curtail_inverter": "Curtail the site's AC-coupled inverter to zero export (settings saved for restore)",
    "restore_inverter": "Restore the site's AC-coupled inverter to its saved (or no-limit) settings",
    "sync_tou_schedule": "Build the TOU tariff for now and upload it if it changed materially (--force: always)",
}


class ServiceError(ValueError):
    """Invalid service input (unknown name, bad --now, wrong format for the battery)."""


def site_now(site: SiteConfig, explicit: str | None = None) -> pd.Timestamp:
    """``--now`` if given, the replay clock for replay sites, else the wall clock (UTC)."""
    if explicit:
        try:
            ts = pd.Timestamp(explicit)
        except ValueError as exc:
            raise ServiceError(f"--now {explicit!r} is not an ISO timestamp") from exc
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    from ..pipeline import site_now as planning_now

    if site.provider.kind == "replay":
        from ..prices.replay import default_replay_now

        return default_replay_now(site)
    return planning_now(site)


def _tesla_uploader(site: SiteConfig, store: HistoryStore):  # noqa: ANN202
    def upload(payload: dict[str, Any]) -> dict[str, Any]:
        from ..devices.base import DeviceError, open_device

        with open_device(site, store) as device:
            result = device.upload_tariff(payload["tariff_content_v2"])
        if not result.ok:
            raise DeviceError(f"upload_tariff {result.outcome}: {result.error}")
        return {"command_id": result.command_id, "readback": result.readback}

    return upload


def _sigenergy_uploader(site: SiteConfig):  # noqa: ANN202
    """Upload through the Sigenergy cloud client (app login from the env vars the battery section names)."""
    import os

    b = site.battery
    user = os.environ.get(b.cloud_username_env) if b.cloud_username_env else None
    password = os.environ.get(b.cloud_password_env) if b.cloud_password_env else None
    if not (b.cloud_base_url and user and password):
        return None

    def upload(payload: dict[str, Any]) -> dict[str, Any]:
        from ..devices.sigenergy_cloud import cloud_for_site

        cloud = cloud_for_site(site)  # device id, and tokens kept between runs
        try:
            body = {**payload, "stationId": cloud.station_id(b.station_id)}
            return {"stationId": body["stationId"], "reply": cloud.request("POST", SIGENERGY_SAVE, body)}
        finally:
            cloud.close()

    return upload


def sync_tou_schedule(site: SiteConfig, store: HistoryStore, now: pd.Timestamp, fmt: str | None = None,
                      force: bool = False, dry_run: bool = False,
                      prices: pd.DataFrame | None = None) -> dict[str, Any]:
    """Build, decide and (for Tesla/Sigenergy batteries) upload. ``prices`` defaults to a fresh provider fetch;
    the ``tou_tariff_payload`` asset passes the horizon ``price_forecast`` stored, so both see the same prices."""
    fmt = fmt or default_format(site)
    if fmt not in FORMATS:
        raise ServiceError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if prices is None:
        from ..prices.registry import fetch_price_frame

        prices = fetch_price_frame(site, now)
    latest = store.read_latest_plan(site.id)
    plan = latest[1] if latest else None
    upload = None
    note = None
    if not dry_run and fmt == "tesla" and site.battery.kind == "tesla":
        upload = _tesla_uploader(site, store)
    elif not dry_run and fmt == "sigenergy" and site.battery.kind == "sigenergy":
        upload = _sigenergy_uploader(site)
        if upload is None:
            note = ("not uploaded: battery.cloud_base_url / cloud_username_env / cloud_password_env are not all set "
                    "(payload stored)")
    elif not dry_run:
        note = f"not uploaded: battery kind {site.battery.kind!r} takes no {fmt} tariff upload from this product"
    decision = sync_tariff(prices, site, now, store, upload, fmt=fmt, plan=plan, force=force)
    out = decision.summary()
    out["ok"] = decision.action != "abort" and decision.error is None
    if note and decision.action == "upload":
        out["note"] = note
    return out


def run_service(name: str, site: SiteConfig, args: argparse.Namespace, store: HistoryStore) -> dict[str, Any]:
    """Dispatch one of ``SERVICES`` for ``site``; unknown names raise ``ServiceError``."""
    if name in ("curtail_inverter", "restore_inverter"):
        from ..devices.inverters.control import curtail_inverter, restore_inverter

        fn = curtail_inverter if name == "curtail_inverter" else restore_inverter
        return fn(site, store).as_dict()
    if name == "sync_tou_schedule":
        now = site_now(site, getattr(args, "now", None))
        return sync_tou_schedule(site, store, now, fmt=getattr(args, "format", None) or None,
                                 force=bool(getattr(args, "force", False)), dry_run=bool(getattr(args, "dry_run", False)))
    raise ServiceError(f"unknown service {name!r}; this module provides {', '.join(SERVICES)}")
