"""Per-site switches (optimization, auto_tou_sync, cost_function): set in the sites file or by a service call,
persisted in DuckDB ``site_settings`` and honoured by the planning cycle; through the real CLI, a simulated
Sungrow SH and the DuckDB history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.config import SiteConfigError, load_sites, parse_sites
from powersync_pipelines.control import ledger
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.cycle import planner_for
from powersync_pipelines.control.switches import in_effect
from powersync_pipelines.control.tariff_sync import sync_tou_schedule
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.optimizer import PlannerSettings
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from ..demo_peer import cli_json, demo_site_on

NOW = "2024-02-12T20:00:00Z"  # the demo's replay start: the plan wants to export now
REPO_ROOT = Path(__file__).resolve().parents[2]




def _write_sites(tmp_path, demo_site, sim, extra: str = "") -> str:
    site = demo_site_on(demo_site, sim.port)
    for name in ("optimization", "auto_tou_sync", "cost_function"):
        site.pop(name, None)
    text = yaml.safe_dump({"sites": [site]})
    if extra:  # site-level keys as a user types them (``optimization: off``, YAML 1.1 on/off)
        text = text.replace("\n  id: demo\n", f"\n  id: demo\n{extra}", 1)
        assert extra in text
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def sites_file(tmp_path, demo_site, sim) -> str:
    return _write_sites(tmp_path, demo_site, sim)




def _battery_writes(store: HistoryStore) -> pd.DataFrame:
    return store.query("SELECT command, owner FROM commands WHERE site_id = 'demo' ORDER BY issued_at")


def test_optimization_off_plans_without_pushing_and_on_again_pushes(sites_file, sim, capsys):
    rc, off = cli_json(capsys, "service", "set_optimization", "--site-id", "demo", "--sites", sites_file,
                       "--enabled", "off")
    assert rc == 0 and off["ok"] and off["switches"]["optimization"] == "off" and off["previous"] == "on"
    assert off["hand_back"] is None  # nothing held: nothing to hand back
    state_before = dict(sim.state)

    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW)
    assert rc == 0 and synced["ok"] and synced["command"] == "optimization_off" and synced["optimization"] is False
    assert synced["action"] == "EXPORT"  # the plan is still computed ...
    store = HistoryStore(duckdb_path())
    assert store.read_plan("demo", synced["plan_id"]) is not None  # ... and stored for display
    assert _battery_writes(store).empty and ledger.requests(store, "demo").empty  # nothing asked, nothing written
    assert sim.state["ems_mode"] == state_before["ems_mode"] == 0
    assert not store.query("SELECT * FROM telemetry WHERE site_id = 'demo'").empty  # telemetry still recorded
    assert not store.read_prices("demo").empty  # prices still recorded

    rc, on = cli_json(capsys, "service", "set_optimization", "--site-id", "demo", "--sites", sites_file,
                      "--enabled", "on")
    assert rc == 0 and on["switches"]["optimization"] == "on"
    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW)
    assert rc == 0 and synced["command"] == "ok" and synced["action"] == "EXPORT"
    assert sim.state["ems_mode"] == SG.MODE_FORCED and sim.state["command"] == SG.CMD_DISCHARGE


def test_switching_optimization_off_hands_the_battery_back_once(sites_file, sim, capsys):
    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW)
    assert rc == 0 and synced["command"] == "ok" and sim.state["command"] == SG.CMD_DISCHARGE

    rc, off = cli_json(capsys, "service", "set_optimization", "--site-id", "demo", "--sites", sites_file,
                       "--enabled", "off")
    assert rc == 0 and off["ok"] and off["hand_back"]["decision"] == "granted"
    assert sim.state["ems_mode"] == 0  # back in its own self-consumption
    store = HistoryStore(duckdb_path())
    writes = len(_battery_writes(store))
    assert ledger.holder(store, "demo", "battery", pd.Timestamp.now(tz="UTC")) is None

    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW)
    assert rc == 0 and synced["command"] == "optimization_off"
    assert len(_battery_writes(store)) == writes  # handed back once; the next cycle writes nothing

    rc, (status,) = cli_json(capsys, "status", "--sites", sites_file, "--format", "json")
    assert status["holder"] == "none"
    assert status["switches"] == {"optimization": "off", "auto_tou_sync": "on", "cost_function": "cost",
                                  "source": {"optimization": "service", "auto_tou_sync": "sites_file",
                                             "cost_function": "sites_file"}}


def test_optimization_off_leaves_a_manual_force_alone(sites_file, sim, capsys):
    rc, forced = cli_json(capsys, "service", "force_charge", "--site-id", "demo", "--sites", sites_file,
                          "--duration-minutes", "60")
    assert rc == 0 and forced["ok"]
    rc, off = cli_json(capsys, "service", "set_optimization", "--site-id", "demo", "--sites", sites_file,
                       "--enabled", "off")
    assert rc == 0 and off["hand_back"] is None
    assert sim.state["ems_mode"] == SG.MODE_FORCED and sim.state["command"] == SG.CMD_CHARGE


def test_sites_file_switches_apply_until_a_service_overrides_them(tmp_path, demo_site, sim, capsys):
    path = _write_sites(tmp_path, demo_site, sim,
                        "  optimization: off\n  auto_tou_sync: off\n  cost_function: self_consumption\n")
    site = load_sites(path).get("demo")
    assert (site.optimization, site.auto_tou_sync, site.cost_function) == (False, False, "self_consumption")
    assert PlannerSettings.from_site(site).cost_function == "self_consumption"

    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", path, "--now", NOW)
    assert rc == 0 and synced["command"] == "optimization_off" and synced["cost_function"] == "self_consumption"
    assert _battery_writes(HistoryStore(duckdb_path())).empty

    rc, _ = cli_json(capsys, "service", "set_cost_function", "--site-id", "demo", "--sites", path,
                     "--cost-function", "cost")
    assert rc == 0
    capsys.readouterr()
    assert cli_main(["status", "--sites", path]) == 0
    assert "switches     optimization off, auto_tou_sync off, cost_function cost" in capsys.readouterr().out


def test_auto_tou_sync_off_skips_the_cycles_upload_not_the_service(sites_file, sim, capsys):
    rc, _ = cli_json(capsys, "service", "set_auto_tou_sync", "--site-id", "demo", "--sites", sites_file,
                     "--enabled", "off")
    assert rc == 0
    store = HistoryStore(duckdb_path())
    site = in_effect(store, load_sites(sites_file).get("demo"))
    assert site.auto_tou_sync is False
    now = pd.Timestamp(NOW)
    prices = store.read_prices("demo")
    skipped = sync_tou_schedule(ControlContext(store), site, now, prices=prices, scheduled=True)
    assert skipped["action"] == "skipped" and skipped["ok"] and "auto_tou_sync is off" in skipped["reason"]
    assert store.query("SELECT * FROM tariff_payloads WHERE site_id = 'demo'").empty

    rc, asked = cli_json(capsys, "service", "sync_tou_schedule", "--site-id", "demo", "--sites", sites_file,
                         "--now", NOW, "--dry-run")
    assert rc == 0 and asked["action"] != "skipped"  # a person's request still builds (and stores) the tariff
    assert not store.query("SELECT * FROM tariff_payloads WHERE site_id = 'demo'").empty


def test_a_service_value_persists_across_processes(sites_file, sim, capsys):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    r = subprocess.run([sys.executable, "-m", "powersync_pipelines.cli", "service", "set_cost_function",
                        "--site-id", "demo", "--sites", sites_file, "--cost-function", "self_consumption"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["switches"]["cost_function"] == "self_consumption"

    store = HistoryStore(duckdb_path())
    site = in_effect(store, load_sites(sites_file).get("demo"))
    assert site.cost_function == "self_consumption"
    assert planner_for(site).settings.cost_function == "self_consumption"
    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW)
    assert rc == 0 and synced["cost_function"] == "self_consumption"
    rc, (status,) = cli_json(capsys, "status", "--sites", sites_file, "--format", "json")
    assert status["switches"]["cost_function"] == "self_consumption"
    assert status["switches"]["source"]["cost_function"] == "service"


@pytest.mark.parametrize(("service", "flag", "value", "expected"), [
    ("set_optimization", "--enabled", "maybe", "--enabled must be true or false"),
    ("set_auto_tou_sync", "--enabled", "2", "--enabled must be true or false"),
    ("set_cost_function", "--cost-function", "profit", "--cost-function must be one of cost, self_consumption"),
])
def test_bad_switch_values_are_one_line_errors_and_store_nothing(sites_file, sim, capsys, service, flag, value,
                                                                   expected):
    capsys.readouterr()
    rc = cli_main(["service", service, "--site-id", "demo", "--sites", sites_file, flag, value])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expected in err and "\n" not in err
    assert HistoryStore(duckdb_path()).query("SELECT * FROM site_settings").empty


def test_a_bad_switch_in_the_sites_file_names_the_site_and_field(demo_site):
    site = json.loads(demo_site.model_dump_json(exclude={"base_dir"}, exclude_none=True))
    site["cost_function"] = "cheapest"
    with pytest.raises(SiteConfigError, match=r"site 'demo': cost_function: .*'cost'.*'self_consumption'"):
        parse_sites({"sites": [site]})


def test_dagster_planning_assets_honour_the_stored_switches(tmp_path, sim):
    import dagster as dg

    from powersync_pipelines.control import switches
    from powersync_pipelines.defs.planning.assets import PLANNING_ASSETS
    from powersync_pipelines.defs.planning.partitions import all_sites_tags
    from powersync_pipelines.defs.resources import (
        BatteryFleetResource,
        ClockResource,
        HistoryStoreResource,
        SitesResource,
    )

    store = HistoryStore(tmp_path / "h.duckdb")
    at = pd.Timestamp(NOW)
    switches.save(store, "demo", "optimization", False, at, "manual")
    switches.save(store, "demo", "auto_tou_sync", False, at, "manual")
    switches.save(store, "demo", "cost_function", "self_consumption", at, "manual")
    result = dg.materialize(PLANNING_ASSETS, instance=dg.DagsterInstance.ephemeral(), tags=all_sites_tags(),
                            resources={"sites": SitesResource(),
                                       "history": HistoryStoreResource(path=str(tmp_path / "h.duckdb")),
                                       "fleet": BatteryFleetResource(endpoints={"demo": f"127.0.0.1:{sim.port}"}),
                                       "clock": ClockResource(fixed_now=NOW)})
    assert result.success
    commands = result.asset_materializations_for_node("battery_commands")[0].metadata
    assert commands["demo/outcome"].value == "optimization_off"
    tou = result.asset_materializations_for_node("tou_tariff_payload")[0].metadata
    assert tou["demo/decision"].value.startswith("skipped: auto_tou_sync is off")
    assert store.query("SELECT count(*) n FROM commands WHERE site_id = 'demo'")["n"].iloc[0] == 0
    assert store.read_latest_plan("demo") is not None  # planned and stored for display
    assert sim.state["ems_mode"] == 0
    assert planner_for(in_effect(store, load_sites().get("demo"))).settings.cost_function == "self_consumption"
