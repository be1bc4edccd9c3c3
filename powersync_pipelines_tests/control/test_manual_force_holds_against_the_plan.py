"""A manual force holds the battery against the 5-minute plan until its lease ends or ``restore_normal``, then the
optimizer takes over at its next cycle: through the real CLI, a simulated Sungrow SH and the DuckDB ledger."""

from __future__ import annotations

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.control import ledger
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from ..demo_peer import cli_json

NOW = "2024-02-12T20:00:00Z"  # the demo's replay start: the plan wants to export now








def test_manual_force_survives_sync_now_until_restore_normal(sites_file, sim, capsys):
    rc, forced = cli_json(capsys, "service", "force_charge", "--site-id", "demo", "--sites", sites_file,
                          "--duration-minutes", "60")
    assert rc == 0 and forced["ok"] and sim.state["command"] == SG.CMD_CHARGE

    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW)
    assert rc == 0 and synced["command"] == "yielded" and synced["arbiter"]["holder"] == "manual"
    assert sim.state["ems_mode"] == SG.MODE_FORCED and sim.state["command"] == SG.CMD_CHARGE  # still forced
    store = HistoryStore(duckdb_path())
    row = ledger.requests(store, "demo").iloc[0]
    assert (row["owner"], row["decision"], row["holder"], row["holder_command"]) == ("optimizer", "yielded",
                                                                                    "manual", "force_charge")

    rc, (status,) = cli_json(capsys, "status", "--sites", sites_file, "--format", "json")
    assert rc == 0 and status["holder"] == "manual" and status["held_until"] is not None
    assert status["last_command"] == "force_charge" and status["last_outcome"] == "ok"
    assert status["action"] == "EXPORT" and status["plan_id"] == "demo:20240212T2000Z"

    rc, back = cli_json(capsys, "service", "restore_normal", "--site-id", "demo", "--sites", sites_file)
    assert rc == 0 and back["ok"] and sim.state["ems_mode"] == 0
    rc, (status,) = cli_json(capsys, "status", "--sites", sites_file, "--format", "json")
    assert status["holder"] == "none" and status["held_until"] is None

    rc, synced = cli_json(capsys, "service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW)
    assert rc == 0 and synced["command"] == "ok" and synced["action"] == "EXPORT"
    assert sim.state["command"] == SG.CMD_DISCHARGE
    rc, (status,) = cli_json(capsys, "status", "--sites", sites_file, "--format", "json")
    assert status["holder"] == "optimizer" and status["last_command"] == "apply:EXPORT"
    assert status["last_command_owner"] == "optimizer"


def test_status_table_names_the_holder(sites_file, sim, capsys):
    assert cli_main(["service", "force_discharge", "--site-id", "demo", "--sites", sites_file, "--kw", "2"]) == 0
    capsys.readouterr()
    assert cli_main(["status", "--sites", sites_file]) == 0
    text = capsys.readouterr().out
    assert "holder       manual until" in text and "[force_discharge]" in text
    assert cli_main(["status", "--sites", sites_file, "--site-id", "nope"]) == 2
