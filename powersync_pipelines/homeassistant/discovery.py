"""Home Assistant MQTT discovery configs for a site: what HA needs to create one device and its entities.

Pure functions (no broker, no store). Every site is one HA ``device``; every entity has a ``unique_id`` so HA
keeps it (and the user's edits to it) across restarts. Sensors read one JSON state document per site
(``powersync/<site>/state``) through a ``value_template``, so a refresh is one publish per site; the forecast
sensors also name a ``json_attributes_topic`` carrying ``{"forecast": [{"datetime", "value"}, ...]}``, the
shape an ApexCharts ``data_generator`` maps straight to points. Command entities (buttons, numbers, selects)
are generated from the service registry's ``Param`` s, so their ranges, units and options are the ones the
services enforce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..config import SiteConfig
from ..control.services import DURATION, REGISTRY, Param, Service
from ..owners import HOLDERS
from ..schemas import ACTIONS, SPIKE_STATUSES

ROOT = "powersync"  # every state and command topic of the bridge starts here
BRIDGE_AVAILABILITY = f"{ROOT}/bridge/availability"  # the client's last will: offline when the bridge is gone
DEFAULT_PREFIX = "homeassistant"
MANUFACTURER = "PowerSync Pipelines"
ONLINE, OFFLINE = "online", "offline"
PRESS = "PRESS"
ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")  # what HA accepts in node_id / object_id

# Buttons: the services a press runs with its defaults (force duration from the ``force_duration`` number).
BUTTONS: tuple[tuple[str, str, str], ...] = (
    ("force_charge", "Force charge", "mdi:battery-charging-high"),
    ("force_discharge", "Force discharge", "mdi:battery-arrow-down"),
    ("restore_normal", "Restore normal", "mdi:battery-sync"),
)
# Numbers: (object id, name, service); the service's one required numeric Param gives the range and unit (a
# Param without a maximum takes the site's own bound: see ``site_maximum``).
NUMBERS: tuple[tuple[str, str, str], ...] = (
    ("backup_reserve", "Backup reserve", "set_backup_reserve"),
    ("export_limit", "Battery export limit", "sungrow_set_export_limit"),
)
FORCE_DURATION = "force_duration"  # a bridge setting (the buttons' duration), ranged by the DURATION Param
# Lifetime energy counters (kWh, ``total_increasing``) per calendar-history flow: (flow, name, icon).
ENERGY: tuple[tuple[str, str, str], ...] = (
    ("grid_import", "Grid import energy", "mdi:transmission-tower-import"),
    ("grid_export", "Grid export energy", "mdi:transmission-tower-export"),
    ("battery_charge", "Battery charge energy", "mdi:battery-plus"),
    ("battery_discharge", "Battery discharge energy", "mdi:battery-minus"),
    ("solar", "Solar energy", "mdi:solar-power"),
    ("load", "Home energy", "mdi:home-lightning-bolt"),
)
CURTAILMENT_STATES = ("normal", "curtailed")
# EV buttons: (object id = service, name, icon); a press runs the service with its defaults.
EV_BUTTONS: tuple[tuple[str, str, str], ...] = (
    ("ev_start_session", "EV start charging", "mdi:ev-station"),
    ("ev_stop_session", "EV stop charging", "mdi:power-plug-off"),
)
EV_SET = "ev_set_mode"  # the service behind the EV mode select, target number and departure text
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


def energy_key(flow: str) -> str:
    """The state document's key of a flow's lifetime counter."""
    return f"energy_{flow}_kwh"


@dataclass(frozen=True)
class Forecast:
    """A forecast sensor: its state is ``key`` of the state document, its points the plan's ``column`` x
    ``scale``; ``unit`` None means the site's currency per kWh."""

    object_id: str
    name: str
    column: str
    key: str
    device_class: str | None
    unit: str | None
    scale: float = 1.0


FORECASTS: tuple[Forecast, ...] = (
    Forecast("forecast_import_price", "Import price forecast", "import_price", "import_price", None, None),
    Forecast("forecast_export_price", "Export price forecast", "export_price", "export_price", None, None),
    Forecast("forecast_solar", "Solar forecast", "solar_kw", "solar_kw", "power", "kW"),
    Forecast("forecast_load", "Load forecast", "load_kw", "load_kw", "power", "kW"),
    Forecast("forecast_soc", "Planned SOC", "soc", "planned_soc", "battery", "%", 100.0),
)

