"""The battery services of SPEC §12, shared by ``powersync service`` and the Dagster service jobs.

``run_service(name, site, params, store)`` returns a JSON-able dict with ``ok``; invalid input (unknown service,
a service the site's battery kind does not have, a missing/bad parameter) raises ``ServiceInputError``.
Generic services dispatch to the site's battery kind; ``sungrow_*`` services need a Sungrow SH site; Tesla-only
services say so for other kinds. ``curtail_inverter``, ``restore_inverter`` and ``sync_tou_schedule`` belong to
``tariffs.services`` and ``sync_now`` to ``pipeline.run_cycle``; both are imported only when asked for.
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..storage import HistoryStore
from .base import CommandResult, DeviceError, open_device, restore_expired

SERVICES: dict[str, str] = {
    "force_charge": "Force charge for --duration-minutes (15-240, default 30) at --kw (default: rated)",
    "force_discharge": "Force discharge for --duration-minutes at --kw (refused at or below the reserve)",
    "restore_normal": "Put back the state saved before the forced mode (or self-consumption)",
    "set_backup_reserve": "Set the backup reserve to --percent",
    "set_operation_mode": "Tesla: operation mode --mode self_consumption|autonomous|backup",
    "set_grid_export": "Tesla: export rule --export never|pv_only|battery_ok",
    "set_grid_charging": "Tesla: allow grid charging --enabled true|false",
    "sungrow_force_charge": "Sungrow SH: forced charge (EMS 13049=2, 13050=0xAA, power 13051)",
    "sungrow_force_discharge": "Sungrow SH: forced discharge (13049=2, 13050=0xBB, power 13051)",
    "sungrow_restore_normal": "Sungrow SH: back to the saved state / self-consumption (13049=0)",
    "sungrow_set_backup_reserve": "Sungrow SH: backup reserve register 13099 = --percent",
    "sungrow_set_charge_rate": "Sungrow SH: max charge power 33046 = --kw",
    "sungrow_set_discharge_rate": "Sungrow SH: max discharge power 33047 = --kw",
    "sungrow_set_export_limit": "Sungrow SH: export limit 13073 = --watts and switch 13086 (--watts none: off)",
    "sync_battery_health": "Read the battery's state of health and store it",
    "get_calendar_history": "Tesla: energy calendar history (--period day|week|month|year)",
    "sync_now": "Run one planning + command cycle for the site now",
    "curtail_inverter": "Curtail the site's AC-coupled inverter to zero export",
    "restore_inverter": "Restore the site's AC-coupled inverter",
    "sync_tou_schedule": "Build and upload the TOU tariff for now",
}
DELEGATED = ("curtail_inverter", "restore_inverter", "sync_tou_schedule")
TESLA_ONLY = ("set_operation_mode", "set_grid_export", "set_grid_charging", "get_calendar_history")


class ServiceInputError(ValueError):
    """Bad input for a service: the message says which service, site and parameter."""


def _need(params: dict[str, Any], key: str, name: str, flag: str) -> Any:
    value = params.get(key)
    if value is None:
        raise ServiceInputError(f"service {name} needs {flag}")
    return value


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ServiceInputError(f"service {name}: --enabled must be true or false, got {value!r}")


def _watts(value: Any, name: str) -> float | None:
    if value is None or str(value).strip().lower() in ("none", "off", "unlimited"):
        return None
    try:
        return float(value)
    except ValueError:
        raise ServiceInputError(f"service {name}: --watts must be a number or 'none', got {value!r}") from None


def _result(name: str, site: SiteConfig, r: CommandResult, **extra: Any) -> dict[str, Any]:
    return {"service": name, "site_id": site.id, "battery_kind": site.battery.kind, "ok": r.ok,
            "outcome": r.outcome, "error": r.error, "command": r.command, "params": r.params, "written": r.written,
            "readback": r.readback, "command_id": r.command_id, **extra}


def run_service(name: str, site: SiteConfig, params: dict[str, Any], store: HistoryStore) -> dict[str, Any]:
    if name not in SERVICES:
        raise ServiceInputError(f"unknown service {name!r}; services: {', '.join(SERVICES)}")
    kind = site.battery.kind
    if name in DELEGATED:
        return _delegate(name, site, params, store)
    if name == "sync_now":
        return _sync_now(site, store, params)
    if name.startswith("sungrow_") and kind != "sungrow_sh":
        raise ServiceInputError(f"service {name} is for Sungrow SH batteries; site {site.id!r} has a {kind} battery")
    if name in TESLA_ONLY and kind != "tesla":
        raise ServiceInputError(f"service {name} is for Tesla Powerwall; site {site.id!r} has a {kind} battery "
                                f"which has no such control")
    base = name.removeprefix("sungrow_")
    pending = restore_expired(store, site)  # an expired forced mode is put back before anything else
    with open_device(site, store) as dev:
        extra: dict[str, Any] = {"expired_restore": pending.outcome if pending is not None else None}
        if base in ("force_charge", "force_discharge"):
            minutes = int(params.get("duration_minutes") or 30)
            kw = params.get("kw")
            fn = dev.force_charge if base == "force_charge" else dev.force_discharge
            return _result(name, site, fn(minutes, None if kw is None else float(kw)), **extra)
        if base == "restore_normal":
            return _result(name, site, dev.restore_normal(), **extra)
        if base == "set_backup_reserve":
            return _result(name, site, dev.set_backup_reserve(float(_need(params, "percent", name, "--percent"))),
                           **extra)
        if base == "set_charge_rate":
            return _result(name, site, dev.set_charge_rate(float(_need(params, "kw", name, "--kw"))), **extra)
        if base == "set_discharge_rate":
            return _result(name, site, dev.set_discharge_rate(float(_need(params, "kw", name, "--kw"))), **extra)
        if base == "set_export_limit":
            if "watts" not in params:
                raise ServiceInputError(f"service {name} needs --watts (a number, or 'none' for no limit)")
            return _result(name, site, dev.set_export_limit(_watts(params.get("watts"), name)), **extra)
        if base == "set_operation_mode":
            return _result(name, site, dev.set_operation_mode(str(_need(params, "mode", name, "--mode"))), **extra)
        if base == "set_grid_export":
            return _result(name, site, dev.set_grid_export(str(_need(params, "export", name, "--export"))), **extra)
        if base == "set_grid_charging":
            enabled = _bool(_need(params, "enabled", name, "--enabled true|false"), name)
            return _result(name, site, dev.set_grid_charging(enabled), **extra)
        if base == "sync_battery_health":
            return _battery_health(dev, site, store)
        if base == "get_calendar_history":
            return _calendar(dev, site, store, params)
    raise ServiceInputError(f"service {name} is not wired")  # unreachable: every name is handled above


def _battery_health(dev: Any, site: SiteConfig, store: HistoryStore) -> dict[str, Any]:
    try:
        health = dev.battery_health()
    except DeviceError as exc:
        store.record_command(site.id, site.battery.kind, "sync_battery_health", "error", error=str(exc))
        return {"service": "sync_battery_health", "site_id": site.id, "ok": False, "error": str(exc)}
    cid = store.record_command(site.id, site.battery.kind, "sync_battery_health", "ok", readback=health)
    if health.get("soh") is not None:
        store.upsert_telemetry(site.id, pd.Timestamp.now(tz="UTC"),
                               {"soh": health["soh"], "soc": health.get("soc"), "mode": "health_check",
                                "raw": health})
    return {"service": "sync_battery_health", "site_id": site.id, "ok": True, "health": health, "command_id": cid}


def _calendar(dev: Any, site: SiteConfig, store: HistoryStore, params: dict[str, Any]) -> dict[str, Any]:
    period = params.get("period") or "day"
    if period not in ("day", "week", "month", "year", "lifetime"):
        raise ServiceInputError(f"service get_calendar_history: --period {period!r} is not day|week|month|year|lifetime")
    try:
        data = dev.calendar_history(kind=params.get("kind") or "energy", period=period,
                                    start_date=params.get("start_date"), end_date=params.get("end_date"))
    except DeviceError as exc:
        store.record_command(site.id, "tesla", "get_calendar_history", "error", params={"period": period},
                             error=str(exc))
        return {"service": "get_calendar_history", "site_id": site.id, "ok": False, "error": str(exc)}
    series = data.get("time_series", [])
    store.record_command(site.id, "tesla", "get_calendar_history", "ok", params={"period": period},
                         readback={"points": len(series)})
    return {"service": "get_calendar_history", "site_id": site.id, "ok": True, "period": period,
            "points": len(series), "time_series": series}


def _delegate(name: str, site: SiteConfig, params: dict[str, Any], store: HistoryStore) -> dict[str, Any]:
    """Tariff and inverter services live in the tariffs domain (imported lazily: it pulls in the inverters)."""
    from ..tariffs.services import run_service as tariff_service

    return tariff_service(name, site, argparse.Namespace(**params), store)


def _sync_now(site: SiteConfig, store: HistoryStore, params: dict[str, Any]) -> dict[str, Any]:
    """One planning cycle outside Dagster (imported lazily: the pipeline imports the optimizer and pvlib)."""
    from ..pipeline import run_cycle

    out = run_cycle(site, store, now=params.get("now"))
    summary = out
    return {"service": "sync_now", "site_id": site.id, "ok": bool(summary.get("ok", True)), **summary}
