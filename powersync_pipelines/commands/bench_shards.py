"""``powersync bench fleet --sites N --shards K``: one fleet cycle planned as K shard runs at once.

This is how a fleet past one process is run: with ``POWERSYNC_SHARDS=K`` the planning assets have K static shard
keys (``defs.planning.partitions``) and the 5-minute schedule asks for one ``reoptimize_job`` run per key. Here
the K runs are real Dagster runs in K child processes on the same DAGSTER_HOME and history store: each loads the
Definitions first, then all are released at one moment (``sim.fleet.released_together``), so ``cycle_s`` (release
to the last run's end) is the fleet's cycle and not the processes' start-up. On the DuckDB file the runs take
turns on the ``duckdb_history`` pool (one writer); on PostgreSQL the pools admit them together
(``commands.instance.prepare_pools``, created once by a first child before the runs, as ``powersync ui`` does).

Per-stage per-site timings are merged over all sites from each site's own milliseconds (each stage's
``per_site_ms_each`` metadata), so the p50/p95/max are of the whole fleet, not averages of the shards'. What was stored is then checked, not assumed:
one plan per site since the release (no lost or doubled rows), schedule rows = sites x 576, and every run
SUCCESS in Dagster's run storage (read back by a last child).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from .bench import QUIET_RUN_CONFIG, STAGES, last_json, run_figures

SCHEDULE_STEPS = 48 * 12
"""Rows of one stored plan: a 48 h horizon at 5-minute steps."""
MAX_SHARDS = 64
SHARD_CHILD = "from powersync_pipelines.commands.bench_shards import _shard_main; _shard_main()"


def _child(*args: str) -> list[str]:
    return [sys.executable, "-c", SHARD_CHILD, *args]


def run_shard_cycle(env: dict[str, str], shards: int, site_ids: list[str]) -> dict[str, Any]:
    """Run one cycle as ``shards`` runs released together; the merged figures (the keys of a one-run cycle, plus
    ``shard_runs``, ``run_ids``, ``run_statuses``, ``peak_rss_mb_max_shard``)."""
    from ..control.fleet import shard_keys, sites_of_shard

    env = {**env, "POWERSYNC_SHARDS": str(shards),
           # shard partitions whatever the fleet's size (below this threshold the assets are per site)
           "POWERSYNC_SITE_PARTITIONS_MAX": "0"}
    prep = subprocess.run(_child("prepare"), env=env, capture_output=True, text=True)
    if prep.returncode != 0:
        raise RuntimeError(f"preparing the Dagster instance failed (exit {prep.returncode}): "
                           f"{prep.stderr.strip()[-2000:]}")
    slots = last_json(prep.stdout, "the instance child", prep.stderr)["slots"]
    from ..sim.fleet import released_together

    keys = shard_keys(shards)
    released, children = released_together([_child("run", k) for k in keys], env)
    runs = []
    for key, c in zip(keys, children, strict=True):
        if c.returncode != 0:
            raise RuntimeError(f"shard run {key} failed (exit {c.returncode}): {c.stderr.strip()[-2000:]}")
        runs.append(last_json(c.lines, f"shard run {key}", c.stderr))
    check = subprocess.run(_child("runs", *[r["run_id"] for r in runs]), env=env, capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"reading Dagster's run storage failed: {check.stderr.strip()[-2000:]}")
    stored = last_json(check.stdout, "the run storage child", check.stderr)
    statuses: dict[str, str] = stored["statuses"]

    shard_runs = [{
        "shard": key, "sites": len(sites_of_shard(key, site_ids)), "sites_planned": r["sites_planned"],
        "cycle_s": round(r["ended"] - released, 2), "run_s": r["run_s"],
        "status": statuses.get(r["run_id"], "MISSING"), "peak_rss_mb": r["peak_rss_mb"],
        "failures": len(r["failures"]), "run_id": r["run_id"],
    } for key, r in zip(keys, runs, strict=True)]
    fetched = [r["price_fetches"] for r in runs if r["price_fetches"]]
    rss = [r["peak_rss_mb"] for r in runs]
    return {
        "cycle_s": round(max(r["ended"] for r in runs) - released, 2),
        **merge_stage_timings([r["site_ms"] for r in runs], [r["stage_s"] for r in runs]),
        "failures": [{**f, "shard": key} for key, r in zip(keys, runs, strict=True) for f in r["failures"]],
        "peak_rss_mb": round(sum(rss), 1), "peak_rss_mb_max_shard": max(rss),
        "success": all(s["status"] == "SUCCESS" for s in shard_runs) and all(r["success"] for r in runs),
        "run_id": runs[0]["run_id"], "run_ids": [r["run_id"] for r in runs],
        "run_statuses": {s["shard"]: s["status"] for s in shard_runs},
        "job_runs_in_storage": stored["job_runs"],
        "price_fetches": ({k: sum(f[k] for f in fetched) for k in ("fetched", "shared")} if fetched else {}),
        "partitioned": all(r["sharded"] for r in runs), "sharded": all(r["sharded"] for r in runs),
        "run_started": min(r["run_started"] for r in runs),
        "process_start_s": max(r["process_start_s"] for r in runs),
        "shard_runs": shard_runs, "shards": shards, "pool_slots": slots,
    }


def merge_stage_timings(site_ms: list[dict[str, list[float]]], stage_s: list[dict[str, float]]
                        ) -> dict[str, Any]:
    """Per stage over every shard's sites: p50/p95/max of the sites' milliseconds, and ``amortised`` = the
    stage's run time summed over the shards, shared out over all sites (with one shard: the one-run figure).
    ``stage_s`` is summed over the shards too (their wall times overlap when the runs plan at once)."""
    from ..control.fleet import SiteOutcome, StageReport

    per_site, walls = {}, {}
    for stage in STAGES:
        ms = [x for shard in site_ms for x in shard.get(stage, [])]
        if not ms:
            continue
        wall = sum(s.get(stage, 0.0) for s in stage_s)
        pct = StageReport(stage, [SiteOutcome("", x) for x in ms]).percentiles()
        per_site[stage] = {**pct, "amortised": round(wall * 1000 / len(ms), 2)}
        walls[stage] = round(wall, 3)
    return {"per_site_ms": per_site, "stage_s": walls}


def shard_fields(cycle: dict[str, Any], location: str, site_ids: list[str], schedule_rows: int) -> dict[str, Any]:
    """The report's shard fields, and the stored result checked: one plan per site for the cycle, sites x 576
    schedule rows, every shard run SUCCESS in Dagster's run storage (``stored_as_expected`` says all held)."""
    from ..storage import HistoryStore

    with HistoryStore(location).connect(read_only=True) as con:
        per_site = dict(con.execute("SELECT site_id, count(*) FROM plans WHERE created_at >= ? GROUP BY 1",
                                    [cycle["run_started"]]).fetchall())
    not_planned = sorted(set(site_ids) - set(per_site))
    doubled = sorted(s for s, k in per_site.items() if k > 1)
    stranger = sorted(set(per_site) - set(site_ids))
    all_success = all(s == "SUCCESS" for s in cycle["run_statuses"].values())
    return {
        "shards": cycle["shards"],
        "shard_runs": cycle["shard_runs"],
        "run_ids": cycle["run_ids"],
        "runs_success_in_storage": sum(s == "SUCCESS" for s in cycle["run_statuses"].values()),
        "job_runs_in_storage": cycle["job_runs_in_storage"],
        "peak_rss_mb_sum_of_shards": cycle["peak_rss_mb"],
        "peak_rss_mb_max_shard": cycle["peak_rss_mb_max_shard"],
        "plan_rows": int(sum(per_site.values())),
        "sites_not_planned": not_planned,
        "sites_planned_more_than_once": doubled,
        "schedule_rows_expected": len(site_ids) * SCHEDULE_STEPS,
        "pool_slots": cycle["pool_slots"],
        "stored_as_expected": bool(all_success and not not_planned and not doubled and not stranger
                                   and schedule_rows == len(site_ids) * SCHEDULE_STEPS and cycle["sharded"]),
    }


