"""The sites file refuses, at load and with the site and field named, what used to be read silently wrong or
only failed at the first planning run: a bool where a number goes, a duplicated key, a replay start that is
not a date, a missing price file or load profile, two sections or two sites driving one device, a Tesla
battery without a token variable. ``powersync sites`` says so in one block with exit code 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from powersync_pipelines.cli import main
from powersync_pipelines.config import SiteConfigError, load_sites
from powersync_pipelines.paths import DATA_DIR

PRICES = DATA_DIR / "prices" / "PRICE_AND_DEMAND_202402_VIC1_excerpt.csv"


def site_yaml(site_id: str = "home", battery: str = "", extra: str = "", provider: str = "") -> str:
    provider = provider or f"""
    provider:
      kind: replay
      region: VIC1
      file: {PRICES}
      replay_start: "2024-02-12T20:00:00Z"
"""
    battery = battery or """
    battery:
      kind: sungrow_sh
      host: 192.0.2.10
      port: 502
      capacity_kwh: 13.5
      max_charge_kw: 5
      max_discharge_kw: 5
"""
    body = f"  - id: {site_id}\n    timezone: Australia/Melbourne\n" + textwrap.indent(
        textwrap.dedent(provider).strip() + "\n" + textwrap.dedent(battery).strip() + "\n"
        + textwrap.dedent(extra).strip(), "    ")
    return body.rstrip() + "\n"


def write(tmp_path: Path, *sites: str) -> Path:
    f = tmp_path / "sites.yaml"
    f.write_text("sites:\n" + "".join(sites))
    return f


def refused(f: Path) -> str:
    with pytest.raises(SiteConfigError) as exc:
        load_sites(f)
    return str(exc.value)


def test_a_valid_file_still_loads(tmp_path):
    assert load_sites(write(tmp_path, site_yaml())).get("home").battery.capacity_kwh == 13.5


@pytest.mark.parametrize("field", ["capacity_kwh: true", "max_charge_kw: false", "port: true"])
def test_true_or_false_is_never_a_number(tmp_path, field):
    name = field.split(":")[0]
    battery = f"""
    battery:
      kind: sungrow_sh
      host: 192.0.2.10
      {"port: 502" if name != "port" else field}
      capacity_kwh: {"13.5" if name != "capacity_kwh" else "true"}
      max_charge_kw: {"5" if name != "max_charge_kw" else "false"}
      max_discharge_kw: 5
"""
    msg = refused(write(tmp_path, site_yaml(battery=battery)))
    assert f"site 'home': battery: {name}: true/false is not a number" in msg


def test_nested_and_feature_numbers_refuse_bools_and_nan_too(tmp_path):
    extra = """
    features:
      export_boost: {offset_c: true}
"""
    assert "features.export_boost: offset_c: true/false is not a number" in refused(
        write(tmp_path, site_yaml(extra=extra)))
    extra = "limits: {export_kw: .nan}"
    assert "limits.export_kw: Input should be a finite number" in refused(write(tmp_path, site_yaml(extra=extra)))


def test_duplicate_key_names_key_and_both_lines(tmp_path):
    battery = """
    battery:
      kind: sungrow_sh
      host: 192.0.2.10
      port: 502
      capacity_kwh: 13.5
      max_charge_kw: 5
      max_discharge_kw: 5
      capacity_kwh: 1
"""
    f = write(tmp_path, site_yaml(battery=battery))
    line = f.read_text().splitlines().index("      capacity_kwh: 1") + 1
    msg = refused(f)
    assert f"line {line}: duplicate key 'capacity_kwh' (first at line {line - 3})" in msg


def test_duplicate_site_level_key_is_refused(tmp_path):
    assert "duplicate key 'timezone'" in refused(write(tmp_path, site_yaml(extra="timezone: Australia/Sydney")))


def test_anchors_and_merge_keys_still_work(tmp_path):
    f = tmp_path / "sites.yaml"
    f.write_text(textwrap.dedent(f"""
        defaults: &bat {{kind: simulated, capacity_kwh: 10, max_charge_kw: 5, max_discharge_kw: 5}}
        sites:
          - id: a
            timezone: Australia/Melbourne
            provider: &prov {{kind: replay, region: VIC1, file: {PRICES}}}
            battery: {{<<: *bat, capacity_kwh: 20}}
          - id: b
            timezone: Australia/Melbourne
            provider: *prov
            battery: *bat
    """))
    f.write_text(f.read_text().replace("defaults:", "sites_defaults:", 1))
    with pytest.raises(SiteConfigError, match="sites_defaults: unknown key"):
        load_sites(f)  # the file format has no free-form keys; anchors live inside sites
    f.write_text(textwrap.dedent(f"""
        sites:
          - id: a
            timezone: Australia/Melbourne
            provider: &prov {{kind: replay, region: VIC1, file: {PRICES}}}
            battery: &bat {{kind: simulated, capacity_kwh: 10, max_charge_kw: 5, max_discharge_kw: 5}}
          - id: b
            timezone: Australia/Melbourne
            provider: *prov
            battery: {{<<: *bat, capacity_kwh: 20}}
    """))
    sites = load_sites(f)
    assert sites.get("a").battery.capacity_kwh == 10 and sites.get("b").battery.capacity_kwh == 20


@pytest.mark.parametrize(("start", "needle"), [('"not-a-date"', "'not-a-date' is not an ISO 8601 instant"),
                                               ('"2024-02-12T20:00:00"', "has no UTC offset"),
                                               ("2024-02-12 20:00:00", "has no UTC offset")])
def test_replay_start_must_be_an_instant(tmp_path, start, needle):
    provider = f"""
    provider:
      kind: replay
      region: VIC1
      file: {PRICES}
      replay_start: {start}
