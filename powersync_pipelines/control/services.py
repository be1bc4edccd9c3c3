"""The service registry: every service of SPEC section 12, declared once with typed parameters and an owner.

Each :class:`Service` says what it does, which parameters it takes (type, unit, range, choices), which battery
kinds have it, and on whose behalf it acts (``manual`` for a person's command, ``optimizer`` for a planning
cycle, None for reads). The ``powersync service`` CLI flags, the Dagster service jobs' config and the Home
Assistant commands are generated from :data:`REGISTRY`; nothing else parses service input.

``run_service(name, site, params, ctx)`` validates the parameters, settles what a lapsed lease left behind (a
forced mode whose time ran out is put back first), then carries the service out through the arbiter. It returns
a JSON-able dict with ``ok`` and the details; invalid input raises :class:`ServiceInputError` (one line naming
the service, the site and the parameter) before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..config.ev import EV_MODES
from ..config.switches import COST_FUNCTIONS, on_off
from ..devices import DeviceError
from ..devices.base import MAX_FORCE_MINUTES, MIN_FORCE_MINUTES
from ..devices.inverters.control import curtail_inverter, restore_inverter
from ..ev.state import EvSettingsError, ev_status, save_settings
from ..owners import Control, Owner, check_owner
from ..prices.errors import PriceDataError
from . import ledger, switches
from .arbiter import Outcome, Request
from .clock import Clock, parse_instant
from .context import ControlContext
from .cycle import hand_back, run_cycle
from .ev import manual_command
from .history import PERIODS, HistoryInputError, calendar_history
from .restore import settle
from .tariff_sync import FORMATS, sync_tou_schedule

TRUE_TEXT = ("true", "1", "yes", "on")
FALSE_TEXT = ("false", "0", "no", "off")
NONE_TEXT = ("none", "off", "unlimited")


class ServiceInputError(ValueError):
    """Bad input for a service: the message says which service, site and parameter."""


@dataclass(frozen=True)
class Param:
    """One typed service parameter. ``name`` is the Python/JSON name; the CLI flag is ``--name-with-dashes``."""

    name: str
    kind: type  # int | float | str | bool
    help: str
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # ``minimum`` itself is refused (a power of 0 kW means nothing)
    choices: tuple[str, ...] | None = None
    required: bool = False
    default: Any = None
    none_text: bool = False  # ``none`` / ``off`` / ``unlimited`` mean "no value" (an export limit switched off)
    flag: bool = False  # a bool given by its presence on the command line (``--force``)
    label: str | None = None  # how a person calls it (Home Assistant's refusals); default: ``help`` capitalized

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def human(self) -> str:
        """The name a refusal shown to a person uses instead of the CLI flag."""
        return self.label or self.help[:1].upper() + self.help[1:]

    def describe(self) -> str:
        parts = [self.help]
        if self.unit:
            parts.append(f"[{self.unit}]")
        if self.choices:
            parts.append("|".join(self.choices))
        if self.minimum is not None or self.maximum is not None:
            lo = "" if self.minimum is None else f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
            hi = "" if self.maximum is None else f"<= {self.maximum:g}"
            parts.append(" and ".join(p for p in (lo, hi) if p))
        if self.default is not None:
            parts.append(f"(default {self.default})")
        return " ".join(parts)

    def parse(self, raw: Any, service: str, human: bool = False) -> Any:
        """``raw`` (CLI text, JSON or a Python value) as this parameter's type, checked; a clear error if not.
        ``human``: the error names the parameter by its label (a person in Home Assistant sees no CLI flags)."""
        where = self.human if human else f"service {service}: {self.cli}"
        if raw is None or (self.none_text and isinstance(raw, str) and raw.strip().lower() in NONE_TEXT):
            return None
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in TRUE_TEXT:
                return True
            if text in FALSE_TEXT:
                return False
            raise ServiceInputError(f"{where} must be {'on or off' if human else 'true or false'}, got {raw!r}")
        if self.kind in (int, float):
            if isinstance(raw, bool):
                raise ServiceInputError(f"{where} must be a number, got {raw!r}")
            try:
                value = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
            except (TypeError, ValueError):
                raise ServiceInputError(f"{where} must be a number, got {raw!r}") from None
            if not math.isfinite(value):
                raise ServiceInputError(f"{where} must be a finite number, got {raw!r}")
            if self.kind is int:
                if not value.is_integer():
                    raise ServiceInputError(f"{where} must be a whole number, got {raw!r}")
                value = int(value)
            unit = f" {self.unit}" if self.unit else ""
            if self.minimum is not None and (value < self.minimum or (self.exclusive_minimum and value == self.minimum)):
                op = ">" if self.exclusive_minimum else ">="
                raise ServiceInputError(f"{where} must be {op} {self.minimum:g}{unit}, got {raw!r}")
            if self.maximum is not None and value > self.maximum:
                raise ServiceInputError(f"{where} must be <= {self.maximum:g}{unit}, got {raw!r}")
            return value
        text = str(raw).strip()
        if self.choices and text not in self.choices:
            raise ServiceInputError(f"{where} must be one of {', '.join(self.choices)}, got {raw!r}")
        return text


@dataclass
class ServiceCall:
    """One validated call: the handler's whole input."""

    service: Service
    site: SiteConfig
    ctx: ControlContext
    params: dict[str, Any]
    owner: Owner | None

    def request(self, control: Control, command: str | None = None, **kw: Any) -> Request:
        assert self.owner is not None, f"service {self.service.name} acts as nobody"
        reason = kw.pop("reason", None) or f"service {self.service.name} ({self.owner})"
        kw.setdefault("device_kind", self.site.battery.kind)
        return Request(self.site.id, control, self.owner, command or self.service.base, reason, **kw)


