"""Re-optimisation runs once for all sites: the schedule's run covers every site partition, and a run over
two sites (each with its own simulated battery) plans, commands and stores both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import dagster as dg
import yaml

from powersync_pipelines.defs.planning.jobs import reoptimize_every_5_minutes, reoptimize_job
from powersync_pipelines.paths import DEFAULT_SITES_FILE, REPO_ROOT


def test_schedule_requests_one_run_spanning_every_site_partition():
    ctx = dg.build_schedule_context(scheduled_execution_time=__import__("datetime").datetime(2026, 1, 1, 0, 5))
    req = reoptimize_every_5_minutes(ctx)
    assert isinstance(req, dg.RunRequest)
    assert req.run_key == "2026-01-01T00:05:00"
    assert req.tags["dagster/asset_partition_range_start"] == "demo"
    assert req.tags["dagster/asset_partition_range_end"] == "demo"
    assert reoptimize_job.executor_def.name == "in_process"


def test_one_run_covers_two_sites(tmp_path):
    doc = yaml.safe_load(DEFAULT_SITES_FILE.read_text())
    first = doc["sites"][0]
    first["provider"]["file"] = str(REPO_ROOT / first["provider"]["file"])
    first["load"]["profile"] = str(REPO_ROOT / first["load"]["profile"])
    second = json.loads(json.dumps(first))
    second["id"] = "second"
    second["battery"]["capacity_kwh"] = 9.6
    doc["sites"] = [first, second]
    sites = tmp_path / "sites.yaml"
    sites.write_text(yaml.safe_dump(doc))
    script = textwrap.dedent(f"""
        import json, dagster as dg
        from powersync_pipelines.config import load_sites
        from powersync_pipelines.defs.planning.assets import PLANNING_ASSETS
        from powersync_pipelines.defs.planning.partitions import all_sites_tags
        from powersync_pipelines.defs.resources import *
        from powersync_pipelines.sim.site_devices import simulated_devices
        from powersync_pipelines.storage import HistoryStore
        sites = load_sites()
        with simulated_devices(sites.sites) as eps:
            r = dg.materialize(PLANNING_ASSETS, instance=dg.DagsterInstance.ephemeral(), tags=all_sites_tags(),
                resources={{"sites": SitesResource(), "history": HistoryStoreResource(path={str(tmp_path / 'h.duckdb')!r}),
                           "fleet": BatteryFleetResource(endpoints=eps), "clock": ClockResource(fixed_now="2024-02-12T20:00:00Z")}})
        s = HistoryStore({str(tmp_path / 'h.duckdb')!r})
        print(json.dumps({{"success": r.success, "tags": all_sites_tags(),
            "plans": s.query("select site_id from plans order by site_id")["site_id"].tolist(),
            "commands": s.query("select site_id, outcome from commands order by site_id").values.tolist()}}))
    """)
    env = {**os.environ, "POWERSYNC_SITES": str(sites), "POWERSYNC_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240,
                         cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["success"]
    assert res["tags"] == {"dagster/asset_partition_range_start": "demo",
                           "dagster/asset_partition_range_end": "second"}
    assert res["plans"] == ["demo", "second"]
    assert [c[0] for c in res["commands"]] == ["demo", "second"] and {c[1] for c in res["commands"]} == {"ok"}