"""
    msg = refused(write(tmp_path, site_yaml(provider=provider)))
    assert "site 'home': provider.replay_start:" in msg and needle in msg


def test_unquoted_yaml_timestamp_with_offset_is_accepted(tmp_path):
    provider = f"""
    provider:
      kind: replay
      region: VIC1
      file: {PRICES}
      replay_start: 2024-02-12T20:00:00Z
"""
    site = load_sites(write(tmp_path, site_yaml(provider=provider))).get("home")
    assert site.provider.replay_start == "2024-02-12T20:00:00+00:00"


def test_missing_price_file_and_load_profile(tmp_path):
    provider = """
    provider:
      kind: replay
      region: VIC1
      file: prices/nowhere.csv
"""
    msg = refused(write(tmp_path, site_yaml(provider=provider, extra="load: {profile: profiles/none.csv}")))
    assert "site 'home': provider.file: prices/nowhere.csv does not exist" in msg
    assert "site 'home': load.profile: profiles/none.csv does not exist" in msg


def test_saved_payload_glob_matching_nothing(tmp_path):
    provider = """
    provider:
      kind: amber
      token_env: AMBER_TOKEN
      file: amber/*.json
"""
    assert "provider.file: amber/*.json does not exist" in refused(write(tmp_path, site_yaml(provider=provider)))


def test_sungrow_sh_battery_and_sg_inverter_on_one_address(tmp_path):
    extra = "ac_inverter: {brand: sungrow_sg, host: 192.0.2.10}"  # SG defaults: port 502, unit 1 = the SH battery's
    msg = refused(write(tmp_path, site_yaml(extra=extra)))
    assert ("site 'home' battery (sungrow_sh) and site 'home' ac_inverter (sungrow_sg) drive the same device "
            "192.0.2.10:502 unit 1") in msg
    ok = "ac_inverter: {brand: sungrow_sg, host: 192.0.2.10, device_id: 2}"
    assert load_sites(write(tmp_path, site_yaml(extra=ok))).get("home").ac_inverter.device_id == 2


def test_two_sites_driving_one_battery(tmp_path):
    msg = refused(write(tmp_path, site_yaml("north"), site_yaml("south")))
    assert "site 'north' battery (sungrow_sh) and site 'south' battery (sungrow_sh) drive the same device" in msg


def test_two_sites_on_one_tesla_energy_site(tmp_path):
    tesla = """
    battery:
      kind: tesla
      token_env: TESLA_TOKEN
      energy_site_id: "1234"
      capacity_kwh: 13.5
      max_charge_kw: 5
      max_discharge_kw: 5
"""
    msg = refused(write(tmp_path, site_yaml("a", battery=tesla), site_yaml("b", battery=tesla)))
    assert "drive the same device Tesla energy site 1234" in msg


def test_tesla_without_token_variable(tmp_path):
    tesla = """
    battery:
      kind: tesla
      capacity_kwh: 13.5
      max_charge_kw: 5
      max_discharge_kw: 5
"""
    assert "site 'home': battery.token_env: a Tesla battery needs" in refused(write(tmp_path, site_yaml(battery=tesla)))


def test_a_tesla_on_the_fleet_api_refresh_flow_needs_no_token_variable(tmp_path):
    tesla = """
    battery:
      kind: tesla
      api: fleet
      oauth_client_id: my-client
      refresh_token_env: TESLA_REFRESH
      capacity_kwh: 13.5
      max_charge_kw: 5
      max_discharge_kw: 5
"""
    (site,) = load_sites(write(tmp_path, site_yaml(battery=tesla))).sites
    assert site.battery.refresh_token_env == "TESLA_REFRESH" and site.battery.token_env is None


def test_sites_command_reports_mistakes_with_exit_2(tmp_path, capsys):
    provider = """
    provider:
      kind: replay
      region: VIC1
      file: nowhere.csv
      replay_start: not-a-date
"""
    code = main(["sites", "--sites", str(write(tmp_path, site_yaml(provider=provider)))])
    err = capsys.readouterr().err
    assert code == 2 and "replay_start" in err and "Traceback" not in err
    code = main(["sites", "--sites", str(write(tmp_path, site_yaml(provider=provider.replace("not-a-date", "2024-02-12T20:00:00Z"))))])
    err = capsys.readouterr().err
    assert code == 2 and "provider.file: nowhere.csv does not exist" in err