@dataclass(frozen=True)
class Topics:
    """Every MQTT topic of one site (state, forecasts, commands, the last command's result, availability)."""

    site_id: str

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.site_id}"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def last_command(self) -> str:
        return f"{self.base}/last_command"

    def forecast(self, object_id: str) -> str:
        return f"{self.base}/forecast/{object_id}"

    def command(self, object_id: str) -> str:
        return f"{self.base}/command/{object_id}"

    @property
    def command_wildcard(self) -> str:
        return f"{self.base}/command/+"


@dataclass(frozen=True)
class Discovery:
    """One entity's discovery message: ``topic`` (``<prefix>/<component>/<node_id>/<object_id>/config``) and
    ``payload``; ``command`` says what a message on its command topic runs (None for sensors)."""

    component: str
    object_id: str
    topic: str
    payload: dict[str, Any]
    command: Command | None = None


@dataclass(frozen=True)
class Command:
    """What a message on an entity's command topic does: run ``service`` with ``param`` set from the payload
    (numbers, selects), or with no payload value (buttons); ``setting`` is a bridge setting instead."""

    kind: str  # button | number | select | switch | text
    service: str | None
    param: Param | None = None
    setting: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def node_id(site: SiteConfig) -> str:
    return f"powersync_{site.id}"


def device(site: SiteConfig) -> dict[str, Any]:
    return {"identifiers": [node_id(site)], "manufacturer": MANUFACTURER, "model": site.battery.kind,
            "name": f"PowerSync {site.id}", "sw_version": __version__}


def price_unit(site: SiteConfig) -> str:
    return f"{site.currency}/kWh"


def _base(site: SiteConfig, component: str, object_id: str, name: str, prefix: str) -> tuple[str, dict[str, Any]]:
    nid = node_id(site)
    topic = f"{prefix}/{component}/{nid}/{object_id}/config"
    payload: dict[str, Any] = {
        "name": name,
        "unique_id": f"{nid}_{object_id}",
        "default_entity_id": f"{component}.{nid}_{object_id}".replace("-", "_"),
        "device": device(site),
        "origin": {"name": MANUFACTURER, "sw_version": __version__},
        "availability": [{"topic": BRIDGE_AVAILABILITY}, {"topic": Topics(site.id).availability}],
        "availability_mode": "all",
    }
    return topic, payload


def _sensor(site: SiteConfig, prefix: str, object_id: str, name: str, key: str, **extra: Any) -> Discovery:
    topic, payload = _base(site, "sensor", object_id, name, prefix)
    payload.update(state_topic=Topics(site.id).state, value_template=f"{{{{ value_json.{key} }}}}")
    payload.update({k: v for k, v in extra.items() if v is not None})
    return Discovery("sensor", object_id, topic, payload)


