"""The sites file is validated before anything runs, with errors naming the site and the field."""

from __future__ import annotations

import copy

import pytest
import yaml

from powersync_pipelines.config import SiteConfigError, load_sites, parse_sites
from powersync_pipelines.paths import DEFAULT_SITES_FILE

BASE = yaml.safe_load(DEFAULT_SITES_FILE.read_text())


def _with(mutate) -> dict:
    doc = copy.deepcopy(BASE)
    mutate(doc["sites"][0])
    return doc


def test_shipped_demo_site_loads_with_its_ratings():
    site = load_sites().get("demo")
    assert site.timezone == "Australia/Melbourne"
    assert site.battery.kind == "sungrow_sh" and site.battery.port == 1502
    assert site.battery.reserve_fraction == pytest.approx(0.20)
    assert site.currency == "AUD"
    assert site.limits.export_kw == 5.0


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(colour="red"), "site 'demo': colour: unknown key"),
        (lambda s: s["battery"].update(capacity_kwh=-5), "site 'demo': battery.capacity_kwh"),
        (lambda s: s["battery"].update(max_charge_kw="fast"), "site 'demo': battery.max_charge_kw"),
        (lambda s: s["battery"].update(charge_efficiency=1.2), "site 'demo': battery.charge_efficiency"),
        (lambda s: s.update(timezone="Mars/Olympus"), "unknown IANA timezone 'Mars/Olympus'"),
        (lambda s: s["battery"].pop("capacity_kwh"), "battery.capacity_kwh: required field is missing"),
        (lambda s: s["battery"].update(kind="powerwall9"), "site 'demo': battery.kind"),
        (lambda s: s["provider"].update(region="VIC9"), "region"),
        (lambda s: s["battery"].update(optimizer_reserve_pct=5), "optimizer_reserve_pct"),
        (lambda s: s["battery"].pop("host"), "needs 'host' and 'port'"),
        (lambda s: s.setdefault("features", {}).update(chip_mode={"threshold_c": -5}), "features.chip_mode"),
        (lambda s: s.setdefault("features", {}).update(export_boost={"offset": 3}), "features.export_boost"),
    ],
)
def test_invalid_site_fields_are_rejected_with_site_and_field(mutate, expected):
    with pytest.raises(SiteConfigError) as err:
        parse_sites(_with(mutate), "sites.yaml")
    assert expected in str(err.value)


def test_duplicate_site_ids_are_rejected():
    doc = copy.deepcopy(BASE)
    doc["sites"].append(copy.deepcopy(doc["sites"][0]))
    with pytest.raises(SiteConfigError, match="duplicate site id"):
        parse_sites(doc, "sites.yaml")


def test_sites_env_var_selects_another_file(tmp_path, monkeypatch):
    doc = _with(lambda s: s.update(id="other"))
    doc["sites"][0]["provider"]["file"] = str(
        (DEFAULT_SITES_FILE.parent / doc["sites"][0]["provider"]["file"].removeprefix("data/")).resolve())
    f = tmp_path / "sites.yaml"
    f.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("POWERSYNC_SITES", str(f))
    assert [s.id for s in load_sites().sites] == ["other"]
    with pytest.raises(SiteConfigError, match="no site with id 'demo'"):
        load_sites().get("demo")


def test_missing_and_malformed_files_say_so(tmp_path):
    with pytest.raises(SiteConfigError, match="not found"):
        load_sites(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [unclosed")
    with pytest.raises(SiteConfigError, match="not valid YAML"):
        load_sites(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("something: 1\n")
    with pytest.raises(SiteConfigError, match="'sites:' list"):
        load_sites(empty)