Handler = Callable[[ServiceCall], dict[str, Any]]


@dataclass(frozen=True)
class Service:
    name: str
    help: str
    handler: Handler
    params: tuple[Param, ...] = ()
    owner: Owner | None = "manual"  # who the service acts as; None: it only reads
    battery_kinds: tuple[str, ...] | None = None  # None: every kind
    kinds_label: str = ""  # how the kinds are named in errors ("Tesla Powerwall")

    @property
    def base(self) -> str:
        """The command name without a brand prefix (``sungrow_force_charge`` -> ``force_charge``)."""
        return self.name.removeprefix("sungrow_")

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# -- parameters shared by several services --------------------------------------------------------------------
DURATION = Param("duration_minutes", int, "forced-mode duration", unit="min", minimum=MIN_FORCE_MINUTES,
                 maximum=MAX_FORCE_MINUTES, default=30, label="Force duration")
FORCE_KW = Param("kw", float, "power (default: the battery's rating; above it is clamped to the rating)",
                 unit="kW", minimum=0, exclusive_minimum=True, label="Force power")
RATE_KW = Param("kw", float, "rate (above the battery's rating is clamped to the rating)", unit="kW", minimum=0,
                required=True, label="Rate")
PERCENT = Param("percent", float, "backup reserve", unit="%", minimum=0, maximum=100, required=True)
WATTS = Param("watts", float, "export limit, or 'none' for no limit", unit="W", minimum=0, required=True,
              none_text=True, label="Export limit")
NOW = Param("now", str, "planning instant (ISO; default: the site's clock)", label="Planning instant")
EV_HOLD = Param("duration_minutes", int, "how long the EV plan may not override a start/stop", unit="min",
                minimum=MIN_FORCE_MINUTES, maximum=720, default=120, label="EV hold duration")
AMPS = Param("amps", float, "charging current per phase (default: the charger's max; above it is clamped to it)",
             unit="A", minimum=0, exclusive_minimum=True, label="Charging current")


# -- handlers ---------------------------------------------------------------------------------------------------
def _result(call: ServiceCall, out: Outcome, **extra: Any) -> dict[str, Any]:
    """The reply of a device service: the driver's record plus the arbiter's decision."""
    r = out.result
    reply: dict[str, Any] = {
        "service": call.service.name, "site_id": call.site.id, "battery_kind": call.site.battery.kind,
        "owner": call.owner, "ok": out.ok, "outcome": out.outcome, "decision": out.decision,
        "error": out.as_dict()["error"], "command": getattr(r, "command", out.request.command),
        "params": getattr(r, "params", {}), "written": getattr(r, "written", {}),
        "readback": getattr(r, "readback", {}), "command_id": out.command_id, "arbiter": out.as_dict(), **extra,
    }
    if out.yielded and out.holder is not None:
        reply["error"] = f"yielded: {out.holder.describe()} holds the {out.request.control}"
        reply["holder"] = out.holder.owner
        reply["held_until"] = out.holder.lease_until.isoformat() if out.holder.lease_until is not None else None
    return reply


