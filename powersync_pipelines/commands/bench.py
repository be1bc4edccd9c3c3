"""``powersync bench fleet --sites N [--out F.json]``: one production planning cycle for N generated sites.

Generates N sites (``sim.fleet``: Sungrow SH, Sigenergy and Tesla batteries, AU and UK replay prices, several time
zones), serves every battery from one simulator process on loopback, and runs ``reoptimize_job`` (the job the
5-minute schedule runs) once, in a real Dagster run against a fresh DAGSTER_HOME and DuckDB file. The run happens
in a child process that loads the project's Definitions with the generated sites file, as a code server would;
its peak RSS is the planning process's. Prints (and with ``--out`` writes) the JSON report: ``sites``,
``cycle_s``, ``per_site_ms`` (p50/p95 per stage), ``peak_rss_mb``, ``failures``, ``store``, and more.

With ``--shards K`` (K > 1) the cycle is K shard runs at once in K processes (``commands.bench_shards``): the
report adds ``shards`` and ``shard_runs``, merges the per-stage figures over all sites, and ``peak_rss_mb`` is
the sum of the shard processes' peaks (``peak_rss_mb_sum_of_shards``; ``peak_rss_mb_max_shard`` the largest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..paths import DATABASE_URL_ENV
from ..storage.backend import redacted_url

HELP = "Benchmarks of the live path: `bench fleet --sites N` plans N generated sites in one production cycle"
STAGES = ("price_forecast", "solar_forecast", "load_forecast", "battery_schedule", "tou_tariff_payload",
          "battery_commands", "telemetry", "ev_charging")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    fleet = sub.add_parser("fleet", help="one planning cycle (reoptimize_job) for N generated sites on simulators",
                           description="One planning cycle (reoptimize_job, a real Dagster run) for N generated "
                           "sites whose batteries are simulated on loopback; prints the JSON report.")
    fleet.add_argument("--sites", type=int, required=True, help="how many sites to generate (1..100000)")
    fleet.add_argument("--out", help="also write the JSON report to this file")
    fleet.add_argument("--seed", type=int, default=7, help="the generated fleet's seed (default 7)")
    fleet.add_argument("--workdir", help="keep the sites file, DuckDB file and DAGSTER_HOME here (default: a "
                       "temporary folder, removed afterwards)")
    fleet.add_argument("--silent", type=int, default=0,
                       help="make this many sites' batteries accept connections and never answer (default 0)")
    fleet.add_argument("--shards", type=int, default=1,
                       help="plan the cycle as this many shard runs (POWERSYNC_SHARDS) in as many processes, "
                       "released together on the same Dagster instance and history store (default 1: one run)")


def run(args: argparse.Namespace) -> int:
    if args.bench != "fleet":
        print(f"powersync bench: unknown benchmark {args.bench!r}", file=sys.stderr)
        return 2
    if not 1 <= args.sites <= 100_000:
        print(f"powersync bench fleet: --sites must be 1..100000, not {args.sites}", file=sys.stderr)
        return 2
    if not 0 <= args.silent <= args.sites:
        print(f"powersync bench fleet: --silent must be 0..{args.sites}, not {args.silent}", file=sys.stderr)
        return 2
    from .bench_shards import MAX_SHARDS

    if not 1 <= args.shards <= MAX_SHARDS:
        print(f"powersync bench fleet: --shards must be 1..{MAX_SHARDS}, not {args.shards}", file=sys.stderr)
        return 2
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="powersync-fleet-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = bench_fleet(args.sites, workdir, seed=args.seed, silent=args.silent, shards=args.shards)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0 if report["success"] else 1


def bench_fleet(n: int, workdir: Path, seed: int = 7, silent: int = 0, shards: int = 1) -> dict[str, Any]:
    """Generate, simulate, run one cycle in a child process (``shards`` > 1: one run per shard in as many
    processes, released together: ``commands.bench_shards``), and report (see the module docstring)."""
    from ..sim.fleet import SIM_TOKEN, TOKEN_ENV, fleet_devices, fleet_simulators, write_sites_file

    devices = fleet_devices(n, seed=seed)
    for d in devices[:silent]:  # the first ones: deterministic, and named in the report
        d["silent"] = True
    t_sim = time.perf_counter()
    duckdb_file = workdir / "powersync.duckdb"
    db_url = (os.environ.get(DATABASE_URL_ENV) or "").strip() or None
    home = workdir / "dagster_home"
    with fleet_simulators(devices) as (endpoints, _proc):
        sim_start_s = time.perf_counter() - t_sim
        sites_file = write_sites_file(workdir / "sites.yaml", devices, endpoints)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERSYNC_", "DAGSTER_"))}
        env.update({
            "POWERSYNC_HOME": str(workdir / "powersync_home"), "DAGSTER_HOME": str(home),
            "POWERSYNC_SITES": str(sites_file), "POWERSYNC_DUCKDB": str(duckdb_file), TOKEN_ENV: SIM_TOKEN,
        })
        # The child runs with compiled modules cached (under a prefix of their own, not in the venv), as a
        # long-lived deployment has them, even where PYTHONDONTWRITEBYTECODE is set.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "powersync-pycache"))
        if db_url:  # the history and Dagster's storage on PostgreSQL, as in production with the one setting
            env[DATABASE_URL_ENV] = db_url
        for name in ("POWERSYNC_FLEET_WORKERS", "POWERSYNC_SITE_TIMEOUT_S", "POWERSYNC_SITE_PARTITIONS_MAX"):
            if name in os.environ:  # the operator's tuning reaches the run
                env[name] = os.environ[name]
        if shards > 1:
            from .bench_shards import run_shard_cycle

            cycle = run_shard_cycle(env, shards, [d["id"] for d in devices])
        else:
            cycle = _one_run_cycle(env)
    report: dict[str, Any] = {
        "sites": n,
        "cycle_s": cycle["cycle_s"],
        "per_site_ms": cycle["per_site_ms"],
        "peak_rss_mb": cycle["peak_rss_mb"],
        "failures": cycle["failures"],
        "store": ({"kind": "postgresql", "url": redacted_url(db_url)} if db_url
                  else {"kind": "duckdb", "path": str(duckdb_file)}),
        "success": cycle["success"] and not cycle["failures"],
        "run_id": cycle["run_id"],
        "dagster_run_success": cycle["success"],
        "stage_s": cycle["stage_s"],
        "price_fetches": cycle["price_fetches"],
        "planned_with_partitions": cycle["partitioned"],
        "simulator_start_s": round(sim_start_s, 1),
        "batteries": {k: sum(1 for d in devices if d["kind"] == k) for k in ("sungrow_sh", "sigenergy", "tesla")},
        "countries": {c: sum(1 for d in devices if d["country"] == c) for c in ("AU", "UK")},
        "silent_batteries": [d["id"] for d in devices[:silent]],
        "process_start_s": cycle["process_start_s"],
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    report.update(_stored_counts(db_url or str(duckdb_file), cycle["run_started"]))
    if shards > 1:
        from .bench_shards import shard_fields

        report.update(shard_fields(cycle, db_url or str(duckdb_file), [d["id"] for d in devices],
                                   report["schedule_rows"]))
        report["success"] = report["success"] and report["stored_as_expected"]
    return report


CYCLE_CHILD = "from powersync_pipelines.commands.bench import _cycle_main; _cycle_main()"
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _one_run_cycle(env: dict[str, str]) -> dict[str, Any]:
    """The whole fleet as one run in one child process (``_cycle_main``); its JSON line."""
    child = subprocess.run([sys.executable, "-c", CYCLE_CHILD], env=env, capture_output=True, text=True)
    if child.returncode != 0:
        raise RuntimeError(f"the planning cycle process failed (exit {child.returncode}): "
                           f"{child.stderr.strip()[-2000:]}")
    return last_json(child.stdout, "the planning cycle process", child.stderr)


def last_json(stdout: str | list[str], what: str, stderr: str) -> dict[str, Any]:
    """The JSON report a bench child prints as its last line; a child that printed none is an error naming it,
    with the end of its stderr."""
    lines = stdout.strip().splitlines() if isinstance(stdout, str) else [x for x in stdout if x.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"{what} printed no report: {stderr.strip()[-2000:]}") from None


def _stored_counts(location: str, since: str) -> dict[str, Any]:
    from ..storage import HistoryStore

    with HistoryStore(location).connect(read_only=True) as con:
        t = [since]
        plans = con.execute("SELECT count(DISTINCT site_id) FROM plans WHERE created_at >= ?", t).fetchone()[0]
        rows = con.execute("SELECT count(*) FROM schedule s JOIN plans p USING (plan_id) WHERE p.created_at >= ?",
                           t).fetchone()[0]
        outcomes = dict(con.execute("SELECT outcome, count(*) FROM commands WHERE issued_at >= ? AND owner = "
                                    "'optimizer' GROUP BY outcome ORDER BY outcome", t).fetchall())
        telemetry = con.execute("SELECT count(DISTINCT site_id) FROM telemetry WHERE ts >= ?", t).fetchone()[0]
    return {"plans_stored": int(plans), "schedule_rows": int(rows),
            "commands_written": int(sum(outcomes.values())), "command_outcomes": outcomes,
            "sites_with_fresh_telemetry": int(telemetry)}


def _cycle_main() -> None:
    """The child: load the Definitions for the generated sites, run reoptimize_job once, print one JSON line."""
    t0 = time.perf_counter()
    import resource

    import dagster as dg
    import pandas as pd

    from ..definitions import defs
    from ..defs.planning.partitions import all_sites_tags, planning_partitions
    from ..paths import ensure_dagster_home

    ensure_dagster_home()
    job = defs().resolve_job_def("reoptimize_job")
    instance = dg.DagsterInstance.get()
    process_start_s = time.perf_counter() - t0
    started = pd.Timestamp.now(tz="UTC")
    t = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, tags=all_sites_tags(), raise_on_error=False,
        run_config=QUIET_RUN_CONFIG)
    cycle_s = time.perf_counter() - t
    figures = run_figures(result)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "run_id": result.run_id, "success": result.success, "cycle_s": round(cycle_s, 2), **figures,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "partitioned": planning_partitions is not None, "run_started": started.isoformat(),
        "process_start_s": round(process_start_s, 2),
    }))


def run_figures(result: Any) -> dict[str, Any]:
    """What a finished run's events say: per stage the per-site p50/p95/max/amortised ms, every site's ms and the
    wall time (from each stage's materialization metadata), the failures (a site's, or a whole step's), and the
    price fetches."""
    per_site: dict[str, dict[str, float]] = {}
    site_ms: dict[str, list[float]] = {}
    stage_s: dict[str, float] = {}
    failures: list[dict[str, str]] = []
    price_fetches: dict[str, int] = {}
    for ev in result.all_events:
        if ev.event_type_value == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            stage, meta = mat.asset_key.to_user_string(), {k: v.value for k, v in mat.metadata.items()}
        elif ev.is_failure and ev.step_key:
            data = ev.event_specific_data
            user = getattr(data, "user_failure_data", None)
            meta = {k: v.value for k, v in user.metadata.items()} if user is not None else {}
            stage = ev.step_key
            if "stage_failures" not in meta:
                failures.append({"stage": stage, "site_id": "*", "error": data.error.message.strip()[:500]})
        else:
            continue
        if stage in stage_s or "per_site_ms_p50" not in meta:
            continue
        per_site[stage] = {"p50": meta["per_site_ms_p50"], "p95": meta["per_site_ms_p95"],
                           "max": meta["per_site_ms_max"], "amortised": meta["per_site_ms_amortised"]}
        stage_s[stage] = meta["stage_s"]
        site_ms[stage] = list(meta.get("per_site_ms_each") or [])
        failures += [{"stage": stage, **f} for f in meta.get("stage_failures") or []]
        if "price_fetches" in meta:
            price_fetches = {"fetched": meta["price_fetches"], "shared": meta["price_fetches_shared"]}
    return {"per_site_ms": {s: per_site[s] for s in STAGES if s in per_site},
            "stage_s": {s: stage_s[s] for s in STAGES if s in stage_s},
            "site_ms": {s: site_ms[s] for s in STAGES if s in site_ms},
            "failures": failures, "price_fetches": price_fetches}
