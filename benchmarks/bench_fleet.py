"""The fleet-speed planning cycle: ``powersync bench fleet`` for 100 and 1,000 generated sites (``make bench``).

Each size is one production planning cycle (``reoptimize_job`` in a real Dagster run against a fresh
DAGSTER_HOME and DuckDB file; batteries simulated on loopback by one simulator process): the cycle's wall
time, the per-stage cost per site (p50/p95 and amortised), the planning process's peak RSS, the failures and what
was stored. Target (issue 30): 1,000 sites in one cycle <= 300 s on a 2-core machine, no failures, every site's
plan stored. The machine's load average is recorded beside each run: on a shared machine it moves the numbers.

Run: ``python -m benchmarks.bench_fleet`` (env ``POWERSYNC_BENCH_FLEET_SIZES``, default "100,1000"). Writes
``benchmarks/results/fleet.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from benchmarks.common import RESULTS_DIR, machine
from powersync_pipelines.commands.bench import bench_fleet


def main() -> None:
    sizes = [int(x) for x in os.environ.get("POWERSYNC_BENCH_FLEET_SIZES", "100,1000").split(",") if x.strip()]
    runs = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"powersync-fleet-{n}-") as d:
            before = os.getloadavg()
            report = bench_fleet(n, Path(d))
            report["load_average_before"] = [round(x, 2) for x in before]
            report["store"]["path"] = "(temporary)"
        runs.append(report)
        print(f"fleet {n}: cycle {report['cycle_s']} s, peak RSS {report['peak_rss_mb']} MB, "
              f"{len(report['failures'])} failure(s), {report['plans_stored']} plans stored, "
              f"load {report['load_average']}", flush=True)
    out = {"machine": machine(), "target": "1,000 sites in one cycle <= 300 s, no failures, every plan stored",
           "runs": runs}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "fleet.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