def _battery_command(control: Control, write: Callable[[Any, dict[str, Any]], Any], *, lease: bool = False,
                     releases: bool = False, instant: bool = False) -> Handler:
    """A handler that asks the arbiter for ``control`` and runs ``write(device, params)`` under the grant."""

    def handle(call: ServiceCall) -> dict[str, Any]:
        p = call.params
        until = None
        if lease:
            until = call.ctx.clock.wall() + _minutes(p.get("duration_minutes") or DURATION.default)
        req = call.request(control, lease_until=until, releases=releases, instant=instant)
        with call.ctx.battery(call.site) as device:
            return _result(call, call.ctx.arbiter.act(req, lambda: write(device, p)))

    return handle


def _minutes(n: int) -> pd.Timedelta:
    return pd.Timedelta(minutes=int(n))


def _force(direction: str) -> Handler:
    def write(device: Any, p: dict[str, Any]) -> Any:
        fn = device.force_charge if direction == "charge" else device.force_discharge
        return fn(int(p.get("duration_minutes") or DURATION.default), p.get("kw"))

    return _battery_command("battery", write, lease=True)


def _battery_health(call: ServiceCall) -> dict[str, Any]:
    site, store = call.site, call.ctx.store
    try:
        with call.ctx.battery(site) as device:
            health = device.battery_health()
    except DeviceError as exc:
        store.record_command(site.id, site.battery.kind, "sync_battery_health", "error", error=str(exc))
        return {"service": "sync_battery_health", "site_id": site.id, "ok": False, "error": str(exc)}
    cid = store.record_command(site.id, site.battery.kind, "sync_battery_health", "ok", readback=health)
    if health.get("soh") is not None:
        store.upsert_telemetry(site.id, call.ctx.clock.wall(),
                               {"soh": health["soh"], "soc": health.get("soc"), "mode": "health_check", "raw": health})
    return {"service": "sync_battery_health", "site_id": site.id, "ok": True, "health": health, "command_id": cid}


def _calendar(call: ServiceCall) -> dict[str, Any]:
    """Energy per flow and cost vs the no-battery baseline per local period, from the site's DuckDB history
    (every battery kind); ``--source tesla`` asks a Powerwall's own calendar API instead."""
    site, store, p = call.site, call.ctx.store, call.params
    period = p.get("period") or "day"
    asked = {k: p.get(k) for k in ("period", "start", "end", "source") if p.get(k) is not None}
    if p.get("source") == "tesla":
        if site.battery.kind not in TESLA:
            raise ServiceInputError(f"service get_calendar_history: --source tesla needs a Tesla Powerwall; site "
                                    f"{site.id!r} has a {site.battery.kind} battery (use --source duckdb)")
        try:
            with call.ctx.battery(site) as device:
                data = device.calendar_history(kind="energy", period=period, start_date=p.get("start"),
                                               end_date=p.get("end"))
        except DeviceError as exc:
            store.record_command(site.id, site.battery.kind, "get_calendar_history", "error", params=asked,
                                 error=str(exc))
            return {"service": "get_calendar_history", "site_id": site.id, "ok": False, "error": str(exc)}
        series = data.get("time_series", []) if isinstance(data, dict) else []
        store.record_command(site.id, site.battery.kind, "get_calendar_history", "ok", params=asked,
                             readback={"points": len(series)})
        return {"service": "get_calendar_history", "site_id": site.id, "ok": True, "source": "tesla",
                "period": period, "points": len(series), "time_series": series}
    try:
        now = parse_instant(p["now"]) if p.get("now") else call.ctx.clock.wall()
    except ValueError as exc:
        raise ServiceInputError(f"service get_calendar_history: {exc}") from None
    try:
        history = calendar_history(store, site.id, site.tz, period, now, p.get("start"), p.get("end"))
    except HistoryInputError as exc:
        raise ServiceInputError(f"service get_calendar_history: {exc}") from None
    return {"service": "get_calendar_history", "site_id": site.id, "ok": True, **history}


