"""One site's failed battery command costs only that site: in a real Dagster run over three sites (two simulated
Sungrow SH batteries on loopback, one battery nobody answers for), ``battery_commands`` materializes, its ERROR
check ``commands_carried_out`` fails naming the failed site and its error, and ``telemetry`` stores the other
two sites' read-back while skipping the failed one for the slot. Both layouts of the planning assets: partitioned
by site (a small fleet) and one unpartitioned run (a fleet above ``POWERSYNC_SITE_PARTITIONS_MAX``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from powersync_pipelines.paths import DEFAULT_SITES_FILE, REPO_ROOT
from powersync_pipelines.storage import HistoryStore

NOW = "2024-02-12T20:00:00Z"


def _sites_file(tmp_path: Path) -> Path:
    doc = yaml.safe_load(DEFAULT_SITES_FILE.read_text())
    first = doc["sites"][0]
    first["provider"]["file"] = str(REPO_ROOT / first["provider"]["file"])
    first["load"]["profile"] = str(REPO_ROOT / first["load"]["profile"])
    others = []
    for i, sid in enumerate(("second", "broken"), start=1):
        site = json.loads(json.dumps(first))
        site["id"] = sid
        site["battery"]["port"] = first["battery"]["port"] + i  # its own device: one writer per battery
        others.append(site)
    doc["sites"] = [first, *others]
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("partitions_max", ["20", "0"], ids=["site_partitions", "unpartitioned"])
def test_a_failed_command_fails_its_check_and_the_other_sites_telemetry_is_stored(tmp_path, partitions_max):
    with socket.socket() as s:  # a loopback port nobody listens on: the "broken" site's battery
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    db = tmp_path / "h.duckdb"
    script = textwrap.dedent(f"""
        import json, dagster as dg
        from powersync_pipelines.config import load_sites
        from powersync_pipelines.defs.planning.assets import PLANNING_ASSETS
        from powersync_pipelines.defs.planning.partitions import all_sites_tags, planning_partitions
        from powersync_pipelines.defs.resources import *
        from powersync_pipelines.sim.site_devices import simulated_devices
        sites = load_sites()
        with simulated_devices([s for s in sites.sites if s.id != "broken"]) as eps:
            r = dg.materialize(PLANNING_ASSETS, instance=dg.DagsterInstance.ephemeral(), tags=all_sites_tags(),
                raise_on_error=False,
                resources={{"sites": SitesResource(), "history": HistoryStoreResource(path={str(db)!r}),
                           "fleet": BatteryFleetResource(endpoints={{**eps, "broken": "127.0.0.1:{dead_port}"}}),
                           "clock": ClockResource(fixed_now={NOW!r})}})
        checks = [{{"name": e.check_name, "passed": e.passed, "severity": e.severity.value,
                    "meta": {{k: v.value for k, v in e.metadata.items()}}}}
                  for e in r.get_asset_check_evaluations() if e.check_name == "commands_carried_out"]
        mats = {{n: [{{k: v.value for k, v in m.metadata.items() if k in ("stage_failures", "failed_site_ids", "stage_sites", "stage_failed")}}
                     for m in r.asset_materializations_for_node(n)]
                for n in ("battery_commands", "telemetry")}}
        print(json.dumps({{"success": r.success, "partitioned": planning_partitions is not None,
                           "checks": checks, "mats": mats}}))
    """)
    env = {**os.environ, "POWERSYNC_SITES": str(_sites_file(tmp_path)), "POWERSYNC_HOME": str(tmp_path / "home"),
           "POWERSYNC_SITE_PARTITIONS_MAX": partitions_max}
    env.pop("POWERSYNC_SHARDS", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600,
                         cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["partitioned"] is (partitions_max == "20")
    assert res["success"]  # the run completes: no stage is skipped for every site

    # loud: the check fails (ERROR) and names only the broken site, with its error
    assert res["checks"], "no commands_carried_out evaluation"
    for check in res["checks"]:  # one per site partition when partitioned, each with the run's verdict
        assert not check["passed"] and check["severity"] == "ERROR"
        assert check["meta"]["failed"] == 1
        assert check["meta"]["summary"].startswith("battery command failed: broken: ")
        assert "second" not in check["meta"]["summary"] and "demo:" not in check["meta"]["summary"]
    commands = res["mats"]["battery_commands"][0]
    assert commands["failed_site_ids"] == ["broken"]
    assert [f["site_id"] for f in commands["stage_failures"]] == ["broken"]
    telemetry = res["mats"]["telemetry"][0]  # the stage ran (it used to be skipped for every site)
    assert (telemetry["stage_sites"], telemetry["stage_failed"]) == (3, 1)
    assert [f["site_id"] for f in telemetry["stage_failures"]] == ["broken"]  # skipped, and says why
    assert "its battery command failed this slot" in telemetry["stage_failures"][0]["error"]

    store = HistoryStore(db)
    ok = store.query("SELECT DISTINCT site_id FROM commands WHERE outcome = 'ok' ORDER BY 1")["site_id"].tolist()
    assert ok == ["demo", "second"]
    # the other sites' read-back after the command is stored (a second row after battery_schedule's SOC read);
    # the broken site has none (nothing to read)
    read_back = store.query("SELECT site_id, count(*) n FROM telemetry GROUP BY 1 ORDER BY 1")
    assert read_back["site_id"].tolist() == ["demo", "second"] and (read_back["n"] >= 2).all()
    assert set(store.query("SELECT DISTINCT site_id FROM plans")["site_id"]) == {"demo", "second", "broken"}
