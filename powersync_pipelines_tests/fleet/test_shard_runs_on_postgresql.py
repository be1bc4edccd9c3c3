"""Shard runs at once on PostgreSQL: three processes each run ``reoptimize_job`` for one shard of a generated
fleet at the same time; each plans only its shard's sites, and the database ends with one plan per site and three
successful runs in Dagster's run storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from powersync_pipelines.control.fleet import shard_keys, sites_of_shard
from powersync_pipelines.sim.fleet import (
    SIM_TOKEN,
    TOKEN_ENV,
    fleet_devices,
    fleet_simulators,
    released_together,
    write_sites_file,
)

pytestmark = pytest.mark.timeout(600)

SHARDS = 3
CHILD = """
import json, sys
import dagster as dg
from powersync_pipelines.definitions import defs
from powersync_pipelines.defs.planning.partitions import sharded, shard_run_tags
from powersync_pipelines.paths import ensure_dagster_home

key = sys.argv[1] if len(sys.argv) > 1 else None
if key is None:  # as `powersync ui` starts: the instance's storage and pool limits created once, under its lock
    from powersync_pipelines.commands.instance import prepared_instance
    instance, _ = prepared_instance()
    slots = {p: instance.event_log_storage.get_concurrency_info(p).slot_count for p in ("duckdb_history", "modbus")}
    print(json.dumps({"ready": True, "slots": slots}))
    raise SystemExit(0)
ensure_dagster_home()
instance = dg.DagsterInstance.get()
job = defs().resolve_job_def("reoptimize_job")
print("ready", flush=True)
sys.stdin.readline()  # released together with the other shards
result = job.execute_in_process(instance=instance, partition_key=key, tags=shard_run_tags(key),
                                raise_on_error=False)
planned, failures = {}, []
for ev in result.all_events:
    if ev.is_failure:
        error = getattr(ev.event_specific_data, "error", None)
        failures.append(f"{ev.step_key or 'run'}: {error.message.strip()[:4000] if error else ev.message}")
    if ev.event_type_value == "ASSET_MATERIALIZATION":
        mat = ev.event_specific_data.materialization
        planned[mat.asset_key.to_user_string()] = sorted(
            {k.split("/")[0] for k in mat.metadata if "/" in k})
print(json.dumps({"run_id": result.run_id, "success": result.success, "sharded": sharded, "planned": planned, "failures": failures,
                  "tags": dict(instance.get_run_by_id(result.run_id).tags)}))
"""


def _env(tmp_path: Path, sites_file: Path, pg_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERSYNC_", "DAGSTER_"))}
    env.update({"POWERSYNC_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                "POWERSYNC_SITES": str(sites_file), "POWERSYNC_DATABASE_URL": pg_url, TOKEN_ENV: SIM_TOKEN,
                "POWERSYNC_SHARDS": str(SHARDS), "POWERSYNC_SITE_PARTITIONS_MAX": "2"})
    return env


def test_three_shard_runs_at_once_plan_each_site_once(tmp_path: Path, pg_url: str) -> None:
    devices = fleet_devices(6, seed=7)
    site_ids = [d["id"] for d in devices]
    keys = shard_keys(SHARDS)
    assert all(sites_of_shard(k, site_ids) for k in keys)  # the fleet puts sites in every shard
    with fleet_simulators(devices) as (endpoints, _proc):
        env = _env(tmp_path, write_sites_file(tmp_path / "sites.yaml", devices, endpoints), pg_url)
        ready = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
        assert ready.returncode == 0, ready.stderr[-2000:]
        # on PostgreSQL the writer and device pools admit the shard runs together (one writer on a DuckDB file)
        assert json.loads(ready.stdout.strip().splitlines()[-1])["slots"] == {"duckdb_history": 4, "modbus": 4}
        # each child loads first, then all start their run together
        _, children = released_together([[sys.executable, "-c", CHILD, k] for k in keys], env, timeout_s=400)
    reports = {}
    for k, c in zip(keys, children, strict=True):
        assert c.returncode == 0 and c.lines, c.stderr[-2000:]
        reports[k] = json.loads(c.lines[-1])
    for k, r in reports.items():
        assert r["success"] and r["sharded"], (k, r["failures"])
        assert r["tags"]["powersync/planning_shard"] == k and "powersync/duckdb_writer" not in r["tags"]
        assert r["planned"]["battery_schedule"] == sorted(sites_of_shard(k, site_ids)), k  # only its sites
        assert r["planned"]["price_forecast"] == sorted(sites_of_shard(k, site_ids)), k
    with psycopg.connect(pg_url) as con:
        per_site = con.execute("SELECT site_id, count(*) FROM plans GROUP BY 1 ORDER BY 1").fetchall()
        runs = con.execute("SELECT run_id, status FROM runs ORDER BY run_id").fetchall()
        commanded = {r[0] for r in con.execute(
            "SELECT DISTINCT site_id FROM commands WHERE owner = 'optimizer' AND outcome = 'ok'").fetchall()}
    assert per_site == [(s, 1) for s in sorted(site_ids)]  # one plan per site: none lost, none doubled
    assert sorted(runs) == sorted((r["run_id"], "SUCCESS") for r in reports.values())
    assert commanded == set(site_ids)
