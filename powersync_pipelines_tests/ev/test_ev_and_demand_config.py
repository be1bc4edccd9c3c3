"""The ``ev:`` section and ``features.demand_charge`` as typed models: defaults, the demo site, clear errors."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from powersync_pipelines.config import SiteConfigError, load_sites, parse_sites
from powersync_pipelines.ev.session import EvSession, EvSessionError

DEMO = load_sites()


def _site(**over):
    raw = DEMO.get("demo").model_dump(exclude_none=True, exclude={"base_dir"})
    raw = copy.deepcopy(raw)
    for k, v in over.items():
        raw[k] = v
    return raw


def test_the_demo_site_has_the_ocpp_charger_and_a_default_session():
    ev = DEMO.get("demo").ev
    assert ev is not None and ev.charger == "ocpp" and ev.charge_point_id == "demo-cp1"
    assert (ev.max_amps, ev.min_amps, ev.phases, ev.voltage) == (32, 6, 1, 230)
    assert ev.max_kw == pytest.approx(7.36)
    assert ev.default_session is not None and ev.default_session.target_kwh == 20
    assert ev.allow_battery_to_ev is False


@pytest.mark.parametrize("ev, message", [
    ({"charger": "ocpp"}, "charge_point_id"),
    ({"charger": "ocpp", "charge_point_id": "cp", "min_amps": 20, "max_amps": 16}, "min_amps 20.0 is above max_amps"),
    ({"charger": "ocpp", "charge_point_id": "cp", "min_amps": 4}, "IEC 61851"),
    ({"charger": "wallbox"}, "charger_id, username_env and password_env"),
    ({"charger": "ocpp", "charge_point_id": "cp", "default_session": {"departure": "7:30", "target_kwh": 10}}, "HH:MM"),
    ({"charger": "ocpp", "charge_point_id": "cp", "default_session": {"target_kwh": 10, "target_soc_pct": 80}}, "exactly one"),
    ({"charger": "ocpp", "charge_point_id": "cp", "default_session": {"target_soc_pct": 80}}, "battery_kwh"),
    ({"charger": "ocpp", "charge_point_id": "cp", "default_session": {"target_kwh": 10, "mode": "fast"}}, "ev.default_session.mode"),
])
def test_bad_ev_sections_name_the_field(ev, message):
    with pytest.raises(SiteConfigError, match=message) as e:
        parse_sites({"sites": [_site(ev=ev)]})
    assert "site 'demo'" in str(e.value)


def test_demand_charge_is_typed_and_an_empty_section_means_none():
    site = parse_sites({"sites": [_site(features={"demand_charge": {}})]}).get("demo")
    assert site.features.demand_charge is None
    dc = {"start": "16:00", "end": "21:00", "weekdays": ["mon", "fri"], "price_per_kw_month": 12.5}
    site = parse_sites({"sites": [_site(features={"demand_charge": dc})]}).get("demo")
    d = site.features.demand_charge
    assert d.interval_minutes == 30 and d.weekday_numbers() == {0, 4} and d.price_per_kw_month == 12.5
    with pytest.raises(SiteConfigError, match="features.demand_charge.weekdays"):
        parse_sites({"sites": [_site(features={"demand_charge": {**dc, "weekdays": ["monday"]}})]})
    with pytest.raises(SiteConfigError, match="window is empty"):
        parse_sites({"sites": [_site(features={"demand_charge": {**dc, "end": "16:00"}})]})


def test_a_session_from_the_config_leaves_at_the_next_local_departure():
    site = DEMO.get("demo")
    plugged = pd.Timestamp("2024-02-12T08:00Z")  # 19:00 local
    s = EvSession.from_config(site.ev, plugged, site.timezone)
    assert s.departure == pd.Timestamp("2024-02-12T20:30Z")  # 07:30 local next morning (AEDT, UTC+11)
    assert s.energy_kwh == 20 and s.grid_energy_kwh == pytest.approx(20 / 0.9) and s.mode == "cost_optimized"
    s2 = EvSession.from_config(site.ev, plugged, site.timezone, departure="21:00", target_kwh=5, mode="time_critical")
    assert s2.departure == pd.Timestamp("2024-02-12T10:00Z") and s2.mode == "time_critical"
    with pytest.raises(EvSessionError, match="mode"):
        EvSession.from_config(site.ev, plugged, site.timezone, mode="turbo")