# -- the children ---------------------------------------------------------------------------------------------
def _shard_main() -> None:
    """A child: ``prepare`` (the instance's storage and pools, once), ``run KEY`` (load, print ``ready``, wait
    for the release on stdin, run reoptimize_job for shard KEY, print one JSON line) or ``runs ID...`` (each
    run's status in Dagster's run storage)."""
    t0 = time.perf_counter()
    import dagster as dg

    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "prepare":
        from .instance import prepared_instance

        instance, _ = prepared_instance()
        slots = {p: instance.event_log_storage.get_concurrency_info(p).slot_count
                 for p in ("duckdb_history", "modbus")}
        print(json.dumps({"slots": slots}))
        return
    from ..paths import ensure_dagster_home

    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    if mode == "runs":
        statuses = {}
        for run_id in args:
            run = instance.get_run_by_id(run_id)
            statuses[run_id] = run.status.value if run is not None else "MISSING"
        job_runs = instance.get_runs_count(dg.RunsFilter(job_name="reoptimize_job"))
        print(json.dumps({"statuses": statuses, "job_runs": job_runs}))
        return
    import resource

    import pandas as pd

    from ..definitions import defs
    from ..defs.planning.partitions import shard_run_tags, sharded

    key = args[0]
    job = defs().resolve_job_def("reoptimize_job")
    process_start_s = time.perf_counter() - t0
    print("ready", flush=True)
    sys.stdin.readline()  # the release: every shard starts now
    started = pd.Timestamp.now(tz="UTC")
    t = time.perf_counter()
    result = job.execute_in_process(instance=instance, partition_key=key, tags=shard_run_tags(key),
                                    raise_on_error=False, run_config=QUIET_RUN_CONFIG)
    ended = time.monotonic()
    run_s = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = run_figures(result)
    print(json.dumps({
        "run_id": result.run_id, "success": result.success, "sharded": sharded, "ended": ended,
        "run_s": round(run_s, 2), "run_started": started.isoformat(), "process_start_s": round(process_start_s, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1), "failures": figures["failures"],
        "price_fetches": figures["price_fetches"], "site_ms": figures["site_ms"], "stage_s": figures["stage_s"],
        "sites_planned": len(figures["site_ms"].get("battery_schedule", [])),
    }))