def _sync_now(call: ServiceCall) -> dict[str, Any]:
    ctx = _with_now(call)
    try:
        out = run_cycle(ctx, call.site)
    except (PriceDataError, LookupError) as exc:  # no usable prices: nothing planned, nothing pushed
        return {"service": "sync_now", "site_id": call.site.id, "ok": False, "outcome": "no_plan", "error": str(exc)}
    return {"service": "sync_now", "site_id": call.site.id, **out}


def _inverter(curtail: bool) -> Handler:
    def handle(call: ServiceCall) -> dict[str, Any]:
        site = call.site
        if site.ac_inverter is None:
            raise ServiceInputError(f"service {call.service.name}: site {site.id!r} has no ac_inverter section")
        req = call.request("inverter", releases=not curtail, device_kind=f"ac_inverter:{site.ac_inverter.brand}")
        with call.ctx.inverter(site) as inv:
            fn = curtail_inverter if curtail else restore_inverter
            out = call.ctx.arbiter.act(req, lambda: fn(site, call.ctx.store, inv))
        reply = out.result.as_dict() if out.result is not None else {"command": call.service.name, "ok": False}
        return {**reply, "service": call.service.name, "site_id": site.id, "owner": call.owner, "ok": out.ok,
                "outcome": out.outcome, "decision": out.decision, "error": out.as_dict()["error"],
                "arbiter": out.as_dict()}

    return handle


def _sync_tou(call: ServiceCall) -> dict[str, Any]:
    ctx = _with_now(call)
    p = call.params
    fmt = p.get("format")
    now = ctx.clock.site_now(call.site)
    return sync_tou_schedule(ctx, call.site, now, fmt=fmt, force=bool(p.get("force")), dry_run=bool(p.get("dry_run")))


def _with_now(call: ServiceCall) -> ControlContext:
    """The call's context, on a clock pinned to ``--now`` when the call gives one."""
    now = call.params.get("now")
    if not now:
        return call.ctx
    try:
        clock = Clock(fixed=now)
    except ValueError as exc:
        raise ServiceInputError(f"service {call.service.name}: {exc}") from None
    return ControlContext(call.ctx.store, clock, call.ctx.endpoints)


def _setter(method: str, *names: str) -> Callable[[Any, dict[str, Any]], Any]:
    return lambda device, p: getattr(device, method)(*(p[n] for n in names))


def _ev_site(call: ServiceCall) -> SiteConfig:
    if call.site.ev is None:
        raise ServiceInputError(f"service {call.service.name}: site {call.site.id!r} has no ev section")
    return call.site


def _ev_set_mode(call: ServiceCall) -> dict[str, Any]:
    """Persist the site's charging mode (and departure / target); the next planning cycle plans in it."""
    site, p = _ev_site(call), call.params
    try:
        settings = save_settings(call.ctx.store, site.id, p["mode"], p.get("departure"), p.get("target_kwh"),
                                 now=call.ctx.clock.wall())
    except EvSettingsError as exc:
        raise ServiceInputError(f"service {call.service.name}: {exc}") from None
    return {"service": call.service.name, "site_id": site.id, "owner": call.owner, "ok": True,
            "settings": settings.as_dict()}


def _ev_session(command: str) -> Handler:
    def handle(call: ServiceCall) -> dict[str, Any]:
        site, p = _ev_site(call), call.params
        assert call.owner is not None
        out = manual_command(call.ctx, site, command, p.get("duration_minutes") or EV_HOLD.default, p.get("amps"),
                             owner=call.owner)
        reply = _result(call, out, charger=f"ev_{site.ev.charger}" if site.ev else None)
        reply.pop("battery_kind", None)
        return reply

    return handle