def sensors(site: SiteConfig, prefix: str = DEFAULT_PREFIX) -> list[Discovery]:
    """The site's state sensors and forecast sensors (the state document's keys are in ``state.py``)."""
    t = Topics(site.id)
    money = price_unit(site)
    out = [
        _sensor(site, prefix, "battery_soc", "Battery SOC", "soc", device_class="battery", unit_of_measurement="%",
                state_class="measurement", suggested_display_precision=1),
        _sensor(site, prefix, "import_price", "Import price", "import_price", unit_of_measurement=money,
                state_class="measurement", suggested_display_precision=4, icon="mdi:transmission-tower-import"),
        _sensor(site, prefix, "export_price", "Export price", "export_price", unit_of_measurement=money,
                state_class="measurement", suggested_display_precision=4, icon="mdi:transmission-tower-export"),
        _sensor(site, prefix, "price_spike", "Price spike", "spike_status", device_class="enum",
                options=list(SPIKE_STATUSES), icon="mdi:flash-alert"),
        *[_sensor(site, prefix, f"{flow}_power", name, f"{flow}_power_kw", device_class="power",
                  unit_of_measurement="kW", state_class="measurement", suggested_display_precision=2)
          for flow, name in (("battery", "Battery power"), ("grid", "Grid power"), ("solar", "Solar power"),
                             ("load", "Load power"))],
        _sensor(site, prefix, "action", "Current action", "action", device_class="enum", options=list(ACTIONS),
                icon="mdi:home-battery"),
        _sensor(site, prefix, "action_power", "Current action power", "action_power_kw", device_class="power",
                unit_of_measurement="kW", state_class="measurement", suggested_display_precision=2),
        _sensor(site, prefix, "action_until", "Current action until", "action_until", device_class="timestamp"),
        _sensor(site, prefix, "battery_holder", "Battery held by", "holder", device_class="enum",
                options=list(HOLDERS), icon="mdi:account-lock"),
        _sensor(site, prefix, "battery_held_until", "Battery held until", "held_until", device_class="timestamp"),
        _sensor(site, prefix, "price_age", "Price age", "price_age_minutes", device_class="duration",
                unit_of_measurement="min", state_class="measurement", entity_category="diagnostic",
                suggested_display_precision=0),
        _sensor(site, prefix, "cost_today", "Predicted cost today", "cost_today", device_class="monetary",
                unit_of_measurement=site.currency, state_class="total", suggested_display_precision=2),
        *_next_action(site, prefix),
        _sensor(site, prefix, "curtailment", "Curtailment", "curtailment", device_class="enum",
                options=list(CURTAILMENT_STATES), icon="mdi:solar-power-variant-outline"),
        *[_sensor(site, prefix, f"energy_{flow}", name, energy_key(flow), device_class="energy",
                  unit_of_measurement="kWh", state_class="total_increasing", suggested_display_precision=2, icon=icon)
          for flow, name, icon in ENERGY],
        *_money(site, prefix),
    ]
    last = _sensor(site, prefix, "last_command", "Last command", "summary", icon="mdi:console")
    last.payload.update(state_topic=t.last_command, json_attributes_topic=t.last_command)
    out.append(last)
    for f in FORECASTS:
        out.append(_sensor(site, prefix, f.object_id, f.name, f.key, device_class=f.device_class,
                           unit_of_measurement=f.unit or money, state_class="measurement",
                           json_attributes_topic=t.forecast(f.object_id), icon="mdi:chart-timeline-variant"))
    if site.ev is not None:
        out += _ev_sensors(site, prefix)
    return out


def _next_action(site: SiteConfig, prefix: str) -> list[Discovery]:
    """The plan's next change of action: what, at what battery power, from when until when."""
    return [
        _sensor(site, prefix, "next_action", "Next action", "next_action", device_class="enum",
                options=list(ACTIONS), icon="mdi:calendar-arrow-right"),
        _sensor(site, prefix, "next_action_power", "Next action power", "next_action_power_kw", device_class="power",
                unit_of_measurement="kW", state_class="measurement", suggested_display_precision=2),
        _sensor(site, prefix, "next_action_at", "Next action starts", "next_action_at", device_class="timestamp"),
        _sensor(site, prefix, "next_action_until", "Next action until", "next_action_until",
                device_class="timestamp"),
    ]


def _money(site: SiteConfig, prefix: str) -> list[Discovery]:
    """Cost against the no-battery baseline from the telemetry (HA ``total`` sensors reset each day / month)."""
    cur = site.currency

    def m(object_id: str, name: str, key: str, reset: str | None, icon: str) -> Discovery:
        extra = {"last_reset_value_template": f"{{{{ value_json.{reset} }}}}"} if reset else {}
        return _sensor(site, prefix, object_id, name, key, device_class="monetary", unit_of_measurement=cur,
                       state_class="total", suggested_display_precision=2, icon=icon, **extra)

    return [
        m("cost_actual_today", "Grid cost today", "cost_actual_today", "today_start", "mdi:cash"),
        m("cost_baseline_today", "Cost without battery today", "cost_baseline_today", "today_start",
          "mdi:cash-remove"),
        m("savings_today", "Savings today", "savings_today", "today_start", "mdi:piggy-bank"),
        m("savings_month", "Savings this month", "savings_month", "month_start", "mdi:piggy-bank-outline"),
        m("savings_lifetime", "Savings (all time)", "savings_lifetime", None, "mdi:piggy-bank"),
    ]


