"""The TOU tariff sync (``sync_tou_schedule``): build the payload, decide, upload through the arbiter, store.

A tariff upload drives a Tesla or Sigenergy battery as surely as a forced mode does, so it is a request of the
``optimizer`` for the ``battery`` control, written once (``instant``): while a spike tariff, a manual force or an
automation holds the battery, the upload is yielded and the payload stored as not sent. Payload building and
the "changed materially?" decision are the tariffs domain's (``tariffs.sync``).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..devices import DeviceError
from ..devices.sigenergy_cloud import cloud_for_site
from ..prices.registry import fetch_price_frame
from ..tariffs.sync import FORMATS, Uploader, default_format, sync_tariff
from .arbiter import Request
from .context import ControlContext

SIGENERGY_SAVE = "/device/stationelecsetprice/save"

__all__ = ["FORMATS", "sync_tou_schedule"]


def _request(site: SiteConfig, fmt: str) -> Request:
    return Request(site.id, "battery", "optimizer", f"upload_tariff:{fmt}", "TOU tariff for the current plan",
                   instant=True, device_kind=site.battery.kind)


def _tesla_uploader(ctx: ControlContext, site: SiteConfig) -> Uploader:
    def upload(payload: dict[str, Any]) -> dict[str, Any]:
        with ctx.battery(site) as device:
            out = ctx.arbiter.act(_request(site, "tesla"), lambda: device.upload_tariff(payload["tariff_content_v2"]))
        if not out.ok:
            raise DeviceError(out.describe())
        return {"command_id": out.command_id, "readback": out.result.readback}

    return upload


class _CloudUpload:
    """The Sigenergy cloud's reply as a command outcome the arbiter can settle a hold with."""

    def __init__(self, reply: dict[str, Any] | None, error: str | None) -> None:
        self.reply, self.error = reply, error
        self.ok = error is None
        self.outcome = "ok" if self.ok else "error"
        self.command_id = None
        self.written = {"stationelecsetprice": True}


def _sigenergy_uploader(ctx: ControlContext, site: SiteConfig) -> Uploader | None:
    """Upload through the Sigenergy cloud client (app login from the env vars the battery section names)."""
    b = site.battery
    user = os.environ.get(b.cloud_username_env) if b.cloud_username_env else None
    password = os.environ.get(b.cloud_password_env) if b.cloud_password_env else None
    if not (b.cloud_base_url and user and password):
        return None

    def post(payload: dict[str, Any]) -> _CloudUpload:
        try:
            cloud = cloud_for_site(site)  # the account's device id, and its tokens kept between runs
        except DeviceError as exc:
            return _CloudUpload(None, str(exc))
        try:
            body = {**payload, "stationId": cloud.station_id(b.station_id)}
            return _CloudUpload({"stationId": body["stationId"],
                                 "reply": cloud.request("POST", SIGENERGY_SAVE, body)}, None)
        except DeviceError as exc:
            return _CloudUpload(None, str(exc))
        finally:
            cloud.close()

    def upload(payload: dict[str, Any]) -> dict[str, Any]:
        out = ctx.arbiter.act(_request(site, "sigenergy"), lambda: post(payload))
        if not out.ok:
            raise DeviceError(out.describe())
        return out.result.reply

    return upload


def sync_tou_schedule(ctx: ControlContext, site: SiteConfig, now: pd.Timestamp, fmt: str | None = None,
                      force: bool = False, dry_run: bool = False,
                      prices: pd.DataFrame | None = None, scheduled: bool = False) -> dict[str, Any]:
    """Build, decide and (for Tesla/Sigenergy batteries) upload. ``prices`` defaults to a fresh provider fetch;
    the ``tou_tariff_payload`` asset passes the horizon ``price_forecast`` stored, so both see the same prices.

    ``scheduled``: the planning cycle's own sync, which a site with ``auto_tou_sync`` or ``optimization`` off
    skips (nothing built, nothing uploaded); the ``sync_tou_schedule`` service is a person's request and runs."""
    fmt = fmt or default_format(site)
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if scheduled and not (site.auto_tou_sync and site.optimization):
        off = "auto_tou_sync" if not site.auto_tou_sync else "optimization"
        return {"format": fmt, "action": "skipped", "reason": f"{off} is off for site {site.id!r}", "sent": False,
                "ok": True}
    if prices is None:
        prices = fetch_price_frame(site, now)
    latest = ctx.store.read_latest_plan(site.id)
    plan = latest[1] if latest else None
    upload = None
    note = None
    if not dry_run and fmt == "tesla" and site.battery.kind == "tesla":
        upload = _tesla_uploader(ctx, site)
    elif not dry_run and fmt == "sigenergy" and site.battery.kind == "sigenergy":
        upload = _sigenergy_uploader(ctx, site)
        if upload is None:
            note = ("not uploaded: battery.cloud_base_url / cloud_username_env / cloud_password_env are not all set "
                    "(payload stored)")
    elif not dry_run:
        note = f"not uploaded: battery kind {site.battery.kind!r} takes no {fmt} tariff upload from this product"
    decision = sync_tariff(prices, site, now, ctx.store, upload, fmt=fmt, plan=plan, force=force)
    out = decision.summary()
    out["ok"] = decision.action != "abort" and decision.error is None
    if note and decision.action == "upload":
        out["note"] = note
    return out
