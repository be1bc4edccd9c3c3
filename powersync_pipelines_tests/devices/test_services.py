"""Each service writes exactly the registers/requests it should (and reads them back), via run_service, the
CLI and the Dagster jobs, against the simulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.control.services import ServiceInputError, run_service
from powersync_pipelines.devices.maps import SG

from ..conftest import lapse_holds


@pytest.mark.parametrize(
    ("name", "params", "registers"),
    [
        ("sungrow_force_charge", {"kw": 2.0}, [SG.FORCED_POWER, SG.EMS_MODE, SG.COMMAND]),
        ("sungrow_force_discharge", {"kw": 2.0, "duration_minutes": 60}, [SG.FORCED_POWER, SG.EMS_MODE, SG.COMMAND]),
        ("force_charge", {}, [SG.FORCED_POWER, SG.EMS_MODE, SG.COMMAND]),
        ("sungrow_set_backup_reserve", {"percent": 15}, [SG.RESERVE]),
        ("set_backup_reserve", {"percent": 15}, [SG.RESERVE]),
        ("sungrow_set_charge_rate", {"kw": 3.3}, [SG.MAX_CHARGE_POWER]),
        ("sungrow_set_discharge_rate", {"kw": 4.0}, [SG.MAX_DISCHARGE_POWER]),
        ("sungrow_set_export_limit", {"watts": "1200"}, [SG.EXPORT_LIMIT, SG.EXPORT_SWITCH]),
        ("sungrow_set_export_limit", {"watts": "none"}, [SG.EXPORT_SWITCH]),
        ("sungrow_restore_normal", {}, [SG.COMMAND, SG.FORCED_POWER, SG.EMS_MODE]),
    ],
)
def test_sungrow_service_writes_exactly_its_registers(sungrow_sim, sungrow_site, store, name, params, registers, ctx):
    if name.endswith("restore_normal"):
        sungrow_sim.set(EMS_MODE=2, COMMAND=SG.CMD_CHARGE, FORCED_POWER=1000)
    out = run_service(name, sungrow_site, params, ctx)
    assert out["ok"], out["error"]
    assert sungrow_sim.written_addresses() == registers
    assert out["written"] == out["readback"]
    assert store.query("SELECT outcome FROM commands")["outcome"].tolist() == ["ok"]


def test_sungrow_service_values(sungrow_sim, sungrow_site, store, ctx):
    run_service("sungrow_set_charge_rate", sungrow_site, {"kw": 3.3}, ctx)
    run_service("sungrow_set_export_limit", sungrow_site, {"watts": "1200"}, ctx)
    h = sungrow_sim.state["holding"]
    assert (h[SG.MAX_CHARGE_POWER], h[SG.EXPORT_LIMIT], h[SG.EXPORT_SWITCH]) == (330, 1200, SG.ON)


def test_sigenergy_generic_services(sigen_sim, sigen_site, store, ctx):
    assert run_service("force_charge", sigen_site, {"kw": 2.0}, ctx)["ok"]
    assert sigen_sim.written_addresses() == [40032, 40029, 40031]
    sigen_sim.clear_log()
    assert run_service("set_backup_reserve", sigen_site, {"percent": 30}, ctx)["ok"]
    assert sigen_sim.written_addresses() == [40046]
    sigen_sim.clear_log()
    assert run_service("restore_normal", sigen_site, {}, ctx)["ok"]
    assert sigen_sim.written_addresses() == [40032, 40031, 40029]
    assert run_service("sync_battery_health", sigen_site, {}, ctx)["health"]["soh"] == pytest.approx(0.98)


def test_tesla_services_send_exactly_their_requests(tesla_sim, tesla_site, store, ctx):
    assert run_service("set_operation_mode", tesla_site, {"mode": "autonomous"}, ctx)["ok"]
    assert run_service("set_grid_export", tesla_site, {"export": "never"}, ctx)["ok"]
    assert run_service("set_grid_charging", tesla_site, {"enabled": "false"}, ctx)["ok"]
    assert run_service("set_backup_reserve", tesla_site, {"percent": 45}, ctx)["ok"]
    assert tesla_sim.posts() == [
        ("operation", {"default_real_mode": "autonomous"}),
        ("grid_import_export", {"customer_preferred_export_rule": "never"}),
        ("grid_import_export", {"disallow_charge_from_grid_with_solar_installed": True}),
        ("backup", {"backup_reserve_percent": 45}),
    ]
    hist = run_service("get_calendar_history", tesla_site, {"period": "day", "source": "tesla"}, ctx)
    assert hist["ok"] and hist["source"] == "tesla" and any(p.endswith("calendar_history") for _, p, _ in tesla_sim.requests)
    health = run_service("sync_battery_health", tesla_site, {}, ctx)
    assert health["health"]["soh"] == pytest.approx(0.93) and health["health"]["degradation_pct"] == pytest.approx(7.0)


def test_services_a_kind_does_not_have_say_so(sungrow_site, tesla_site, sigen_site, store, ctx):
    with pytest.raises(ServiceInputError, match="Tesla Powerwall.*sungrow_sh battery"):
        run_service("set_operation_mode", sungrow_site, {"mode": "autonomous"}, ctx)
    with pytest.raises(ServiceInputError, match="Sungrow SH.*tesla battery"):
        run_service("sungrow_force_charge", tesla_site, {}, ctx)
    with pytest.raises(ServiceInputError, match="--source tesla needs a Tesla Powerwall"):
        run_service("get_calendar_history", sigen_site, {"source": "tesla"}, ctx)
    with pytest.raises(ServiceInputError, match="needs --percent"):
        run_service("set_backup_reserve", sigen_site, {}, ctx)
    with pytest.raises(ServiceInputError, match="unknown service"):
        run_service("make_coffee", sigen_site, {}, ctx)


def test_a_duration_outside_15_to_240_minutes_is_refused_before_anything_is_written(tesla_site, tesla_sim, ctx):
    for minutes in (0, 5, 241):
        with pytest.raises(ServiceInputError, match="--duration-minutes must be"):
            run_service("force_discharge", tesla_site, {"duration_minutes": minutes}, ctx)
    with pytest.raises(ServiceInputError, match="--kw must be > 0"):
        run_service("force_discharge", tesla_site, {"kw": 0}, ctx)
    assert tesla_sim.posts() == []


def test_service_runs_an_expired_restore_first(sungrow_sim, sungrow_site, store, ctx):
    assert run_service("force_charge", sungrow_site, {"duration_minutes": 15}, ctx)["ok"]
    lapse_holds(store, sungrow_site.id)
    out = run_service("set_backup_reserve", sungrow_site, {"percent": 12}, ctx)
    assert out["expired_restore"] == "ok" and sungrow_sim.state["ems_mode"] == 0


# -- the CLI ------------------------------------------------------------------------------------------------
def _sites_file(tmp_path, site) -> str:
    doc = {"sites": [json.loads(site.model_dump_json(exclude={"base_dir"}, exclude_none=True))]}
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_cli_service_against_the_simulator(sungrow_sim, sungrow_site, tmp_path, capsys):
    sites = _sites_file(tmp_path, sungrow_site)
    rc = cli_main(["service", "sungrow_force_discharge", "--site-id", "t1", "--sites", sites,
                   "--duration-minutes", "20", "--kw", "1.5"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["readback"]["13050:command"] == SG.CMD_DISCHARGE
    assert sungrow_sim.state["forced_power_w"] == 1500
    rc = cli_main(["service", "restore_normal", "--site-id", "t1", "--sites", sites])
    assert rc == 0 and sungrow_sim.state["ems_mode"] == 0
    capsys.readouterr()
    assert cli_main(["service", "set_grid_export", "--site-id", "t1", "--sites", sites, "--export", "never"]) == 2
    assert "Tesla Powerwall" in capsys.readouterr().err
    assert cli_main(["service", "set_backup_reserve", "--site-id", "zz", "--sites", sites, "--percent", "5"]) == 2
    sungrow_sim.set(soc=0.05)
    assert cli_main(["service", "force_discharge", "--site-id", "t1", "--sites", sites]) == 1
    assert "reserve" in capsys.readouterr().err


def test_cli_help_lists_every_service(capsys):
    with pytest.raises(SystemExit):
        cli_main(["service", "--help"])
    text = capsys.readouterr().out
    for name in ("sync_tou_schedule", "curtail_inverter", "restore_inverter", "sungrow_set_export_limit", "sync_now"):
        assert name in text


@pytest.mark.slow  # two interpreter start-ups with the full import chain; the in-process tests cover the logic
def test_powersync_simulate_runs_a_real_peer_the_cli_can_drive(tmp_path, sungrow_site):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "powersync_pipelines.cli", "simulate", "sungrow", "--port", "0",
                             "--soc", "0.4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        site = sungrow_site.model_copy(update={"battery": sungrow_site.battery.model_copy(update={"port": port})})
        sites = _sites_file(tmp_path, site)
        env["POWERSYNC_HOME"] = str(tmp_path / "home2")
        done = subprocess.run([sys.executable, "-m", "powersync_pipelines.cli", "service", "force_charge", "--site-id",
                               "t1", "--sites", sites, "--kw", "2"], capture_output=True, text=True, env=env,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["readback"] == {"13051:forced_power": 2000, "13049:ems_mode": 2,
                                                       "13050:command": 0xAA}
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode is not None


@pytest.mark.parametrize("kind", ["sungrow", "sigenergy", "tesla"])
def test_simulate_command_builds_each_peer_on_a_free_port(kind):
    import argparse

    from powersync_pipelines.commands import simulate

    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    sim = simulate.build(parser.parse_args([kind, "--port", "0", "--soc", "0.3"]))
    sim.start()
    try:
        assert sim.port > 0 and sim.model.soc == pytest.approx(0.3)
    finally:
        sim.stop()


def test_simulate_command_rejects_bad_input(capsys):
    assert cli_main(["simulate", "sungrow", "--soc", "1.5"]) == 2
    assert "--soc 1.5" in capsys.readouterr().err


# -- Dagster ------------------------------------------------------------------------------------------------
def test_dagster_service_job_against_the_simulator(sungrow_sim, sungrow_site, tmp_path):
    from powersync_pipelines.defs import services as S
    from powersync_pipelines.defs.resources import (
        BatteryFleetResource,
        ClockResource,
        HistoryStoreResource,
        SitesResource,
    )
    from powersync_pipelines.storage import HistoryStore

    sites = _sites_file(tmp_path, sungrow_site)
    db = tmp_path / "dg.duckdb"
    resources = {"sites": SitesResource(path=sites), "history": HistoryStoreResource(path=str(db)),
                 "fleet": BatteryFleetResource(), "clock": ClockResource()}
    res = S.service_job("sungrow_force_charge").execute_in_process(
        run_config={"ops": {"sungrow_force_charge_op": {"config": {"site_id": "t1", "kw": 2.5,
                                                                   "duration_minutes": 15}}}},
        resources=resources)
    assert res.success
    assert (sungrow_sim.state["ems_mode"], sungrow_sim.state["forced_power_w"]) == (2, 2500)
    bad = S.service_job("set_operation_mode").execute_in_process(
        run_config={"ops": {"set_operation_mode_op": {"config": {"site_id": "t1", "mode": "autonomous"}}}},
        resources=resources, raise_on_error=False)
    assert not bad.success
    # the restore watch finds nothing due now; after the lease lapses the restore job puts the state back
    from powersync_pipelines.devices import state

    store = HistoryStore(db)
    lapse_holds(store, "t1")
    restored = S.battery_restore_expired_job.execute_in_process(resources=resources)
    assert restored.success and sungrow_sim.state["ems_mode"] == 0
    assert state.load_pending(store, "t1", "forced") is None
