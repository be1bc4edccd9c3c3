"""The sites-file fields for Solcast and the cloud log-ins are checked at load, with errors naming the site
and the field: resource ids, the key's variable, the Tesla refresh flow's pieces (and not on Teslemetry),
the Sigenergy device id, Flow Power's wholesale source."""

from __future__ import annotations

import pytest

from powersync_pipelines.config import SiteConfigError, parse_sites

TESLA = {"kind": "tesla", "capacity_kwh": 13.5, "max_charge_kw": 5, "max_discharge_kw": 5,
         "energy_site_id": "1689641298214901"}


def site(**parts) -> dict:
    base = {"id": "home", "timezone": "Australia/Sydney", "provider": {"kind": "aemo", "region": "NSW1"},
            "battery": {"kind": "simulated", "capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5}}
    return {"sites": [{**base, **parts}]}


def test_a_full_solcast_and_fleet_oauth_site_loads():
    s = parse_sites(site(
        solar={"peak_kw": 6.6, "solcast_resource_id": "ab12-cd34-ef56-7890, 9876-5432-10fe-dcba",
               "solcast_token_env": "SOLCAST_API_KEY", "solcast_daily_limit": 50, "solcast_max_age_hours": 12},
        battery={**TESLA, "oauth_client_id": "my-app", "refresh_token_env": "TESLA_REFRESH_TOKEN"},
    )).sites[0]
    assert s.solar.solcast_resources == ["ab12-cd34-ef56-7890", "9876-5432-10fe-dcba"]
    assert s.solar.solcast_daily_limit == 50 and s.battery.refresh_token_env == "TESLA_REFRESH_TOKEN"


@pytest.mark.parametrize("parts, expected", [
    ({"solar": {"peak_kw": 5, "solcast_resource_id": "ab12-cd34"}},
     "site 'home': solar: solcast_resource_id needs solcast_token_env"),
    ({"solar": {"peak_kw": 5, "solcast_resource_id": "../../etc", "solcast_token_env": "K"}},
     "site 'home': solar.solcast_resource_id: Solcast resource id(s) ['../../etc']"),
    ({"solar": {"peak_kw": 5, "solcast_resource_id": "ab12-cd34,ab12-cd34", "solcast_token_env": "K"}},
     "listed twice"),
    ({"solar": {"peak_kw": 5, "solcast_resource_id": "ab12-cd34", "solcast_token_env": "sk-live-1234 key"}},
     "site 'home': solar.solcast_token_env"),
    ({"solar": {"peak_kw": 5, "solcast_daily_limit": 0}}, "site 'home': solar.solcast_daily_limit"),
    ({"battery": {**TESLA, "refresh_token_env": "TESLA_REFRESH"}},
     "needs both oauth_client_id and refresh_token_env"),
    ({"battery": {**TESLA, "api": "teslemetry", "oauth_client_id": "a", "refresh_token_env": "R"}},
     "Teslemetry tokens do not expire"),
    ({"battery": {"kind": "simulated", "capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5,
                  "oauth_client_id": "a", "refresh_token_env": "R"}}, "not for battery kind 'simulated'"),
    ({"battery": {**TESLA, "oauth_client_id": "a", "refresh_token_env": "NA_eyJhbGciOi.secret"}},
     "site 'home': battery.refresh_token_env"),
    ({"battery": {"kind": "sigenergy", "host": "10.0.0.5", "port": 502, "capacity_kwh": 10, "max_charge_kw": 5,
                  "max_discharge_kw": 5, "cloud_device_id": "12345"}}, "site 'home': battery.cloud_device_id"),
    ({"provider": {"kind": "flow_power", "region": "SA1", "wholesale_source": "amber"}},
     "wholesale_source 'amber' needs token_env"),
])
def test_mistakes_are_refused_at_load_naming_site_and_field(parts, expected):
    with pytest.raises(SiteConfigError) as err:
        parse_sites(site(**parts), "sites.yaml")
    assert expected in str(err.value)