def _ev_status(call: ServiceCall) -> dict[str, Any]:
    """The ``ev_status`` JSON plus who holds the charger; a cloud or local charger is read now."""
    site = _ev_site(call)
    assert site.ev is not None
    status, error = None, None
    if site.ev.charger != "ocpp":  # OCPP status is what the central system stored
        try:
            with call.ctx.charger(site) as charger:
                status = charger.read_status()
        except DeviceError as exc:
            error = str(exc)
    out = ev_status(call.ctx.store, site, status)
    hold = ledger.holder(call.ctx.store, site.id, "ev_charger", call.ctx.clock.wall())
    out.update(service="ev_status", ok=error is None, error=error,
               holder=hold.owner if hold is not None else "none",
               held_until=hold.lease_until.isoformat() if hold is not None and hold.lease_until is not None else None,
               held_by_command=hold.command if hold is not None else None)
    return out


def _switch(setting: str, param: str) -> Handler:
    """A handler that persists one site switch (it overrides the sites file until changed again). Switching
    optimization off hands the battery back at once if the optimizer holds it; a higher owner keeps it."""

    def handle(call: ServiceCall) -> dict[str, Any]:
        site, store = call.site, call.ctx.store
        value = call.params[param]
        before = switches.effective(store, site)
        assert call.owner is not None
        switches.save(store, site.id, setting, value, call.ctx.clock.wall(), call.owner)
        after = switches.effective(store, site)
        reply: dict[str, Any] = {
            "service": call.service.name, "site_id": site.id, "owner": call.owner, "ok": True, "setting": setting,
            "value": on_off(value) if isinstance(value, bool) else value,
            "previous": before.as_dict()[setting], "switches": after.as_dict(),
        }
        if setting == "optimization" and not value:
            out = hand_back(call.ctx, switches.in_effect(store, site))
            reply["hand_back"] = None if out is None else out.as_dict()
            if out is not None and not out.ok:
                reply.update(ok=False, error=f"saved, but the battery was not handed back: {out.describe()}")
        return reply

    return handle


OPTIMIZATION_ON = Param("enabled", bool, "on or off", required=True, label="Optimization")
AUTO_TOU_ON = Param("enabled", bool, "on or off", required=True, label="Automatic TOU sync")