def _ev_sensors(site: SiteConfig, prefix: str) -> list[Discovery]:
    """The charger and the car's session (sites with an ``ev:`` section)."""
    return [
        _sensor(site, prefix, "ev_charger_holder", "EV charger held by", "ev_holder", device_class="enum",
                options=list(HOLDERS), icon="mdi:account-lock"),
        _sensor(site, prefix, "ev_charger_held_until", "EV charger held until", "ev_held_until",
                device_class="timestamp"),
        _sensor(site, prefix, "ev_charger_status", "EV charger status", "ev_charger_status", icon="mdi:ev-station"),
        _sensor(site, prefix, "ev_power", "EV charging power", "ev_power_kw", device_class="power",
                unit_of_measurement="kW", state_class="measurement", suggested_display_precision=2),
        _sensor(site, prefix, "ev_current_limit", "EV current limit", "ev_current_limit_a", device_class="current",
                unit_of_measurement="A", state_class="measurement", suggested_display_precision=0),
        _sensor(site, prefix, "ev_session_energy", "EV session energy", "ev_session_energy_kwh",
                device_class="energy", unit_of_measurement="kWh", state_class="total_increasing",
                suggested_display_precision=2, icon="mdi:car-electric"),
    ]


def site_maximum(site: SiteConfig, param: Param) -> float:
    """A number's upper bound where the Param sets none: an export limit in W up to the site's grid export
    limit (HA needs a finite ``max``; the service itself accepts any non-negative value)."""
    if param.maximum is not None:
        return param.maximum
    if param.unit == "W":
        return site.limits.export_kw * 1000
    raise ValueError(f"parameter {param.name} has no maximum for a Home Assistant number")


def _range(param: Param, maximum: float) -> dict[str, Any]:
    step = 1 if param.kind is int or param.unit == "W" else 0.5
    low = param.minimum if param.minimum is not None else 0
    if param.exclusive_minimum:  # HA's min is inclusive: its first step above the refused bound
        low += step
    return {"min": low, "max": maximum,
            "step": step, "unit_of_measurement": param.unit, "mode": "box"}


def _applies(service: Service, site: SiteConfig) -> bool:
    return service.battery_kinds is None or site.battery.kind in service.battery_kinds


def controls(site: SiteConfig, prefix: str = DEFAULT_PREFIX) -> list[Discovery]:
    """Buttons, numbers, selects, switches (and EV controls) for ``site``, each bound to a registry service."""
    t = Topics(site.id)
    out: list[Discovery] = []
    for object_id, name, icon in BUTTONS:
        service = REGISTRY[object_id]
        if not _applies(service, site):
            continue
        topic, payload = _base(site, "button", object_id, name, prefix)
        payload.update(command_topic=t.command(object_id), payload_press=PRESS, icon=icon)
        out.append(Discovery("button", object_id, topic, payload, Command("button", service.name)))
    for object_id, name, service_name in NUMBERS:
        service = REGISTRY[service_name]
        if not _applies(service, site):
            continue
        (param,) = [p for p in service.params if p.required]
        topic, payload = _base(site, "number", object_id, name, prefix)
        payload.update(command_topic=t.command(object_id), state_topic=t.state,
                       value_template=f"{{{{ value_json.{object_id} }}}}", **_range(param, site_maximum(site, param)))
        out.append(Discovery("number", object_id, topic, payload, Command("number", service.name, param)))
    topic, payload = _base(site, "number", FORCE_DURATION, "Force duration", prefix)
    payload.update(command_topic=t.command(FORCE_DURATION), state_topic=t.state,
                   value_template=f"{{{{ value_json.{FORCE_DURATION} }}}}", icon="mdi:timer-outline",
                   entity_category="config", **_range(DURATION, site_maximum(site, DURATION)))
    out.append(Discovery("number", FORCE_DURATION, topic, payload,
                         Command("number", None, DURATION, setting=FORCE_DURATION)))
    for service in REGISTRY.values():
        if not _applies(service, site) or service.owner != "manual":
            continue
        required = [p for p in service.params if p.required]
        if len(service.params) != 1 or len(required) != 1 or not required[0].choices:
            continue
        param = required[0]
        object_id = service.base.removeprefix("set_")
        topic, payload = _base(site, "select", object_id, param.help.capitalize(), prefix)
        payload.update(command_topic=t.command(object_id), options=list(param.choices or ()),
                       state_topic=t.state, value_template=f"{{{{ value_json.{object_id} }}}}")
        out.append(Discovery("select", object_id, topic, payload, Command("select", service.name, param)))
    out += _switches(site, prefix)
    if site.ev is not None:
        out += _ev_controls(site, prefix)
    return out


