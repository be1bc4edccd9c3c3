"""Every job that writes the history store carries the DuckDB writer tag on the DuckDB file (one writing run at a
time) and none on PostgreSQL (concurrent writers), read from the job definitions as a fresh process loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

WRITING_JOBS = ("reoptimize_job", "strategy_selection_job", "demand_peaks_job", "price_model_refit_job",
                "history_retention")

PROBE = """
import json
from powersync_pipelines.defs.demand import demand_peaks_job
from powersync_pipelines.defs.forecasting import price_model_refit_job
from powersync_pipelines.defs.planning.jobs import reoptimize_job
from powersync_pipelines.defs.retention import history_retention_job
from powersync_pipelines.defs.strategy import strategy_selection_job
jobs = (reoptimize_job, strategy_selection_job, demand_peaks_job, price_model_refit_job, history_retention_job)
print(json.dumps({j.name: dict(j.tags or {}) for j in jobs}))
"""


def _job_tags(tmp_path, extra_env: dict[str, str]) -> dict[str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERSYNC_", "DAGSTER_"))}
    env.update({"POWERSYNC_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dh"), **extra_env})
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_the_duckdb_file_every_writing_job_queues_behind_the_one_writer(tmp_path) -> None:
    tags = _job_tags(tmp_path, {})
    assert set(tags) == set(WRITING_JOBS)
    assert all(t.get("powersync/duckdb_writer") == "true" for t in tags.values()), tags


def test_on_postgresql_no_job_waits_for_the_duckdb_writer(tmp_path) -> None:
    # Loading the definitions reads the URL only; nothing connects to it here.
    tags = _job_tags(tmp_path, {"POWERSYNC_DATABASE_URL": "postgresql://powersync:secret@127.0.0.1:9/powersync"})
    assert set(tags) == set(WRITING_JOBS)
    assert not any("powersync/duckdb_writer" in t for t in tags.values()), tags