SUNGROW = ("sungrow_sh",)
TESLA = ("tesla",)
SERVICES: tuple[Service, ...] = (
    Service("force_charge", "Force charge for --duration-minutes at --kw (default: rated)", _force("charge"),
            (DURATION, FORCE_KW)),
    Service("force_discharge", "Force discharge for --duration-minutes at --kw (refused at or below the reserve)",
            _force("discharge"), (DURATION, FORCE_KW)),
    Service("restore_normal", "Put back the state saved before the forced mode (or self-consumption) and give "
            "the battery back (the optimizer takes over at its next cycle)",
            _battery_command("battery", lambda d, p: d.restore_normal(), releases=True)),
    Service("set_backup_reserve", "Set the backup reserve to --percent",
            _battery_command("battery_settings", _setter("set_backup_reserve", "percent"), instant=True), (PERCENT,)),
    Service("set_operation_mode", "Tesla: operation mode --mode",
            _battery_command("battery_settings", _setter("set_operation_mode", "mode"), instant=True),
            (Param("mode", str, "operation mode", choices=("self_consumption", "autonomous", "backup"),
                   required=True, label="Operation mode"),), battery_kinds=TESLA, kinds_label="Tesla Powerwall"),
    Service("set_grid_export", "Tesla: export rule --export",
            _battery_command("battery_export", _setter("set_grid_export", "export"), instant=True),
            (Param("export", str, "export rule", choices=("never", "pv_only", "battery_ok"), required=True,
                    label="Export rule"),),
            battery_kinds=TESLA, kinds_label="Tesla Powerwall"),
    Service("set_grid_charging", "Tesla: allow grid charging --enabled true|false",
            _battery_command("battery_settings", _setter("set_grid_charging", "enabled"), instant=True),
            (Param("enabled", bool, "allow charging from the grid", required=True, label="Grid charging"),), battery_kinds=TESLA,
            kinds_label="Tesla Powerwall"),
    Service("sungrow_force_charge", "Sungrow SH: forced charge (EMS 13049=2, 13050=0xAA, power 13051)",
            _force("charge"), (DURATION, FORCE_KW), battery_kinds=SUNGROW, kinds_label="Sungrow SH"),
    Service("sungrow_force_discharge", "Sungrow SH: forced discharge (13049=2, 13050=0xBB, power 13051)",
            _force("discharge"), (DURATION, FORCE_KW), battery_kinds=SUNGROW, kinds_label="Sungrow SH"),
    Service("sungrow_restore_normal", "Sungrow SH: back to the saved state / self-consumption (13049=0)",
            _battery_command("battery", lambda d, p: d.restore_normal(), releases=True), battery_kinds=SUNGROW,
            kinds_label="Sungrow SH"),
    Service("sungrow_set_backup_reserve", "Sungrow SH: backup reserve register 13099 = --percent",
            _battery_command("battery_settings", _setter("set_backup_reserve", "percent"), instant=True), (PERCENT,),
            battery_kinds=SUNGROW, kinds_label="Sungrow SH"),
    Service("sungrow_set_charge_rate", "Sungrow SH: max charge power 33046 = --kw",
            _battery_command("battery_settings", _setter("set_charge_rate", "kw"), instant=True), (RATE_KW,),
            battery_kinds=SUNGROW, kinds_label="Sungrow SH"),
    Service("sungrow_set_discharge_rate", "Sungrow SH: max discharge power 33047 = --kw",
            _battery_command("battery_settings", _setter("set_discharge_rate", "kw"), instant=True), (RATE_KW,),
            battery_kinds=SUNGROW, kinds_label="Sungrow SH"),
    Service("sungrow_set_export_limit", "Sungrow SH: export limit 13073 = --watts and switch 13086 (--watts none: off)",
            _battery_command("battery_export", _setter("set_export_limit", "watts"), instant=True), (WATTS,),
            battery_kinds=SUNGROW, kinds_label="Sungrow SH"),
    Service("sync_battery_health", "Read the battery's state of health and store it", _battery_health, owner=None),
    Service("get_calendar_history", "Energy per flow (kWh) and cost vs the no-battery baseline per local "
            "--period, --start..--end (dates inclusive; default: the current period), from the site's history; "
            "--source tesla: a Powerwall's own calendar API", _calendar,
            (Param("period", str, "period", choices=PERIODS, default="day"),
             Param("start", str, "first local date YYYY-MM-DD or ISO time"),
             Param("end", str, "last local date YYYY-MM-DD or ISO time"),
             Param("source", str, "where the history comes from", choices=("duckdb", "tesla"), default="duckdb"),
             NOW), owner=None),
    Service("sync_now", "Run one planning + command cycle for the site now (yields to a higher owner)", _sync_now,
            (NOW,), owner="optimizer"),
    Service("curtail_inverter", "Curtail the site's AC-coupled inverter to zero export (settings saved for restore; "
            "held until restore_inverter)", _inverter(curtail=True)),
    Service("restore_inverter", "Restore the site's AC-coupled inverter to its saved (or no-limit) settings",
            _inverter(curtail=False)),
    Service("sync_tou_schedule", "Build the TOU tariff for now and upload it if it changed materially", _sync_tou,
            (NOW, Param("format", str, "tariff format (default: the battery's)", choices=FORMATS),
             Param("force", bool, "upload even if unchanged", flag=True),
             Param("dry_run", bool, "build and store, do not upload", flag=True)), owner="optimizer"),
    Service("ev_set_mode", "EV: charging mode --mode (and --departure HH:MM, --target-kwh), kept for the site; the "
            "next planning cycle plans in it", _ev_set_mode,
            (Param("mode", str, "EV charging mode", choices=EV_MODES, required=True, label="EV mode"),
             Param("departure", str, "departure, local HH:MM", label="EV departure"),
             Param("target_kwh", float, "energy the car needs by departure", unit="kWh", minimum=0,
                   exclusive_minimum=True, maximum=200, label="EV target energy"))),
    Service("ev_start_session", "EV: start (or resume) charging at --amps (default: the charger's max), held "
            "against the EV plan for --duration-minutes", _ev_session("start"), (EV_HOLD, AMPS)),
    Service("ev_stop_session", "EV: stop charging, held against the EV plan for --duration-minutes",
            _ev_session("stop"), (EV_HOLD,)),
    Service("ev_status", "EV: the charger, the session, the mode, the current limit, energy delivered and who "
            "holds the charger", _ev_status, owner=None),
    Service("set_optimization", "Site switch: --enabled off stops pushing plans (the battery goes back to its own "
            "self-consumption; prices, telemetry and plans are still recorded); kept until changed again",
            _switch("optimization", "enabled"), (OPTIMIZATION_ON,)),
    Service("set_auto_tou_sync", "Site switch: --enabled off stops the planning cycle uploading TOU tariffs; kept "
            "until changed again", _switch("auto_tou_sync", "enabled"), (AUTO_TOU_ON,)),
    Service("set_cost_function", "Site switch: the planner's objective, --cost-function cost (money) or "
            "self_consumption (energy kept in the house); kept until changed again",
            _switch("cost_function", "cost_function"),
            (Param("cost_function", str, "planner objective", choices=COST_FUNCTIONS, required=True,
                   label="Planner objective"),)),
)
REGISTRY: dict[str, Service] = {s.name: s for s in SERVICES}


