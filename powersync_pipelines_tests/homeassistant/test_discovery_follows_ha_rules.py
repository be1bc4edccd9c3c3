"""The discovery configs follow Home Assistant's MQTT discovery rules: topic shape and ids, required keys per
component, units that HA accepts for each device class (it rejects the entity otherwise), unique ids unique
across sites, command entities ranged exactly as the service registry checks, and value templates that read
keys the state document really has."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powersync_pipelines.config.sites import parse_sites
from powersync_pipelines.control.services import DURATION, PERCENT, REGISTRY
from powersync_pipelines.homeassistant.discovery import BRIDGE_AVAILABILITY, Topics, site_discovery
from powersync_pipelines.homeassistant.state import snapshot

# HA's sensor/const.py unit sets for the device classes we use (the strings must match exactly).
UNITS = {
    "battery": {"%"},
    "power": {"mW", "W", "kW", "MW", "GW", "TW"},
    "duration": {"d", "h", "min", "s", "ms", "µs"},
    "monetary": {"AUD", "GBP"},
    "timestamp": {None},
    "enum": {None},
    "energy": {"Wh", "kWh", "MWh", "GJ"},
    "current": {"mA", "A"},
}
# HA's state classes per device class (sensor/const.py DEVICE_CLASS_STATE_CLASSES, the ones we use)
CLASS_STATE = {"energy": {"total", "total_increasing"}, "monetary": {"total"}, "power": {"measurement"},
               "current": {"measurement"}, "battery": {"measurement"}, "duration": {"measurement", "total",
                                                                                     "total_increasing"}}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
REQUIRED = {"sensor": {"state_topic"}, "button": {"command_topic"}, "number": {"command_topic"},
            "select": {"command_topic", "options"}, "switch": {"command_topic"}, "text": {"command_topic"}}
TOPIC = re.compile(r"^homeassistant/(sensor|button|number|select|switch|text)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)"
                   r"/config$")
EV = {"charger": "ocpp", "charge_point_id": "cp-1", "max_amps": 32, "min_amps": 6,
      "default_session": {"departure": "07:30", "target_kwh": 20, "mode": "cost_optimized"}}


def site(site_id: str = "home", kind: str = "sungrow_sh", country: str = "AU", ev: bool = False):
    battery = {"kind": kind, "capacity_kwh": 13.5, "max_charge_kw": 5.0, "max_discharge_kw": 5.0}
    battery |= {"host": "127.0.0.1", "port": 1502} if kind == "sungrow_sh" else {"token_env": "T", "energy_site_id": "1"}
    provider = {"kind": "aemo", "region": "VIC1"} if country == "AU" else {"kind": "octopus", "gsp": "C"}
    tz = "Australia/Melbourne" if country == "AU" else "Europe/London"
    extra = {"ev": EV} if ev else {}
    return parse_sites({"sites": [{"id": site_id, "timezone": tz, "country": country, "provider": provider,
                                   "battery": battery, **extra}]}).sites[0]


def check_config(component: str, payload: dict) -> None:
    assert REQUIRED[component] <= payload.keys(), f"{payload['unique_id']}: missing {REQUIRED[component] - payload.keys()}"
    json.dumps(payload)  # JSON as published
    dev = payload["device"]
    assert dev["identifiers"] and dev["manufacturer"] == "PowerSync Pipelines" and dev["model"] and dev["name"]
    assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", payload["default_entity_id"])
    assert {a["topic"] for a in payload["availability"]} >= {BRIDGE_AVAILABILITY}
    dc, unit, sc = payload.get("device_class"), payload.get("unit_of_measurement"), payload.get("state_class")
    if component == "sensor":
        if dc is not None:
            assert unit in UNITS[dc], f"{payload['unique_id']}: unit {unit!r} is not valid for device class {dc}"
        if dc in ("enum", "timestamp"):
            assert sc is None
        if dc == "enum":
            assert payload["options"]
        if dc in CLASS_STATE:
            assert sc in CLASS_STATE[dc], f"{payload['unique_id']}: state class {sc!r} does not fit {dc}"
        if sc is not None:
            assert sc in STATE_CLASSES
        if "last_reset_value_template" in payload:
            assert sc == "total", f"{payload['unique_id']}: last_reset needs state_class total"
        assert payload.get("entity_category") in (None, "diagnostic")
    else:
        assert payload.get("entity_category") in (None, "config")
    if component == "number":
        assert payload["min"] < payload["max"] and payload["step"] >= 0.001
    if component == "select":
        assert payload["options"] and all(isinstance(o, str) for o in payload["options"])
    if component == "switch":
        assert payload["state_topic"] and {payload["payload_on"], payload["payload_off"]} == {"ON", "OFF"}
        assert {payload["state_on"], payload["state_off"]} == {"on", "off"}
    if component == "text":
        assert 0 <= payload["min"] <= payload["max"] <= 255 and re.compile(payload["pattern"])


@pytest.mark.parametrize("kind, country, ev", [("sungrow_sh", "AU", False), ("sungrow_sh", "AU", True),
                                               ("tesla", "AU", False), ("tesla", "UK", True)])
def test_every_config_follows_ha_rules(kind, country, ev):
    s = site(kind=kind, country=country, ev=ev)
    entities = site_discovery(s)
    for d in entities:
        m = TOPIC.match(d.topic)
        assert m and m.group(1) == d.component and m.group(2) == "powersync_home" and m.group(3) == d.object_id
        check_config(d.component, d.payload)
    assert len({d.payload["unique_id"] for d in entities}) == len(entities)
    prices = [d for d in entities if d.object_id in ("import_price", "forecast_export_price")]
    assert {d.payload["unit_of_measurement"] for d in prices} == {f"{s.currency}/kWh"}


def test_command_entities_are_ranged_by_the_registry():
    sungrow = {d.object_id: d for d in site_discovery(site(kind="sungrow_sh"))}
    tesla = {d.object_id: d for d in site_discovery(site(kind="tesla"))}
    assert {k for k, d in sungrow.items() if d.component == "button"} == {"force_charge", "force_discharge",
                                                                           "restore_normal"}
    reserve = sungrow["backup_reserve"].payload
    assert (reserve["min"], reserve["max"], reserve["unit_of_measurement"]) == (PERCENT.minimum, PERCENT.maximum, "%")
    duration = sungrow["force_duration"].payload
    assert (duration["min"], duration["max"], duration["unit_of_measurement"]) == (DURATION.minimum,
                                                                                    DURATION.maximum, "min")
    export = sungrow["export_limit"].payload
    assert (export["min"], export["max"], export["unit_of_measurement"]) == (0, 5000, "W")  # the site's 5 kW
    assert sungrow["export_limit"].command.service == "sungrow_set_export_limit" and "export_limit" not in tesla
    # Sungrow has no operation-mode service; its one select is the site's planner objective
    assert [d.object_id for d in sungrow.values() if d.component == "select"] == ["cost_function"]
    assert sungrow["cost_function"].command.service == "set_cost_function"
    mode = tesla["operation_mode"]
    assert mode.component == "select" and mode.command.service == "set_operation_mode"
    assert mode.payload["options"] == list(REGISTRY["set_operation_mode"].param("mode").choices)
    assert mode.payload["command_topic"] == Topics("home").command("operation_mode")


def test_energy_counters_are_total_increasing_kwh_for_every_flow_and_money_resets_daily():
    entities = {d.object_id: d.payload for d in site_discovery(site())}
    flows = ("grid_import", "grid_export", "battery_charge", "battery_discharge", "solar", "load")
    for flow in flows:
        p = entities[f"energy_{flow}"]
        assert (p["device_class"], p["state_class"], p["unit_of_measurement"]) == ("energy", "total_increasing",
                                                                                   "kWh")
    for object_id, reset in (("savings_today", "today_start"), ("savings_month", "month_start"),
                             ("cost_actual_today", "today_start"), ("cost_baseline_today", "today_start")):
        p = entities[object_id]
        assert (p["device_class"], p["state_class"], p["unit_of_measurement"]) == ("monetary", "total", "AUD")
        assert p["last_reset_value_template"] == f"{{{{ value_json.{reset} }}}}"
    assert entities["curtailment"]["options"] == ["normal", "curtailed"]
    assert entities["next_action"]["device_class"] == "enum"
    assert entities["next_action_at"]["device_class"] == entities["next_action_until"]["device_class"] == "timestamp"


def test_site_switches_are_ha_switches_bound_to_their_services():
    sungrow = {d.object_id: d for d in site_discovery(site(kind="sungrow_sh"))}
    tesla = {d.object_id: d for d in site_discovery(site(kind="tesla"))}
    switches = {k: d for k, d in sungrow.items() if d.component == "switch"}
    assert {k: d.command.service for k, d in switches.items()} == {"optimization": "set_optimization",
                                                                    "auto_tou_sync": "set_auto_tou_sync"}
    assert switches["optimization"].payload["name"] == "Optimization"
    assert switches["optimization"].payload["value_template"] == "{{ value_json.optimization }}"
    assert tesla["grid_charging"].component == "switch"  # a Powerwall's one on/off setting, too


def test_ev_entities_exist_only_for_sites_with_an_ev_section():
    plain = {d.object_id for d in site_discovery(site())}
    assert not {o for o in plain if o.startswith("ev_")}
    ev = {d.object_id: d for d in site_discovery(site(ev=True))}
    assert {o: d.component for o, d in ev.items() if o.startswith("ev_")} == {
        "ev_mode": "select", "ev_target_kwh": "number", "ev_departure": "text", "ev_start_session": "button",
        "ev_stop_session": "button", "ev_charger_holder": "sensor", "ev_charger_held_until": "sensor",
        "ev_charger_status": "sensor", "ev_power": "sensor", "ev_current_limit": "sensor",
        "ev_session_energy": "sensor"}
    mode = REGISTRY["ev_set_mode"].param("mode")
    assert ev["ev_mode"].payload["options"] == list(mode.choices) and ev["ev_mode"].command.service == "ev_set_mode"
    target = ev["ev_target_kwh"].payload
    assert (target["min"], target["max"], target["unit_of_measurement"]) == (0.5, 200, "kWh")  # > 0 kWh refused
    assert ev["ev_session_energy"].payload["state_class"] == "total_increasing"
    assert ev["ev_start_session"].command.service == "ev_start_session"
    departure = re.compile(ev["ev_departure"].payload["pattern"])
    assert departure.match("07:30") and not departure.match("7:30") and not departure.match("24:00")


def test_value_templates_read_keys_of_the_state_document(ctx):
    for kind, ev in (("sungrow_sh", False), ("tesla", False), ("sungrow_sh", True)):
        s = site(kind=kind, ev=ev)
        entities = site_discovery(s)
        state = snapshot(ctx, s, {"force_duration": 30}, entities).state
        for d in entities:
            template = d.payload.get("value_template")
            if template and d.payload.get("state_topic") == Topics(s.id).state:
                key = re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", template).group(1)
                assert key in state, f"{d.object_id} reads {key!r}, not in the state document"
            reset = d.payload.get("last_reset_value_template")
            if reset:
                assert re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", reset).group(1) in state


@given(st.lists(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True), min_size=2, max_size=4, unique=True))
def test_unique_ids_and_topics_never_collide_across_sites(ids):
    seen_ids, seen_topics = set(), set()
    for site_id in ids:
        for d in site_discovery(site(site_id)):
            assert TOPIC.match(d.topic)
            assert d.payload["unique_id"] not in seen_ids and d.topic not in seen_topics
            seen_ids.add(d.payload["unique_id"])
            seen_topics.add(d.topic)
