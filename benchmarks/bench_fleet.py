"""The fleet-speed planning cycle: ``powersync bench fleet`` for 100 and 1,000 generated sites (``make bench``).

Each size is one production planning cycle (``reoptimize_job`` in a real Dagster run against a fresh
DAGSTER_HOME and DuckDB file; batteries simulated on loopback by one simulator process): the cycle's wall
time, the per-stage cost per site (p50/p95 and amortised), the planning process's peak RSS, the failures and what
was stored. Target (issue 30): 1,000 sites in one cycle <= 300 s on a 2-core machine, no failures, every site's
plan stored. The machine's load average is recorded beside each run: on a shared machine it moves the numbers.

The sharded cases (``bench fleet --shards K``) plan the same cycle as K shard runs in K processes released
together: on the DuckDB file (the runs take turns on its one writer). When ``POWERSYNC_DATABASE_URL`` is set, every
case also runs on a fresh database of that PostgreSQL server (there the shard runs plan at once). ``peak_rss_mb`` is then the sum of the shard processes'
peaks.

Run: ``python -m benchmarks.bench_fleet`` (env ``POWERSYNC_BENCH_FLEET_SIZES``, default "100,1000"; env
``POWERSYNC_BENCH_FLEET_SHARDS``, sites x shards cases, default "1000x2"; either may be empty). Writes
``benchmarks/results/fleet.json``: ``runs`` (one run per cycle) and ``sharded``; a key whose cases were not run
this time keeps its earlier results.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks.common import RESULTS_DIR, machine
from powersync_pipelines.commands.bench import bench_fleet
from powersync_pipelines.paths import DATABASE_URL_ENV


def _cases(raw: str) -> list[tuple[int, int]]:
    """``"1000x2,100x4"`` -> [(1000, 2), (100, 4)]."""
    cases = []
    for part in (x.strip() for x in raw.split(",")):
        if part:
            sites, _, shards = part.partition("x")
            cases.append((int(sites), int(shards or 1)))
    return cases


@contextmanager
def _database_url(url: str | None) -> Iterator[None]:
    """The history (and Dagster's storage) on ``url``, or on a DuckDB file when None, for this block."""
    before = os.environ.get(DATABASE_URL_ENV)
    if url is None:
        os.environ.pop(DATABASE_URL_ENV, None)
    else:
        os.environ[DATABASE_URL_ENV] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATABASE_URL_ENV, None)
        else:
            os.environ[DATABASE_URL_ENV] = before


def _on_both(pg_url: str | None, cases: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Each case on a DuckDB file and, with ``pg_url``, on a fresh database of that PostgreSQL server."""
    reports = []
    for n, shards in cases:
        with _database_url(None):
            reports.append(_run(n, shards))
        if pg_url:
            with _database_url(_fresh_database(pg_url, f"bench_fleet_{n}x{shards}")):
                reports.append(_run(n, shards))
    return reports


def _fresh_database(url: str, name: str) -> str:
    """An empty database ``name`` on ``url``'s server (dropped first if a previous run left it): every case
    starts from the same empty history and Dagster storage."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def _run(n: int, shards: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"powersync-fleet-{n}-") as d:
        before = os.getloadavg()
        report = bench_fleet(n, Path(d), shards=shards)
        report["load_average_before"] = [round(x, 2) for x in before]
        if report["store"]["kind"] == "duckdb":
            report["store"]["path"] = "(temporary)"
    label = f"fleet {n}" + (f" in {shards} shards on {report['store']['kind']}" if shards > 1 else "")
    print(f"{label}: cycle {report['cycle_s']} s, peak RSS {report['peak_rss_mb']} MB, "
          f"{len(report['failures'])} failure(s), {report['plans_stored']} plans stored, "
          f"load {report['load_average']}", flush=True)
    return report


def main() -> None:
    sizes = [int(x) for x in os.environ.get("POWERSYNC_BENCH_FLEET_SIZES", "100,1000").split(",") if x.strip()]
    sharded_cases = _cases(os.environ.get("POWERSYNC_BENCH_FLEET_SHARDS", "1000x2"))
    path = RESULTS_DIR / "fleet.json"
    out: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    out.update({"machine": machine(),
                "target": "1,000 sites in one cycle <= 300 s, no failures, every plan stored"})
    pg_url = (os.environ.get(DATABASE_URL_ENV) or "").strip() or None
    if sizes:
        out["runs"] = _on_both(pg_url, [(n, 1) for n in sizes])
    if sharded_cases:
        out["sharded"] = _on_both(pg_url, sharded_cases)
    RESULTS_DIR.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