def _switches(site: SiteConfig, prefix: str) -> list[Discovery]:
    """A ``switch`` for every person's service whose one parameter is an on/off (the site switches
    ``set_optimization`` / ``set_auto_tou_sync``, a Powerwall's grid charging); state ``on``/``off``."""
    t = Topics(site.id)
    out: list[Discovery] = []
    for service in REGISTRY.values():
        if not _applies(service, site) or service.owner != "manual" or len(service.params) != 1:
            continue
        param = service.params[0]
        if not (param.required and param.kind is bool):
            continue
        object_id = service.base.removeprefix("set_")
        topic, payload = _base(site, "switch", object_id, param.human, prefix)
        payload.update(command_topic=t.command(object_id), state_topic=t.state,
                       value_template=f"{{{{ value_json.{object_id} }}}}", payload_on="ON", payload_off="OFF",
                       state_on="on", state_off="off", icon="mdi:toggle-switch", entity_category="config")
        out.append(Discovery("switch", object_id, topic, payload, Command("switch", service.name, param)))
    return out


def _ev_controls(site: SiteConfig, prefix: str) -> list[Discovery]:
    """EV mode select, target number and departure text (all ``ev_set_mode``), start/stop buttons."""
    t = Topics(site.id)
    service = REGISTRY[EV_SET]
    mode, departure, target = (service.param(n) for n in ("mode", "departure", "target_kwh"))
    assert mode is not None and departure is not None and target is not None
    out: list[Discovery] = []
    topic, payload = _base(site, "select", "ev_mode", mode.human, prefix)
    payload.update(command_topic=t.command("ev_mode"), options=list(mode.choices or ()), state_topic=t.state,
                   value_template="{{ value_json.ev_mode }}", icon="mdi:car-cog")
    out.append(Discovery("select", "ev_mode", topic, payload, Command("select", EV_SET, mode)))
    topic, payload = _base(site, "number", "ev_target_kwh", target.human, prefix)
    payload.update(command_topic=t.command("ev_target_kwh"), state_topic=t.state,
                   value_template="{{ value_json.ev_target_kwh }}", icon="mdi:battery-charging-80",
                   **_range(target, site_maximum(site, target)))
    out.append(Discovery("number", "ev_target_kwh", topic, payload, Command("number", EV_SET, target)))
    topic, payload = _base(site, "text", "ev_departure", departure.human, prefix)
    payload.update(command_topic=t.command("ev_departure"), state_topic=t.state,
                   value_template="{{ value_json.ev_departure }}", pattern=HHMM_PATTERN, min=5, max=5,
                   icon="mdi:clock-end")
    out.append(Discovery("text", "ev_departure", topic, payload, Command("text", EV_SET, departure)))
    for object_id, name, icon in EV_BUTTONS:
        topic, payload = _base(site, "button", object_id, name, prefix)
        payload.update(command_topic=t.command(object_id), payload_press=PRESS, icon=icon)
        out.append(Discovery("button", object_id, topic, payload, Command("button", object_id)))
    return out


def site_discovery(site: SiteConfig, prefix: str = DEFAULT_PREFIX) -> list[Discovery]:
    """Every discovery message of ``site``: sensors, then command entities."""
    if not ID_RE.match(prefix.replace("/", "")):
        raise ValueError(f"discovery prefix {prefix!r} may use only letters, digits, '_', '-' and '/'")
    return sensors(site, prefix) + controls(site, prefix)