def all_params() -> dict[str, Param]:
    """Every parameter name any service takes (the CLI offers each once)."""
    out: dict[str, Param] = {}
    for s in SERVICES:
        for p in s.params:
            out.setdefault(p.name, p)
    return out


def validate(name: str, site: SiteConfig, raw: Mapping[str, Any],
             human: bool = False) -> tuple[Service, dict[str, Any]]:
    """The service and its parsed parameters, or :class:`ServiceInputError` naming what is wrong (``human``:
    naming parameters by their labels, not their CLI flags)."""
    service = REGISTRY.get(name)
    if service is None:
        raise ServiceInputError(f"unknown service {name!r}; services: {', '.join(REGISTRY)}")
    kind = site.battery.kind
    if service.battery_kinds is not None and kind not in service.battery_kinds:
        raise ServiceInputError(f"service {name} is for {service.kinds_label} batteries; site {site.id!r} has a "
                                f"{kind} battery which has no such control")
    given = {k: v for k, v in raw.items() if v is not None}
    unknown = sorted(set(given) - {p.name for p in service.params})
    if unknown:
        flags = ", ".join("--" + u.replace("_", "-") for u in unknown)
        raise ServiceInputError(f"service {name} takes no {flags}")
    params: dict[str, Any] = {}
    for p in service.params:
        if p.name not in given:
            if p.required:
                if human:
                    raise ServiceInputError(f"{p.human} is needed ({p.describe()})")
                raise ServiceInputError(f"service {name} needs {p.cli} ({p.describe()})")
            params[p.name] = p.default
            continue
        params[p.name] = p.parse(given[p.name], name, human)
    return service, params


def run_service(name: str, site: SiteConfig, params: Mapping[str, Any], ctx: ControlContext,
                owner: str | None = None, human: bool = False) -> dict[str, Any]:
    """Validate and carry out one service for ``site``. ``owner`` overrides the service's own (an automation
    firing a force charge acts as ``automation``); ``human`` words input errors for a person (Home Assistant)."""
    service, parsed = validate(name, site, params, human)
    acting = check_owner(owner) if owner is not None else service.owner
    settled = settle(ctx, site) if acting is not None else []
    reply = service.handler(ServiceCall(service, site, ctx, parsed, acting))
    if settled:
        reply["expired_restore"] = settled[0].outcome
    return reply


@dataclass
class ServiceDoc:
    """A service as a table row (for ``--help``, the UI and Home Assistant)."""

    name: str
    help: str
    owner: str | None
    params: list[dict[str, Any]] = field(default_factory=list)


def catalogue() -> list[ServiceDoc]:
    return [ServiceDoc(s.name, s.help, s.owner, [
        {"name": p.name, "type": p.kind.__name__, "unit": p.unit, "min": p.minimum, "max": p.maximum,
         "choices": list(p.choices) if p.choices else None, "required": p.required, "default": p.default}
        for p in s.params]) for s in SERVICES]
